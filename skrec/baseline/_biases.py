"""BaselineBiases: global mean + user bias + item bias (seed 000's baseline predictor)."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import nn

from .._torch import DeviceCSR
from ..base import TorchRecommender, register
from ..utils.validation import raise_invalid

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


@register
class BaselineBiases(TorchRecommender):
    """Baseline predictor: a global mean plus user and item biases.

    Explicit mode predicts ratings ``r̂ = μ + b_u + b_i``. Implicit mode ranks items by a
    learned item bias — a softmax over items — which is the (smoothed) popularity baseline
    every ranker must beat. Both fold a history row in: the user bias of a new row is solved
    in closed form with the item side fixed, exactly as the training solves it.

    Parameters
    ----------
    mode : {"explicit", "implicit"}, default="explicit"
        ``"explicit"``: values of ``X`` are ratings, squared error. ``"implicit"``: any stored
        value is an interaction, softmax cross-entropy over items.
    alpha : float or (float, float), default=(5.0, 2.0)
        Regularization strength ``(user, item)``; a float applies to both. Explicit ``"l2"``
        is the damping of the bias means (a bias is a residual mean shrunk by ``alpha``
        pseudo-ratings). In implicit mode with ``solver="als"``, the item value is the
        additive smoothing count.
    regularization : {"l2", "variance"}, default="l2"
        ``"l2"`` shrinks biases to 0; ``"variance"`` (seed 000) shrinks them to their mean.
    solver : {"als", "adam", "adagrad", "sgd"}, default="als"
        ``"als"``: exact alternating closed-form updates on the device (implicit mode: the
        closed-form smoothed log-popularity). The others train by mini-batch gradient
        descent through skrec's shared loop (early stopping, schedules, checkpoints…).
    user_weight_decay, item_weight_decay : float, default=0.0
        Per-interaction weights ``n_u**-user_weight_decay * n_i**-item_weight_decay`` (seed
        000): positive values down-weight heavy users / popular items. Normalised to mean 1.
    clip : bool, default=True
        Explicit mode: clip predictions to the rating range seen in ``fit``.
    learning_rate : float, default=0.05
        Gradient solvers only.
    batch_size : int, default=65536
        Interactions per batch (gradient solvers).
    max_iter : int, default=30
        Sweeps (``"als"``) or epochs (gradient solvers).
    early_stopping : bool, default=False
        Gradient solvers: hold out ``validation_fraction`` of the interactions, stop when
        the validation loss stops improving, restore the best epoch.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
    tol : float, default=1e-5
        ``"als"``: stop when no bias moves by more than ``tol``; gradient solvers: minimum
        improvement of the monitored loss.
    lr_schedule : {None, "cosine", "triangular"}, default=None
    lr_cycle : int, default=2
        Epochs per learning-rate cycle.
    checkpoint_every : int, default=0
        Gradient solvers: pickle the estimator every N epochs to ``checkpoint_path``.
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
        Learned user biases of the training rows (explicit mode).
    item_bias_ : ndarray of shape (n_items_,)
    rating_range_ : tuple of float
        ``(min, max)`` of the training values (explicit mode).
    n_users_, n_items_ : int
    n_iter_ : int
    history_ : list of dict
    device_ : torch.device

    Notes
    -----
    Explicit objective, with weights ``w`` and centres ``c`` (0 for ``"l2"``, the mean bias
    for ``"variance"``):

    .. math:: \\sum_{(u,i)} w_{ui} (r_{ui} - \\mu - b_u - b_i)^2
              + \\alpha_u \\sum_u (b_u - c_u)^2 + \\alpha_i \\sum_i (b_i - c_i)^2

    ALS alternates the exact minimisers ``μ``, then ``b_i``, then ``b_u``; the last step is
    the fold-in formula ``b_u = Σ_i w (r - μ - b_i) / (Σ_i w + α_u)``, so fold-in of a
    training row reproduces its fitted bias exactly. Implicit objective:
    ``-Σ w log softmax(b)_i + α_i Σ b_i²``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[5, 4, 0], [4, 0, 1], [0, 5, 2]], dtype=float))
    >>> model = BaselineBiases(alpha=1.0).fit(X)
    >>> model.predict(X).shape
    (3, 3)
    >>> ids, scores = model.recommend(X, k=1)
    >>> ids.ravel().tolist()
    [2, 1, 0]
    """

    _param_specs = dict(
        TorchRecommender._param_specs,
        mode=dict(kind="str", options=("explicit", "implicit")),
        regularization=dict(kind="str", options=("l2", "variance")),
        solver=dict(kind="str", options=("als", "adam", "adagrad", "sgd")),
        user_weight_decay=dict(kind="float"),
        item_weight_decay=dict(kind="float"),
        clip=dict(kind="bool"),
    )
    del _param_specs["optimizer"]

    def __init__(self, mode="explicit", *, alpha=(5.0, 2.0), regularization="l2", solver="als",
                 user_weight_decay=0.0, item_weight_decay=0.0, clip=True, learning_rate=0.05,
                 batch_size=65536, max_iter=30, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, tol=1e-5, lr_schedule=None, lr_cycle=2, checkpoint_every=0,
                 checkpoint_path=None, warm_start=False, device="auto", random_state=None, verbose=0):
        self.mode = mode
        self.alpha = alpha
        self.regularization = regularization
        self.solver = solver
        self.user_weight_decay = user_weight_decay
        self.item_weight_decay = item_weight_decay
        self.clip = clip
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.lr_schedule = lr_schedule
        self.lr_cycle = lr_cycle
        self.checkpoint_every = checkpoint_every
        self.checkpoint_path = checkpoint_path
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def _test_instances(cls):
        return [
            cls(alpha=2.0),
            cls(mode="implicit", alpha=1.0),
            cls(solver="adam", learning_rate=0.1, max_iter=15, batch_size=256, alpha=1.0),
        ]

    # ------------------------------------------------------------ parameters
    @property
    def _kind(self):  # regressor in explicit mode, ranker in implicit mode
        return "regressor" if self.mode == "explicit" else "ranker"

    def _alphas(self):
        a = self.alpha
        if isinstance(a, numbers.Real) and not isinstance(a, bool):
            a = (a, a)
        if not (isinstance(a, (tuple, list)) and len(a) == 2
                and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in a)):
            raise_invalid("alpha", "a float >= 0 or a pair (user, item) of floats >= 0", self.alpha, TypeError)
        for v in a:
            if not np.isfinite(v) or v < 0:
                raise_invalid("alpha", "a float >= 0 or a pair (user, item) of floats >= 0", self.alpha)
        return float(a[0]), float(a[1])

    def _check_params(self):
        super()._check_params()
        self._alphas()

    def _optimizer_name(self):
        return self.solver

    def _supports_transform(self):
        return getattr(self, "_spec", {"mode": self.mode})["mode"] == "explicit"

    # ------------------------------------------------------------------ data
    def _weights(self, user_counts, item_counts, users, items):
        w = torch.ones(users.shape[0], dtype=torch.float32, device=users.device)
        if self._spec["user_weight_decay"]:
            w = w * user_counts[users].clamp(min=1) ** (-self._spec["user_weight_decay"])
        if self._spec["item_weight_decay"]:
            w = w * item_counts[items].clamp(min=1) ** (-self._spec["item_weight_decay"])
        return w

    def _training_data(self, X):
        users, items, values = DeviceCSR.from_scipy(X, self.device_).coo()
        user_counts = torch.bincount(users, minlength=X.shape[0]).float()
        w = self._weights(user_counts, self._item_counts, users, items) / self._weight_scale
        return {"users": users, "items": items, "values": values, "weights": w, "n": int(X.nnz)}

    def _n_samples(self, data):
        return data["n"]

    def _prepare(self, X):
        """Statistics fixed at fit time and used again by fold-in: item counts, weight scale."""
        self._item_counts = torch.as_tensor(np.bincount(X.indices, minlength=X.shape[1]),
                                            dtype=torch.float32, device=self.device_)
        self._weight_scale = 1.0
        self._weight_scale = float(self._training_data(X)["weights"].mean())  # weights average 1
        if self._spec["mode"] == "explicit":
            self.rating_range_ = (float(X.data.min()), float(X.data.max()))

    def _build_module(self, X, generator):
        module = BiasModule(*X.shape)
        with torch.no_grad():
            module.global_mean.fill_(float(X.data.mean()) if self._spec["mode"] == "explicit" else 0.0)
        return module

    # ------------------------------------------------------------------- fit
    def _fit(self, X, warm):
        # Inference uses the hyper-parameters of the fit, whatever set_params does later.
        self._spec = {"mode": self.mode, "alpha": self._alphas(), "regularization": self.regularization,
                      "clip": self.clip, "user_weight_decay": self.user_weight_decay,
                      "item_weight_decay": self.item_weight_decay}
        previous_range = getattr(self, "rating_range_", None) if warm else None
        self._prepare(X)
        if previous_range is not None and self.mode == "explicit":
            self.rating_range_ = (min(previous_range[0], self.rating_range_[0]),
                                  max(previous_range[1], self.rating_range_[1]))
        if self.solver != "als":
            return super()._fit(X, warm)
        if not warm:
            self.module_ = self._build_module(X, None).to(self.device_)
            self._optimizer = None
            self.history_ = []
        data = self._training_data(X)
        with torch.no_grad():
            if self._spec["mode"] == "explicit":
                self._als_explicit(data)
            else:
                self._closed_form_implicit(data)
        self.best_iteration_, self.best_score_ = None, None
        return self

    def _center(self, bias):
        """What the biases shrink to: 0 (``"l2"``) or their mean (``"variance"``)."""
        return bias.mean() if self._spec["regularization"] == "variance" else torch.zeros((), device=bias.device)

    def _als_explicit(self, data):
        m = self.module_
        a_user, a_item = self._spec["alpha"]
        u, i, r, w = data["users"], data["items"], data["values"], data["weights"]
        n_users, n_items = m.user_bias.shape[0], m.item_bias.shape[0]
        w_user = torch.zeros(n_users, device=r.device).index_add_(0, u, w)
        w_item = torch.zeros(n_items, device=r.device).index_add_(0, i, w)
        for _ in range(self.max_iter):
            old_u, old_i = m.user_bias.clone(), m.item_bias.clone()
            m.global_mean.copy_((w * (r - m.user_bias[u] - m.item_bias[i])).sum() / w.sum())
            res = w * (r - m.global_mean - m.user_bias[u])
            num = torch.zeros(n_items, device=r.device).index_add_(0, i, res)
            m.item_bias.copy_(_damped(num, w_item, a_item, self._center(m.item_bias)))
            res = w * (r - m.global_mean - m.item_bias[i])
            num = torch.zeros(n_users, device=r.device).index_add_(0, u, res)
            m.user_bias.copy_(_damped(num, w_user, a_user, self._center(m.user_bias)))
            err = r - m(u, i)
            loss = float((w * err * err).sum() / w.sum())
            self.history_.append({"epoch": len(self.history_) + 1, "loss": loss})
            change = max(float((m.user_bias - old_u).abs().max()), float((m.item_bias - old_i).abs().max()))
            if change <= self.tol:
                break
        self.n_iter_ = len(self.history_)

    def _closed_form_implicit(self, data):
        _, a_item = self._spec["alpha"]
        counts = torch.zeros_like(self.module_.item_bias).index_add_(0, data["items"], data["weights"])
        smoothed = (counts + a_item).clamp(min=1e-12)
        self.module_.item_bias.copy_(torch.log(smoothed / smoothed.sum()))
        self.history_.append({"epoch": len(self.history_) + 1, "loss": float(-(counts * self.module_.item_bias).sum()
                                                                           / counts.sum())})
        self.n_iter_ = len(self.history_)

    def _loss(self, data, idx, generator):
        m = self.module_
        a_user, a_item = self._spec["alpha"]
        u, i, w = data["users"][idx], data["items"][idx], data["weights"][idx]
        scale = 1.0 / data["n"]  # the penalty is spread over the epoch's interactions
        if self._spec["mode"] == "explicit":
            err = data["values"][idx] - m(u, i)
            fit = (w * err * err).mean()
            penalty = (a_user * ((m.user_bias - self._center(m.user_bias)) ** 2).sum()
                       + a_item * ((m.item_bias - self._center(m.item_bias)) ** 2).sum())
        else:
            logp = m.item_bias - torch.logsumexp(m.item_bias, 0)
            fit = -(w * logp[i]).mean()
            penalty = a_item * (m.item_bias ** 2).sum()
        return fit + penalty * scale

    # ------------------------------------------------------------- inference
    def _fold_in(self, batch):
        """Closed-form user bias of each history row, ``[B]``."""
        m = self.module_
        a_user, _ = self._spec["alpha"]
        rows = batch.row_ids()
        counts = batch.row_counts().float()
        w = self._weights(counts, self._item_counts, rows, batch.indices) / self._weight_scale
        num = batch.row_sum(w * (batch.values - m.global_mean - m.item_bias[batch.indices]))
        den = batch.row_sum(w)
        return _damped(num, den, a_user, self._center(m.user_bias))

    def _score_batch(self, batch):
        m = self.module_
        if self._spec["mode"] == "implicit":
            return m.item_bias.unsqueeze(0).expand(batch.n_rows, -1)
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


def _damped(num, weight, alpha, center):
    """``(num + alpha * center) / (weight + alpha)``, 0 where both are 0."""
    den = weight + alpha
    out = (num + alpha * center) / den.clamp(min=1e-12)
    return torch.where(den > 0, out, torch.zeros_like(out))
