"""MFRegressor: biased matrix factorization of explicit ratings, and its neural variant."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._torch import DeviceCSR, gradient_fold_in, ridge_fold_in
from .._torch.training import GradientTrainer
from ..base import TorchRecommender, register, store_params
from ..utils.validation import check_param, raise_invalid
from ._base import FactorMixin, sum_of_squares
from ._gibbs import GibbsTrainer, posterior_rows, posterior_scores

__all__ = ["MFRegressor", "BiasedMF", "EmbeddingNet"]

GIBBS_FACTORS = 16  # n_factors=None under solver="gibbs"
# thin=None keeps every Gibbs draw while the kept item tables hold at most this many numbers
# (512 MiB in float32: 180 draws of 16 factors for about 44,000 items).
GIBBS_DRAW_NUMBERS = 2**27


class BiasedMF(nn.Module):
    """``r̂(u, i) = μ + σ (b_u + b_i + p_u · q_i)`` — the math only, no device and no data.

    ``μ`` (``global_mean``) and ``σ`` (``scale``) are buffers: the mean and the standard
    deviation of the training ratings, so the learned terms are in units of ``σ`` and the
    same ``alpha``, learning rate and initialisation suit any rating scale.

    Parameters
    ----------
    n_users, n_items, n_factors : int
    init_std : float, default=0.1
        Standard deviation of the normal initialisation of the factors (biases start at 0).
    generator : torch.Generator, optional

    Examples
    --------
    >>> m = BiasedMF(3, 4, 2)
    >>> m(torch.tensor([0, 2]), torch.tensor([1, 3])).shape
    torch.Size([2])
    """

    def __init__(self, n_users, n_items, n_factors, init_std=0.1, generator=None):
        super().__init__()
        self.register_buffer("global_mean", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))
        self.user_factors = nn.Parameter(torch.randn(n_users, n_factors, generator=generator) * init_std)
        self.item_factors = nn.Parameter(torch.randn(n_items, n_factors, generator=generator) * init_std)
        self.user_bias = nn.Parameter(torch.zeros(n_users))
        self.item_bias = nn.Parameter(torch.zeros(n_items))

    def score(self, users, items, user_vectors=None, user_bias=None):
        """Predictions at pairs; ``user_vectors``/``user_bias`` replace the learned ones when given."""
        p = self.user_factors[users] if user_vectors is None else user_vectors
        b = self.user_bias[users] if user_bias is None else user_bias
        return self.global_mean + self.scale * (b + self.item_bias[items] + (p * self.item_factors[items]).sum(-1))

    def forward(self, users, items):
        return self.score(users, items)

    def loss(self, users, items, ratings, alpha):
        """The training objective of a batch, ``mean(((r - r̂) / σ)²) + alpha * mean(L2 term)``.

        The L2 term of a pair is ``|p_u|² + |q_i|² + b_u² + b_i²``. :class:`MFLoss` computes
        the objective and the gradients of the four tables by hand, in a few fused passes.

        Examples
        --------
        >>> m = BiasedMF(3, 4, 2)
        >>> u, i, r = torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([4.0, 2.0])
        >>> p, q = m.user_factors[u], m.item_factors[i]
        >>> penalty = (p * p).sum(-1) + (q * q).sum(-1)  # the biases start at 0
        >>> expected = (((r - m(u, i)) / m.scale) ** 2).mean() + 0.1 * penalty.mean()
        >>> bool(torch.allclose(m.loss(u, i, r, 0.1), expected))
        True
        """
        return MFLoss.apply(self.user_factors, self.item_factors, self.user_bias, self.item_bias, users, items,
                            (ratings - self.global_mean) / self.scale, float(alpha))


class MFLoss(torch.autograd.Function):
    """``mean_b (t_b - s_b)² + alpha * mean_b(|p_b|² + |q_b|² + b_b² + c_b²)``, ``s_b = b_b + c_b + p_b·q_b``.

    ``t`` are the standardised ratings. The backward writes each table's gradient with one
    ``index_add_`` (autograd's backward of the same lookups scatters through ``index_put``
    with accumulation, and builds the penalty's gradient in separate kernels).

    Examples
    --------
    >>> P, Q = torch.randn(3, 2, requires_grad=True), torch.randn(4, 2, requires_grad=True)
    >>> bu, bi = torch.zeros(3, requires_grad=True), torch.zeros(4, requires_grad=True)
    >>> MFLoss.apply(P, Q, bu, bi, torch.tensor([0, 2]), torch.tensor([1, 3]), torch.zeros(2), 0.0).backward()
    >>> P.grad.shape, bi.grad.shape
    (torch.Size([3, 2]), torch.Size([4]))
    """

    @staticmethod
    def forward(ctx, P, Q, user_bias, item_bias, users, items, targets, alpha):
        p, q = P.index_select(0, users), Q.index_select(0, items)
        bu, bi = user_bias.index_select(0, users), item_bias.index_select(0, items)
        err = targets - (bu + bi + torch.linalg.vecdot(p, q))
        B = max(users.numel(), 1)
        penalty = sum_of_squares(p, q, bu, bi)
        ctx.save_for_backward(P, Q, user_bias, item_bias, users, items, p, q, bu, bi, err)
        ctx.alpha = alpha
        return (torch.dot(err, err) + alpha * penalty) / B

    @staticmethod
    def backward(ctx, grad):
        P, Q, user_bias, item_bias, users, items, p, q, bu, bi, err = ctx.saved_tensors
        B = max(users.numel(), 1)
        g = err * (-2.0 * grad / B)  # d loss / d s_b
        rate = 2.0 * ctx.alpha * grad / B
        dP = torch.zeros_like(P).index_add_(0, users, torch.addcmul(p * rate, g.unsqueeze(1), q))
        dQ = torch.zeros_like(Q).index_add_(0, items, torch.addcmul(q * rate, g.unsqueeze(1), p))
        dbu = torch.zeros_like(user_bias).index_add_(0, users, g + rate * bu)
        dbi = torch.zeros_like(item_bias).index_add_(0, items, g + rate * bi)
        return dP, dQ, dbu, dbi, None, None, None, None


class EmbeddingNet(nn.Module):
    """An embedding network: concatenated embeddings → hidden layers → sigmoid in the rating range.

    Parameters
    ----------
    n_users, n_items, n_factors : int
    hidden_layer_sizes : sequence of int
        Widths of the ReLU hidden layers.
    dropout : float, default=0.0
        Dropout after every hidden layer.
    embedding_dropout : float, default=0.0
        Dropout on the concatenated embeddings.
    rating_range : (float, float), default=(1.0, 5.0)
        The sigmoid is scaled to ``(low - 0.5, high + 0.5)``, so that the
        extreme ratings are reachable.
    generator : torch.Generator, optional

    Examples
    --------
    >>> net = EmbeddingNet(3, 4, 2, (8,))
    >>> out = net(torch.tensor([0, 2]), torch.tensor([1, 3]))
    >>> out.shape, bool(((out > 0.5) & (out < 5.5)).all())
    (torch.Size([2]), True)
    """

    def __init__(self, n_users, n_items, n_factors, hidden_layer_sizes, dropout=0.0, embedding_dropout=0.0,
                 rating_range=(1.0, 5.0), generator=None):
        super().__init__()
        self.user_factors = nn.Parameter(torch.randn(n_users, n_factors, generator=generator) * 0.1)
        self.item_factors = nn.Parameter(torch.randn(n_items, n_factors, generator=generator) * 0.1)
        self.register_buffer("low", torch.tensor(float(rating_range[0]) - 0.5))
        self.register_buffer("span", torch.tensor(float(rating_range[1]) - float(rating_range[0]) + 1.0))
        self.register_buffer("scale", torch.ones(()))  # the unit of the training loss (see MFTrainer)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        layers, width = [], 2 * n_factors
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        if generator is not None:  # deterministic layer initialisation from the estimator's generator
            for layer in self.mlp:
                if isinstance(layer, nn.Linear):
                    bound = 1.0 / np.sqrt(layer.in_features)
                    with torch.no_grad():
                        layer.weight.copy_((torch.rand(layer.weight.shape, generator=generator) * 2 - 1) * bound)
                        layer.bias.copy_((torch.rand(layer.bias.shape, generator=generator) * 2 - 1) * bound)

    def score(self, users, items, user_vectors=None):
        """Predictions at pairs; ``user_vectors`` replace the learned ones when given."""
        p = self.user_factors[users] if user_vectors is None else user_vectors
        h = self.embedding_dropout(torch.cat([p, self.item_factors[items]], dim=-1))
        return self.low + self.span * torch.sigmoid(self.mlp(h).squeeze(-1))

    def forward(self, users, items):
        return self.score(users, items)

    def score_all(self, user_vectors):
        """``[B, n_items]`` predictions for given user vectors (the first layer split in two)."""
        first = self.mlp[0]
        d = user_vectors.shape[1]
        h = (user_vectors @ first.weight[:, :d].T).unsqueeze(1) + (self.item_factors @ first.weight[:, d:].T
                                                                     + first.bias).unsqueeze(0)
        h = self.mlp[1:](h)
        return self.low + self.span * torch.sigmoid(h.squeeze(-1))

    def loss(self, users, items, ratings, alpha):
        """``mean(((r - r̂) / σ)²) + alpha * mean(|p_u|² + |q_i|²)`` of a batch of pairs."""
        p, q = self.user_factors[users], self.item_factors[items]
        h = self.embedding_dropout(torch.cat([p, q], dim=-1))
        err = (ratings - self.low - self.span * torch.sigmoid(self.mlp(h).squeeze(-1))) / self.scale
        return (err * err).mean() + alpha * ((p * p).sum(-1) + (q * q).sum(-1)).mean()


class MFTrainer(GradientTrainer):
    """Mini-batch descent on the squared error plus the per-interaction L2 of MF.

    The error is measured in units of ``module.scale`` (the standard deviation of the training
    ratings), so ``alpha`` weighs the penalty against the same standardised error on any
    rating scale.

    Validation (with ``X_val``): the mean squared error of the held-out ratings under the
    learned user vectors, no penalty.
    """

    def __init__(self, module, X, X_val, generator, alpha, rating_range, **options):
        super().__init__(module, generator, **options)
        device = generator.device
        self.users, self.items, self.values = DeviceCSR.from_scipy(X, device).coo()
        self.n_samples = int(X.nnz)
        self.alpha, self.rating_range = alpha, rating_range
        self.has_validation = X_val is not None
        if self.has_validation:
            self.val = DeviceCSR.from_scipy(X_val, device).coo()

    def loss(self, idx):  # index_select: cheaper than advanced indexing
        return self.module.loss(self.users.index_select(0, idx), self.items.index_select(0, idx),
                                self.values.index_select(0, idx), self.alpha)

    def validation_loss(self):
        users, items, values = self.val
        total = torch.zeros((), device=values.device)
        for start in range(0, values.shape[0], 2**20):
            sl = slice(start, start + 2**20)
            err = values[sl] - self.module(users[sl], items[sl])
            total = total + (err * err).sum()
        return total / values.shape[0]

    def fitted_attributes(self):
        return {"rating_range_": self.rating_range}


def _rating_scale(X):
    """The standard deviation of the stored ratings (1 when they are all equal): the unit the
    factors are learned in."""
    std = float(np.std(X.data)) if X.nnz else 0.0
    return std if std > 1e-12 else 1.0


@register
class MFRegressor(FactorMixin, TorchRecommender):
    """Matrix factorization of explicit ratings: Bayesian (the default), by gradient, or neural.

    The bilinear model predicts ``r̂(u, i) = μ + b_u + b_i + p_u · q_i`` with ``μ`` the mean
    training rating. Two solvers fit it:

    - ``solver="gibbs"`` (default): Bayesian probabilistic matrix factorization
      (Salakhutdinov & Mnih, 2008) by Gibbs sampling, with the biases inside the Gaussian
      vectors. Every ``[p_u, b_u]`` is drawn from a Gaussian whose mean and precision have a
      Normal-Wishart prior, the same for the items, and the noise precision has a Gamma
      prior, so the regularisation is learned from the data: ``alpha`` is not used and
      there is nothing to tune but the size. A sweep draws every user and every item in
      closed form on the device (batched Cholesky solves); the first ``burn_in`` of the
      ``max_iter`` sweeps are discarded and predictions average the others (see Notes).
    - ``solver="gradient"``: the MAP objective (squared error plus ``alpha`` L2) by
      mini-batch Adam/Adagrad/SGD through the shared loop (large batches drawn on the
      device, early stopping with best-state restore, schedules). With
      ``hidden_layer_sizes`` it becomes an embedding network (the MLP of neural
      collaborative filtering, He et al., 2017, applied to ratings): ``[p_u, q_i]`` → ReLU
      hidden layers with dropout → a sigmoid scaled to the rating range seen in ``fit``.

    Both keep ``history_``, checkpoints and ``warm_start``. Every history row is *folded
    in*: its user vector is computed with the item side frozen — the posterior of the row
    under each kept draw (Gibbs), the exact minimiser of the row's training objective by
    batched ridge regression (gradient, bilinear), or ``fold_in_steps`` Adam steps (the
    network). ``predict``, ``predict_at``, ``recommend``, ``score`` and ``transform`` all
    serve rows this way, so new users are served exactly like training users.

    The model learns in units of the standard deviation of the training ratings
    (``rating_scale_``), so its settings mean the same on any rating scale. The Gibbs
    default — 16 factors, 200 sweeps, 20 of them burn-in — is within 0.001 of the best
    validation RMSE of the sizes tried (8-32 factors) on MovieLens-100k and MovieLens
    latest-small (0.898 and 0.842, against 0.921 and 0.869 for the tuned gradient solver;
    ``python -m benchmarks tune --protocol P1``); 100 and 400 sweeps did no better. The gradient defaults — 64 factors, ``alpha=0.12``, Adam at 0.02
    on batches of 8192 ratings, early stopping on 10 % of the ratings — are within 0.2 % of
    its best validation RMSE on both sets; ``python -m benchmarks defaults`` scores the
    defaults beside the tuned settings (``benchmarks/results/defaults.md``).

    Parameters
    ----------
    n_factors : int, default=None
        Dimension of the user and item vectors. ``None``: 16 for ``"gibbs"``, 64 for
        ``"gradient"``.
    solver : {"gibbs", "gradient"}, default="gibbs"
        Bayesian matrix factorization by Gibbs sampling, or the L2-regularised objective by
        mini-batch gradient descent (the only solver of the network).
    burn_in : int, default=None
        Gibbs: sweeps discarded before the draws are kept (``None``: ``max_iter // 10``);
        must be below ``max_iter``.
    thin : int, default=None
        Gibbs: keep every ``thin``-th draw after the burn-in. ``None``: every draw, unless the
        kept item tables would exceed :data:`GIBBS_DRAW_NUMBERS` numbers (large catalogues),
        then the smallest ``thin`` that fits. Prediction costs one batched solve per kept
        draw; on MovieLens-100k every fourth draw scored within 0.0005 RMSE of all of them,
        so ``thin=4`` serves about 4× faster.
    hidden_layer_sizes : tuple of int, default=()
        ``()``: no hidden layer, the bilinear model. Otherwise the widths of the hidden
        layers of the network (e.g. ``(256, 64)``).
    dropout : float, default=0.0
        Network only: dropout after each hidden layer.
    embedding_dropout : float, default=0.0
        Network only: dropout on the concatenated embeddings.
    alpha : float, default=0.12
        Gradient solver: L2 strength, applied per interaction: each rating in a batch adds
        ``alpha * (|p_u|² + |q_i|² + b_u² + b_i²)``, so frequent users and items are
        penalised in proportion to their data (Funk-SVD / Surprise convention). Only the
        batch's rows are touched.
    fold_in_steps : int, default=100
        Network only: Adam steps of the fold-in (items frozen).
    fold_in_learning_rate : float, default=0.05
        Network only: learning rate of the fold-in.
    clip : bool, default=True
        Clip predictions to the rating range seen in ``fit``.
    optimizer : {"adam", "adamw", "adagrad", "sgd"}, default="adam"
        Gradient solver: the optimizer (``optimizer``, ``learning_rate``, ``batch_size``,
        ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``, ``tol`` and
        ``lr_schedule`` apply to the gradient solver only).
    learning_rate : float, default=None
        ``None``: 0.02 for the factorization, 0.005 with hidden layers.
    batch_size : int, default=None
        Ratings per step. ``None``: 8192 for the factorization, 1024 with hidden layers (the
        network learns worse in large batches). Larger batches make epochs faster, on a GPU
        most (use 2**16 or more on large data, with a larger ``learning_rate``). On
        MovieLens-100k's five folds, 8192 ratings at 0.02 fitted 1.7× faster than 1024 at
        0.005, at the same validation and test RMSE (0.9173 against 0.9172); the network lost
        0.03 validation RMSE at any batch above 1024 on MovieLens latest-small.
    max_iter : int, default=200
        Gibbs: sweeps, burn-in included. Gradient: most epochs; early stopping usually ends
        the fit well before.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the ratings, monitor their mean squared error
        (learned user vectors), stop after ``n_iter_no_change`` epochs without improvement
        and restore the best epoch.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
    tol : float, default=1e-4
    lr_schedule : {None, "cosine", "triangular"}, default=None
        Cosine annealing with restarts (Loshchilov & Hutter, 2017), or a triangular cycle
        (Smith, 2017).
    lr_cycle : int, default=2
        Epochs per learning-rate cycle.
    checkpoint_every : int, default=0
        Pickle the estimator every N epochs to ``checkpoint_path``.
    checkpoint_path : str, optional
        May contain ``{epoch}``.
    warm_start : bool, default=False
        Continue training the fitted model on a matrix of the same shape.
    device : str, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the initialisation, the validation split and the batch order.
    verbose : int, default=0

    Attributes
    ----------
    global_mean_ : float
        Mean training rating (bilinear model).
    user_factors_ : ndarray of shape (n_users_, n_factors)
        Learned user vectors of the training rows (Gibbs: the chain's last draw).
    item_factors_ : ndarray of shape (n_items_, n_factors)
    user_bias_, item_bias_ : ndarray
        Learned biases in rating units (bilinear model; Gibbs: the last draw).
    n_draws_ : int
        Gibbs: the draws kept for prediction (``(max_iter - burn_in) // thin`` of the last fit).
    rating_scale_ : float
        Standard deviation ``σ`` of the training ratings. The model predicts
        ``μ + σ (b_u + b_i + p_u·q_i)`` and measures its training error in units of ``σ``,
        so ``alpha``, the learning rate and the initialisation mean the same on 1-5 stars,
        half stars or a 1-100 scale; ``user_factors_`` and ``item_factors_`` are in those
        units.
    rating_range_ : (float, float)
        Smallest and largest training rating.
    n_users_, n_items_, n_iter_, history_, best_iteration_, device_

    See Also
    --------
    skrec.BaselineBiases : the biases alone.
    ResidualRegressor : fit MF on what another regressor leaves.

    Notes
    -----
    Objective of the bilinear model, over the training ratings ``R``:

    .. math:: \\frac{1}{|R|} \\sum_{(u,i) \\in R} (r_{ui} - \\hat r_{ui})^2
              + \\alpha (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)

    For one row with the items fixed this is a ridge regression of ``r - μ - b_i`` on the
    rows ``[q_i, 1]`` with penalty ``alpha * n_u``: fold-in solves it exactly.

    The Gibbs solver samples the posterior of the same bilinear model, in units of ``σ``:
    ``r_ui ~ N(b_u + b_i + p_u·q_i, 1/τ)``, ``[p_u, b_u] ~ N(m_U, Λ_U⁻¹)`` and ``[q_i, b_i]
    ~ N(m_V, Λ_V⁻¹)``, with ``(m, Λ)`` Normal-Wishart (mean 0, 2 pseudo-observations, scale
    ``I``, ``d + 1`` degrees of freedom) and ``τ ~ Gamma(1, 1)``. A history row is served
    by its posterior mean under each kept draw of the items, their prior and ``τ``; the
    predictions are averaged over the draws. A training row is served the same way, so
    ``predict`` does not read ``user_factors_``. Prediction costs one batched solve per kept
    draw (180 by default; fewer with ``thin``).
    Each fit discards its own burn-in and keeps its own draws; ``warm_start`` continues the
    chain from its last state.

    Examples
    --------
    >>> from skrec.datasets import make_interactions
    >>> from skrec.model_selection import holdout_split
    >>> X = make_interactions(200, 80, kind="explicit", density=0.2, random_state=0).X
    >>> X_hist, y = holdout_split(X, 0.2, random_state=0)
    >>> model = MFRegressor(n_factors=8, max_iter=30, random_state=0).fit(X_hist)
    >>> model.predict_at(X_hist, y).nnz == y.nnz
    True
    >>> model.transform(X_hist[:3]).shape
    (3, 8)
    """

    _kind = "regressor"
    _factor_names = {"user_factors_": "user_factors", "item_factors_": "item_factors", "item_bias_": "item_bias"}
    _structure = ("solver", "n_factors", "hidden_layer_sizes")
    _param_specs = dict(
        TorchRecommender._param_specs,
        solver=dict(kind="str", options=("gibbs", "gradient")),
        n_factors=dict(kind="int", low=1, allow_none=True),
        burn_in=dict(kind="int", low=0, allow_none=True),
        thin=dict(kind="int", low=1, allow_none=True),
        hidden_layer_sizes=dict(kind="sequence"),
        optimizer=dict(kind="str", options=("adam", "adamw", "adagrad", "sgd")),
        dropout=dict(kind="float", low=0, high=1, high_inclusive=False),
        embedding_dropout=dict(kind="float", low=0, high=1, high_inclusive=False),
        alpha=dict(kind="float", low=0),
        fold_in_steps=dict(kind="int", low=1),
        fold_in_learning_rate=dict(kind="float", low=0, low_inclusive=False),
        clip=dict(kind="bool"),
        learning_rate=dict(kind="float", low=0, low_inclusive=False, allow_none=True),
        batch_size=dict(kind="int", low=1, allow_none=True),
    )

    def __init__(self, n_factors=None, *, solver="gibbs", burn_in=None, thin=None, hidden_layer_sizes=(),
                 dropout=0.0, embedding_dropout=0.0, alpha=0.12,
                 fold_in_steps=100, fold_in_learning_rate=0.05, clip=True, optimizer="adam", learning_rate=None,
                 batch_size=None, max_iter=200, early_stopping=True, validation_fraction=0.1, n_iter_no_change=5,
                 tol=1e-4, lr_schedule=None, lr_cycle=2, checkpoint_every=0, checkpoint_path=None,
                 warm_start=False, device="auto", random_state=None, verbose=0):
        store_params(self, locals())

    @classmethod
    def _test_instances(cls):
        return [
            cls(n_factors=4, max_iter=30, burn_in=10),
            cls(n_factors=4, solver="gradient", alpha=0.02, learning_rate=0.02, batch_size=128, max_iter=40,
                early_stopping=False),
            cls(n_factors=4, solver="gradient", hidden_layer_sizes=(8,), learning_rate=0.01, batch_size=256,
                max_iter=5, early_stopping=False, fold_in_steps=10),
        ]

    def _fit_spec(self, **fit_params):
        spec = dict(super()._fit_spec(), hidden_layer_sizes=check_param(
            "hidden_layer_sizes", self.hidden_layer_sizes, "sequence"))
        neural = bool(spec["hidden_layer_sizes"])
        if spec["burn_in"] is None:
            spec["burn_in"] = spec["max_iter"] // 10
        if spec["solver"] == "gibbs":
            if neural:
                raise_invalid("solver", "'gradient' when hidden_layer_sizes is set (the network has no "
                              "Gibbs sampler)", spec["solver"])
            if spec["burn_in"] >= spec["max_iter"]:
                raise_invalid("burn_in", f"fewer sweeps than max_iter ({spec['max_iter']}) so that some "
                              "draws are kept", spec["burn_in"])
        if spec["n_factors"] is None:
            spec["n_factors"] = GIBBS_FACTORS if spec["solver"] == "gibbs" else 64
        if spec["batch_size"] is None:
            spec["batch_size"] = 1024 if neural else 8192
        if spec["learning_rate"] is None:
            spec["learning_rate"] = 0.005 if neural else 0.02
        return spec

    @property
    def _neural(self):
        return bool(self._spec["hidden_layer_sizes"])

    @property
    def _gibbs(self):
        return self._spec["solver"] == "gibbs"

    def _inference_width(self):
        # The network materialises [B, n_items, width] in its first layer: bound that instead.
        return max(self._spec["hidden_layer_sizes"] or (1,))

    # ------------------------------------------------------------------- fit
    def _make_trainer(self, X, *, generator, seed, warm, previous=None):
        low, high = float(X.data.min()), float(X.data.max())
        if warm:
            low, high = min(low, self.rating_range_[0]), max(high, self.rating_range_[1])
        if self._gibbs:
            module = self.module_ if warm else self._build_module(X, (low, high))
            spec = self._spec
            thin = spec["thin"]
            if thin is None:  # bound the kept draws' memory: ceil(numbers / GIBBS_DRAW_NUMBERS)
                numbers = (spec["max_iter"] - spec["burn_in"]) * X.shape[1] * (spec["n_factors"] + 1)
                thin = max(1, -(-numbers // GIBBS_DRAW_NUMBERS))
            return GibbsTrainer(module.to(self.device_), X, generator, seed, spec["burn_in"], (low, high),
                                thin=thin)
        X_train, X_val = self._split(X, self._seed)
        module = self.module_ if warm else self._build_module(X_train, (low, high))
        return MFTrainer(module.to(self.device_), X_train, X_val, generator, self._spec["alpha"], (low, high),
                         **self._gradient_options(warm))

    def _build_module(self, X, rating_range):
        n_users, n_items = X.shape
        # Built on the CPU from a CPU generator, so its initial state is the same on every
        # device; the trainer's generator (on device_) only draws batches.
        gen = torch.Generator().manual_seed(int(self._seed) % 2**63)
        spec = self._spec
        if self._neural:
            net = EmbeddingNet(n_users, n_items, spec["n_factors"], spec["hidden_layer_sizes"], spec["dropout"],
                               spec["embedding_dropout"], rating_range, generator=gen)
            net.scale.fill_(_rating_scale(X))
            return net
        module = BiasedMF(n_users, n_items, spec["n_factors"], generator=gen)
        module.global_mean.fill_(float(X.data.mean()))
        module.scale.fill_(_rating_scale(X))
        return module

    # ------------------------------------------------------------- inference
    def _fold_in(self, batch):
        """User vectors (and biases, bilinear model) of the history rows, items frozen."""
        m, alpha = self.module_, self._spec["alpha"]
        counts = batch.row_counts().to(torch.float32)
        if not self._neural:
            targets = (batch.values - m.global_mean) / m.scale - m.item_bias[batch.indices]
            # The per-interaction penalty of a row with n ratings is alpha * n * (|p|² + b²).
            reg = (alpha * counts).clamp(min=1e-6)
            sol = ridge_fold_in(batch, m.item_factors, targets, reg, intercept=reg)
            return sol[:, :-1], sol[:, -1]
        rows, items, values = batch.row_ids(), batch.indices, batch.values
        m.eval()

        def loss(users):
            err = (values - m.score(rows, items, user_vectors=users[rows])) / m.scale
            return (err * err).sum() + alpha * (counts * (users ** 2).sum(-1)).sum()

        init = torch.zeros((batch.n_rows, m.user_factors.shape[1]), device=values.device)
        users = gradient_fold_in(init, loss, frozen=m, n_steps=self._spec["fold_in_steps"],
                                 learning_rate=self._spec["fold_in_learning_rate"])
        return users, None

    def _score_batch(self, batch):
        m = self.module_
        if self._gibbs:
            scores = posterior_scores(m, batch)
            return scores.clamp(*self.rating_range_) if self._spec["clip"] else scores
        users, bias = self._fold_in(batch)
        if self._neural:
            scores = m.score_all(users)
        else:
            scores = m.global_mean + m.scale * (bias.unsqueeze(1) + m.item_bias.unsqueeze(0) + users @ m.item_factors.T)
        if self._spec["clip"]:
            scores = scores.clamp(*self.rating_range_)
        return scores

    def _transform_batch(self, batch):
        if self._gibbs:
            return posterior_rows(self.module_, batch, -1)[:, :-1]
        return self._fold_in(batch)[0]

    def _fold_in_reproduces_learned(self):
        # A network's user vectors are not identifiable, nor are a sampler's (its last draw is
        # one draw): their fold-in is checked by RMSE instead.
        return self.solver == "gradient" and not check_param("hidden_layer_sizes", self.hidden_layer_sizes,
                                                                "sequence")

    def _learned_user_vectors(self):
        """User vectors learned for the training rows (fold-in must reproduce them)."""
        return self.user_factors_

    # ------------------------------------------------------ fitted attributes
    @property
    def user_bias_(self):
        """Learned user biases, in rating units (bilinear model)."""
        return (self.module_.user_bias.detach() * self.module_.scale).cpu().numpy()

    @property
    def item_bias_(self):
        """Learned item biases, in rating units (bilinear model)."""
        return (self._factor("item_bias_") * self.module_.scale).cpu().numpy()

    @property
    def n_draws_(self):
        """Gibbs: the number of draws predictions average."""
        draws = getattr(self.module_, "draw_noise", None)
        if draws is None:
            raise AttributeError("n_draws_ exists only for solver='gibbs'")
        return int(draws.shape[0])

    @property
    def rating_scale_(self):
        """Standard deviation of the training ratings: the unit the factors and the loss use."""
        return float(self.module_.scale)

    @property
    def global_mean_(self):
        """Mean training rating (bilinear model)."""
        return float(self.module_.global_mean)
