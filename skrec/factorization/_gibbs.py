"""Bayesian matrix factorization of ratings by Gibbs sampling (Salakhutdinov & Mnih, 2008).

The model is :class:`~skrec.factorization.BiasedMF`'s, ``r̂ = μ + σ (b_u + b_i + p_u·q_i)``,
with every ``[p_u, b_u]`` drawn from one Gaussian whose mean and precision have a
Normal-Wishart prior (the same for the items), and Gaussian noise whose precision has a
Gamma prior. A sweep draws, in turn, the users' hyper-parameters, every user, the items'
hyper-parameters, every item and the noise precision; predictions average the sweeps after
the burn-in. The regularisation is learned from the data: there is no L2 strength to tune.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
import torch

from .._torch import DeviceCSR
from .._torch.foldin import gaussian_rows, refuse_failed
from .._torch.training import Trainer

__all__ = ["GibbsTrainer", "sample_normal_wishart", "posterior_rows", "posterior_scores"]


def sample_normal_wishart(table, rng, *, beta0=2.0):
    """One draw of ``(mean, precision)`` of the rows of ``table`` under BPMF's Normal-Wishart prior.

    The prior has mean 0, ``beta0`` pseudo-observations for the mean, scale ``I`` and ``D``
    degrees of freedom (``D`` the width of ``table``). The sufficient statistics are
    computed on ``table``'s device (one host transfer of ``D × D`` numbers); the draw is
    made on the host with ``rng``.

    Parameters
    ----------
    table : torch.Tensor of shape (n, D)
    rng : numpy.random.Generator

    Returns
    -------
    mean : torch.Tensor of shape (D,)
    precision : torch.Tensor of shape (D, D)
        Float64, on the host.

    Examples
    --------
    >>> rows = torch.randn(5000, 2, generator=torch.Generator().manual_seed(0)) * 0.5
    >>> mean, precision = sample_normal_wishart(rows, np.random.default_rng(0))
    >>> bool((mean.abs() < 0.05).all()), torch.diag(precision).round().tolist()  # 1 / 0.5²
    (True, [4.0, 4.0])
    """
    n, D = table.shape
    x = table.double()
    xbar = x.mean(0)
    centred = x - xbar
    stats = torch.cat([xbar.unsqueeze(0), centred.T @ centred]).cpu().numpy()  # one transfer
    xbar, scatter = stats[0], stats[1:]
    inv_scale = np.eye(D) + scatter + (beta0 * n / (beta0 + n)) * np.outer(xbar, xbar)
    scale = np.linalg.inv(inv_scale)
    precision = scipy.stats.wishart.rvs(df=D + n, scale=(scale + scale.T) / 2, random_state=rng)
    precision = np.atleast_2d(precision)
    cov = np.linalg.inv((beta0 + n) * precision)
    mean = rng.multivariate_normal(n * xbar / (beta0 + n), (cov + cov.T) / 2)
    return torch.as_tensor(mean), torch.as_tensor(precision)


class GibbsTrainer(Trainer):
    """The Gibbs sampler's state during ``fit``: the ratings in both orientations, the kept draws.

    One epoch is one sweep. The trainer works on ratings standardised by the module's
    ``global_mean`` and ``scale``; :meth:`train_epoch` returns the training RMSE of the
    sweep's draw, in rating units. Every ``thin``-th draw after ``burn_in`` sweeps is kept
    for prediction: the item factors and biases, the users' prior and the noise precision, which
    is what serving a history row needs (:func:`posterior_scores`). It never stops early
    (``stops_early = False``): a chain has no best state to go back to.
    """

    stops_early = False

    def __init__(self, module, X, generator, seed, burn_in, rating_range, thin=1, beta0=2.0,
                 noise_prior=(1.0, 1.0)):
        self.module = module
        self.thin = thin
        self.rating_range = rating_range
        self.generator = generator
        self.rng = np.random.default_rng(seed)
        self.burn_in = burn_in
        self.beta0 = beta0
        self.noise_prior = noise_prior
        device = generator.device
        self.users = DeviceCSR.from_scipy(X, device)
        self.items = DeviceCSR.from_scipy(X.T.tocsr(), device)
        mu, sigma = float(module.global_mean), float(module.scale)
        self.user_targets = ((self.users.values - mu) / sigma).to(torch.float32)
        self.item_targets = ((self.items.values - mu) / sigma).to(torch.float32)
        self.row_ids = self.users.row_ids()
        last = getattr(module, "draw_noise", None)  # a warm start continues from the last draw
        self.noise = 1.0 if last is None else float(last[-1])
        self.sweeps = 0
        self.kept = []

    def _draw_prior(self, own, own_bias):
        """The rows' ``(mean, precision)`` drawn given the current ``[own, own_bias]``."""
        return sample_normal_wishart(torch.cat([own, own_bias.unsqueeze(1)], 1), self.rng, beta0=self.beta0)

    def _half(self, csr, targets, other, other_bias, own, own_bias):
        mean, precision = self._draw_prior(own, own_bias)
        drawn = gaussian_rows(csr, other, targets - other_bias[csr.indices], noise_precision=self.noise,
                              prior_precision=precision, prior_mean=mean, generator=self.generator)
        own.copy_(drawn[:, :-1])
        own_bias.copy_(drawn[:, -1])
        return mean, precision

    def train_epoch(self):
        m = self.module
        with torch.no_grad():
            user_prior = self._half(self.users, self.user_targets, m.item_factors, m.item_bias,
                                    m.user_factors, m.user_bias)
            self._half(self.items, self.item_targets, m.user_factors, m.user_bias, m.item_factors, m.item_bias)
            pred = m.user_bias[self.row_ids] + m.item_bias[self.users.indices] + self.users.sampled_dots(
                m.user_factors, m.item_factors.T.contiguous())
            sse = float(((self.user_targets - pred) ** 2).sum(dtype=torch.float64))
        a0, b0 = self.noise_prior
        n = self.users.nnz
        self.noise = float(self.rng.gamma(a0 + n / 2, 1.0 / (b0 + sse / 2)))
        self.sweeps += 1
        if self.sweeps > self.burn_in and (self.sweeps - self.burn_in) % self.thin == 0:
            self.kept.append((m.item_factors.detach().clone(), m.item_bias.detach().clone(), user_prior,
                              self.noise))
        return float(m.scale) * (sse / max(n, 1)) ** 0.5

    def fitted_attributes(self):
        """The kept draws, stacked as module buffers (the chain's last state when none were kept)."""
        m = self.module
        with torch.no_grad():
            kept = self.kept or [(m.item_factors.detach().clone(), m.item_bias.detach().clone(),
                                  self._draw_prior(m.user_factors, m.user_bias), self.noise)]
        device, dtype = m.item_factors.device, m.item_factors.dtype
        m.register_buffer("draw_item_factors", torch.stack([k[0] for k in kept]))
        m.register_buffer("draw_item_bias", torch.stack([k[1] for k in kept]))
        m.register_buffer("draw_user_mean", torch.stack([k[2][0] for k in kept]).to(device, dtype))
        m.register_buffer("draw_user_precision", torch.stack([k[2][1] for k in kept]).to(device, dtype))
        m.register_buffer("draw_noise", torch.tensor([k[3] for k in kept], device=device, dtype=dtype))
        return {"rating_range_": self.rating_range}


def posterior_rows(module, batch, draw, failed=None):
    """Each history row's posterior mean ``[p, b]`` under kept draw ``draw`` of a Gibbs fit.

    The row's ratings, that draw's item factors and biases, users' prior and noise
    precision give the Bayesian linear regression of :func:`gaussian_rows`. ``failed``: see
    there (``None`` checks the factorisations at once).
    """
    m = module
    targets = ((batch.values - m.global_mean) / m.scale).to(m.draw_item_factors.dtype)
    return gaussian_rows(batch, m.draw_item_factors[draw], targets - m.draw_item_bias[draw][batch.indices],
                         noise_precision=m.draw_noise[draw], prior_precision=m.draw_user_precision[draw],
                         prior_mean=m.draw_user_mean[draw], failed=failed)


def posterior_scores(module, batch):
    """Scores ``(n_rows, n_items)`` of history rows, averaged over the kept draws of a Gibbs fit.

    For each kept draw, each row's ``[p, b]`` is its posterior mean given the row's ratings
    (:func:`posterior_rows`); the scores ``μ + σ (b + b_i + p·q_i)`` are averaged over the
    draws, which integrates the user out exactly (Rao-Blackwellised) and the items by Monte
    Carlo. A training row is served like any other row. The factorisations of every draw
    are checked with one host sync.
    """
    m = module
    total, failed = None, []
    for s in range(m.draw_noise.shape[0]):
        x = posterior_rows(m, batch, s, failed)
        scores = torch.addmm(x[:, -1:] + m.draw_item_bias[s], x[:, :-1], m.draw_item_factors[s].T)
        total = scores if total is None else total.add_(scores)
    refuse_failed(failed, batch.n_rows * m.draw_noise.shape[0], "use fewer factors")
    return m.global_mean + m.scale * (total / m.draw_noise.shape[0])
