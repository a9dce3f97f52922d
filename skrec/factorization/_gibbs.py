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

__all__ = ["GibbsTrainer", "sample_normal_wishart", "posterior_scores"]


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
    is what serving a history row needs (:func:`posterior_scores`).
    """

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

    def _half(self, csr, targets, other, other_bias, own, own_bias):
        mean, precision = sample_normal_wishart(torch.cat([own, own_bias.unsqueeze(1)], 1), self.rng,
                                                beta0=self.beta0)
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

    def snapshot(self):
        return None  # the chain is never rewound

    def restore(self, state):  # pragma: no cover - no callback restores a sampler
        raise RuntimeError("a Gibbs chain has no best state to restore")

    def fitted_attributes(self):
        """The kept draws, stacked as module buffers (the chain's last state when none were kept)."""
        m = self.module
        kept = self.kept or [(m.item_factors.detach().clone(), m.item_bias.detach().clone(),
                              sample_normal_wishart(torch.cat([m.user_factors, m.user_bias.unsqueeze(1)], 1).detach(),
                                                    self.rng, beta0=self.beta0), self.noise)]
        device, dtype = m.item_factors.device, m.item_factors.dtype
        m.register_buffer("draw_item_factors", torch.stack([k[0] for k in kept]))
        m.register_buffer("draw_item_bias", torch.stack([k[1] for k in kept]))
        m.register_buffer("draw_user_mean", torch.stack([k[2][0] for k in kept]).to(device, dtype))
        m.register_buffer("draw_user_precision", torch.stack([k[2][1] for k in kept]).to(device, dtype))
        m.register_buffer("draw_noise", torch.tensor([k[3] for k in kept], device=device, dtype=dtype))
        return {"rating_range_": self.rating_range}


def posterior_scores(module, batch, draws=None):
    """``(scores, user_vectors)`` of history rows under the kept draws of a Gibbs fit.

    For each kept draw, each row's ``[p, b]`` is its posterior mean given the row's ratings
    (that draw's items, users' prior and noise); the scores ``μ + σ (b + b_i + p·q_i)``
    are averaged over the draws, which integrates the user out exactly (Rao-Blackwellised)
    and the items by Monte Carlo. A training row is served like any other row.

    Parameters
    ----------
    module : BiasedMF
        Fitted by :class:`GibbsTrainer`.
    batch : DeviceCSR
    draws : slice, optional
        Which kept draws to average (all when ``None``).

    Returns
    -------
    scores : torch.Tensor of shape (n_rows, n_items)
    user_vectors : torch.Tensor of shape (n_rows, d)
        The posterior mean ``p`` under the last draw averaged.
    """
    m = module
    sl = draws if draws is not None else slice(None)
    Q, C = m.draw_item_factors[sl], m.draw_item_bias[sl]
    means, precisions, noise = m.draw_user_mean[sl], m.draw_user_precision[sl], m.draw_noise[sl]
    targets = ((batch.values - m.global_mean) / m.scale).to(Q.dtype)
    total, failed = None, []
    for s in range(Q.shape[0]):
        x = gaussian_rows(batch, Q[s], targets - C[s][batch.indices], noise_precision=noise[s],
                          prior_precision=precisions[s], prior_mean=means[s], failed=failed)
        scores = torch.addmm(x[:, -1:] + C[s], x[:, :-1], Q[s].T)
        total = scores if total is None else total.add_(scores)
    refuse_failed(failed, batch.n_rows * Q.shape[0], "use fewer factors")  # one sync for every draw
    return m.global_mean + m.scale * (total / Q.shape[0]), x[:, :-1]
