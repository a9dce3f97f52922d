"""BaselineBiases: global mean + user bias + item bias (Koren's baseline predictor)."""

from __future__ import annotations

import torch
from torch import nn

from .._torch import DeviceCSR
from .._torch.training import GradientTrainer, Trainer
from ..base import TorchRecommender, register, store_params
from ..utils.validation import check_param

__all__ = ["BaselineBiases", "BiasModule"]


class BiasModule(nn.Module):
    """``r̂(u, i) = μ + b_u + b_i`` — the math only, no device and no data.

    Parameters
    ----------
    n_users, n_items : int

    Examples
    --------
    >>> m = BiasModule(2, 3)
    >>> m(torch.tensor([0, 1]), torch.tensor([2, 0])).shape
    torch.Size([2])
    """

    def __init__(self, n_users, n_items):
        super().__init__()
        self.global_mean = nn.Parameter(torch.zeros(()))
        self.user_bias = nn.Parameter(torch.zeros(n_users))
        self.item_bias = nn.Parameter(torch.zeros(n_items))

    def forward(self, users, items):
        return self.global_mean + self.user_bias[users] + self.item_bias[items]


def norm_weights(user_counts, item_counts, users, items, user_norm, item_norm):
    """Per-interaction weights ``n_u ** -user_norm * n_i ** -item_norm`` (1 where both are 0).

    Examples
    --------
    >>> w = norm_weights(torch.tensor([4.0]), torch.tensor([1.0]), torch.tensor([0]), torch.tensor([0]), 0.5, 0.0)
    >>> w.tolist()
    [0.5]
    """
    w = torch.ones(users.shape[0], dtype=torch.float32, device=users.device)
    if user_norm:
        w = w * user_counts[users].clamp(min=1) ** (-user_norm)
    if item_norm:
        w = w * item_counts[items].clamp(min=1) ** (-item_norm)
    return w


def damped_mean(num, weight, damping, center):
    """``(num + damping * center) / (weight + damping)``, 0 where both are 0.

    A bias is a residual mean shrunk towards ``center`` by ``damping`` pseudo-ratings.

    Examples
    --------
    >>> damped_mean(torch.tensor([6.0]), torch.tensor([2.0]), 1.0, torch.tensor(0.0)).tolist()
    [2.0]
    """
    den = weight + damping
    out = (num + damping * center) / den.clamp(min=1e-12)
    return torch.where(den > 0, out, torch.zeros_like(out))


class _BiasData:
    """Weighted training (or validation) ratings of one fit, on the device."""

    def __init__(self, X, device, item_counts, spec, scale=None):
        self.users, self.items, self.values = DeviceCSR.from_scipy(X, device).coo()
        user_counts = torch.bincount(self.users, minlength=X.shape[0]).float()
        w = norm_weights(user_counts, item_counts, self.users, self.items, spec["user_norm"], spec["item_norm"])
        self.scale = float(w.mean()) if scale is None else scale  # weights average 1 on the training data
        self.weights = w / self.scale
        self.n = int(X.nnz)

    def mse(self, module):
        err = self.values - module(self.users, self.items)
        return (self.weights * err * err).sum() / self.weights.sum()


class _BiasTrainerMixin:
    """What both solvers share: the data, the centres, validation and the fitted statistics."""

    def _setup(self, module, X, X_val, device, spec, rating_range):
        self.module = module
        self.spec = spec
        self.item_counts = torch.as_tensor(X.getnnz(axis=0), dtype=torch.float32, device=device)
        self.data = _BiasData(X, device, self.item_counts, spec)
        self.val = None if X_val is None else _BiasData(X_val, device, self.item_counts, spec, self.data.scale)
        self.has_validation = self.val is not None
        self.rating_range = rating_range

    def center(self, bias):
        """What the biases shrink to: 0 (``"l2"``) or their mean (``"variance"``)."""
        return bias.mean() if self.spec["regularization"] == "variance" else torch.zeros((), device=bias.device)

    def validate(self):
        if not self.has_validation:
            return None
        with torch.no_grad():
            return float(self.val.mse(self.module))

    def fitted_attributes(self):
        return {"_item_counts": self.item_counts, "_weight_scale": self.data.scale,
                "rating_range_": self.rating_range}


class BiasALSTrainer(_BiasTrainerMixin, Trainer):
    """Exact alternating updates: one epoch is ``μ``, then every ``b_i``, then every ``b_u``."""

    def __init__(self, module, X, X_val, device, spec, rating_range):
        self._setup(module, X, X_val, device, spec, rating_range)
        d = self.data
        self.w_user = torch.zeros_like(module.user_bias).index_add_(0, d.users, d.weights)
        self.w_item = torch.zeros_like(module.item_bias).index_add_(0, d.items, d.weights)

    def train_epoch(self):
        m, d = self.module, self.data
        a_user, a_item = self.spec["damping"]
        u, i, r, w = d.users, d.items, d.values, d.weights
        with torch.no_grad():
            m.global_mean.copy_((w * (r - m.user_bias[u] - m.item_bias[i])).sum() / w.sum())
            num = torch.zeros_like(m.item_bias).index_add_(0, i, w * (r - m.global_mean - m.user_bias[u]))
            m.item_bias.copy_(damped_mean(num, self.w_item, a_item, self.center(m.item_bias)))
            num = torch.zeros_like(m.user_bias).index_add_(0, u, w * (r - m.global_mean - m.item_bias[i]))
            m.user_bias.copy_(damped_mean(num, self.w_user, a_user, self.center(m.user_bias)))
            return float(d.mse(m))


class BiasGradientTrainer(_BiasTrainerMixin, GradientTrainer):
    """Mini-batch descent on the weighted squared error plus the damping penalty."""

    def __init__(self, module, X, X_val, device, spec, rating_range, generator, options):
        GradientTrainer.__init__(self, module, generator, **options)
        self._setup(module, X, X_val, device, spec, rating_range)
        self.n_samples = self.data.n

    def loss(self, idx):
        m, d = self.module, self.data
        a_user, a_item = self.spec["damping"]
        u, i, w = d.users[idx], d.items[idx], d.weights[idx]
        err = d.values[idx] - m(u, i)
        penalty = (a_user * ((m.user_bias - self.center(m.user_bias)) ** 2).sum()
                   + a_item * ((m.item_bias - self.center(m.item_bias)) ** 2).sum())
        return (w * err * err).mean() + penalty / d.n  # the penalty is spread over the epoch


@register
class BaselineBiases(TorchRecommender):
    """Baseline predictor of ratings: a global mean plus user and item biases.

    Predicts ``r̂ = μ + b_u + b_i`` (Koren, 2010). A history row is folded in: the user bias
    of a new row is solved in closed form with the item side fixed, exactly as the training
    solves it. For the popularity ranker of implicit feedback, see :class:`skrec.Popularity`.

    Parameters
    ----------
    damping : float or (float, float), default=(5.0, 2.0)
        Damping ``(user, item)`` of the bias means: a bias is a residual mean shrunk by
        ``damping`` pseudo-ratings (LensKit's name); a float applies to both.
    regularization : {"l2", "variance"}, default="l2"
        ``"l2"`` shrinks biases to 0; ``"variance"`` shrinks them to their mean.
    solver : {"als", "gradient"}, default="als"
        ``"als"``: exact alternating closed-form updates on the device, one sweep per epoch.
        ``"gradient"``: mini-batch descent with ``optimizer``.
    user_norm, item_norm : float, default=0.0
        Per-interaction weights ``n_u**-user_norm * n_i**-item_norm``: positive values
        down-weight heavy users / popular items. Normalised to mean 1.
    clip : bool, default=True
        Clip predictions to the rating range seen in ``fit``.
    optimizer : {"adam", "adamw", "adagrad", "sgd"}, default="adam"
        ``solver="gradient"`` only.
    learning_rate : float, default=0.05
        ``solver="gradient"`` only.
    batch_size : int, default=65536
        Interactions per batch (``solver="gradient"``).
    max_iter : int, default=30
        Epochs: ALS sweeps or passes over the data.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the interactions, stop when their squared error
        stops improving, restore the best epoch.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
    tol : float, default=1e-5
        Minimum improvement of the monitored loss (training loss without validation).
    lr_schedule : {None, "cosine", "triangular"}, default=None
    lr_cycle : int, default=2
        Epochs per learning-rate cycle.
    checkpoint_every : int, default=0
        Pickle the estimator every N epochs to ``checkpoint_path``.
    checkpoint_path : str, optional
        May contain ``{epoch}``.
    warm_start : bool, default=False
        Continue from the fitted biases instead of starting anew.
    device : str, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the validation split and batch order.
    verbose : int, default=0

    Attributes
    ----------
    global_mean_ : float
    user_bias_ : ndarray of shape (n_users_,)
        Learned user biases of the training rows.
    item_bias_ : ndarray of shape (n_items_,)
    rating_range_ : tuple of float
        ``(min, max)`` of the training values.
    n_users_, n_items_, n_iter_, history_, best_iteration_, best_score_, device_

    Notes
    -----
    Objective, with weights ``w``, damping ``λ`` and centres ``c`` (0 for ``"l2"``, the mean
    bias for ``"variance"``):

    .. math:: \\sum_{(u,i)} w_{ui} (r_{ui} - \\mu - b_u - b_i)^2
              + \\lambda_u \\sum_u (b_u - c_u)^2 + \\lambda_i \\sum_i (b_i - c_i)^2

    ALS alternates the exact minimisers ``μ``, then ``b_i``, then ``b_u``; the last step is
    the fold-in formula ``b_u = Σ_i w (r - μ - b_i) / (Σ_i w + λ_u)``, so fold-in of a
    training row reproduces its fitted bias exactly.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[5, 4, 0], [4, 0, 1], [0, 5, 2]], dtype=float))
    >>> model = BaselineBiases(damping=1.0).fit(X)
    >>> model.predict(X).shape
    (3, 3)
    >>> [h["epoch"] for h in model.history_][:3]
    [1, 2, 3]
    """

    _kind = "regressor"
    _param_specs = dict(
        TorchRecommender._param_specs,
        damping=dict(kind="pair", low=0),
        regularization=dict(kind="str", options=("l2", "variance")),
        solver=dict(kind="str", options=("als", "gradient")),
        optimizer=dict(kind="str", options=("adam", "adamw", "adagrad", "sgd")),
        user_norm=dict(kind="float"),
        item_norm=dict(kind="float"),
        clip=dict(kind="bool"),
    )

    def __init__(self, *, damping=(5.0, 2.0), regularization="l2", solver="als", user_norm=0.0, item_norm=0.0,
                 clip=True, optimizer="adam", learning_rate=0.05, batch_size=65536, max_iter=30,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5, tol=1e-5, lr_schedule=None,
                 lr_cycle=2, checkpoint_every=0, checkpoint_path=None, warm_start=False, device="auto",
                 random_state=None, verbose=0):
        store_params(self, locals())

    @classmethod
    def _test_instances(cls):
        return [
            cls(damping=2.0),
            cls(solver="gradient", learning_rate=0.1, max_iter=15, batch_size=256, damping=1.0),
        ]

    def _fit_spec(self, **fit_params):
        return dict(super()._fit_spec(), damping=check_param("damping", self.damping, "pair", low=0))

    # ------------------------------------------------------------------- fit
    def _make_trainer(self, X, *, generator, seed, warm, previous=None):
        low, high = float(X.data.min()), float(X.data.max())
        if warm:
            low, high = min(low, self.rating_range_[0]), max(high, self.rating_range_[1])
        X_train, X_val = self._split(X, self._seed)
        if warm:
            module = self.module_
        else:
            module = BiasModule(*X.shape).to(self.device_)
            with torch.no_grad():
                module.global_mean.fill_(float(X_train.data.mean()))
        args = (module, X_train, X_val, self.device_, self._spec, (low, high))
        if self.solver == "als":
            return BiasALSTrainer(*args)
        return BiasGradientTrainer(*args, generator, self._gradient_options(warm))

    # ------------------------------------------------------------- inference
    def _fold_in(self, batch):
        """Closed-form user bias of each history row, ``[B]``."""
        m, spec = self.module_, self._spec
        rows = batch.row_ids()
        w = norm_weights(batch.row_counts().float(), self._item_counts, rows, batch.indices, spec["user_norm"],
                         spec["item_norm"]) / self._weight_scale
        num = batch.row_sum(w * (batch.values - m.global_mean - m.item_bias[batch.indices]))
        center = m.user_bias.mean() if spec["regularization"] == "variance" else torch.zeros((), device=w.device)
        return damped_mean(num, batch.row_sum(w), spec["damping"][0], center)

    def _score_batch(self, batch):
        m = self.module_
        scores = m.global_mean + self._fold_in(batch).unsqueeze(1) + m.item_bias.unsqueeze(0)  # [B, n_items]
        if self._spec["clip"]:
            scores = scores.clamp(*self.rating_range_)
        return scores

    def _transform_batch(self, batch):
        return self._fold_in(batch).unsqueeze(1)  # [B, 1]

    def _learned_user_vectors(self):
        """The user representation learned for the training rows (fold-in must match it)."""
        return self.user_bias_[:, None]

    # ------------------------------------------------------ fitted attributes
    @property
    def global_mean_(self):
        """Learned global mean."""
        return float(self.module_.global_mean.detach())

    @property
    def user_bias_(self):
        """Learned user biases of the training rows."""
        return self.module_.user_bias.detach().cpu().numpy().copy()

    @property
    def item_bias_(self):
        """Learned item biases."""
        return self.module_.item_bias.detach().cpu().numpy().copy()

