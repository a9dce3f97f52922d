"""Composition of estimators: a regressor fitted on what another one leaves (residual stacking)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone

from ._torch import DeviceCSR
from ._torch import Trainer
from .base import BaseRecommender, TorchRecommender, register, store_params
from .utils.validation import check_param, raise_invalid

__all__ = ["ResidualRegressor"]


class _StackTrainer(Trainer):
    """One epoch: fit the base on ``X``, then the residual model on what the base leaves."""

    max_epochs = 1

    def __init__(self, X, base, residual):
        self.X, self.base, self.residual = X, base, residual
        self.module = torch.nn.Module()

    def train_epoch(self):
        X = self.X
        self.base.fit(X)
        left = X.data - self.base._predict_pattern(X, X).data.astype(np.float64)
        left[left == 0] = 1e-12  # a stored zero would vanish from the sparse matrix
        R = sp.csr_matrix((left, X.indices.copy(), X.indptr.copy()), shape=X.shape)
        self.residual.fit(R)
        err = left - self.residual._predict_pattern(R, R).data  # the stack's training error
        return float(np.mean(err ** 2))

    def fitted_attributes(self):
        return {"base_": self.base, "residual_": self.residual, "device_": self.base.device_,
                "rating_range_": (float(self.X.data.min()), float(self.X.data.max()))}


@register
class ResidualRegressor(TorchRecommender):
    """Fit ``residual`` on the ratings minus the predictions of a fitted ``base``.

    ``fit`` clones and fits ``base`` on ``X``, then clones and fits ``residual`` on the
    residuals ``r - base(r)`` at the same positions. A history row is served the same way:
    ``base`` folds it in, the row's residuals are folded into ``residual``, and the two
    predictions add up. The composite is itself an estimator: it clones, pickles and
    grid-searches, with nested parameters such as ``residual__n_factors``.

    Parameters
    ----------
    base : regressor, default=None
        A skrec regressor (``BaselineBiases()`` when ``None``).
    residual : regressor, default=None
        A skrec regressor fitted on the residuals (``MFRegressor()`` when ``None``); it must
        accept negative values.
    clip : bool, default=True
        Clip the summed predictions to the rating range seen in ``fit``.
    device : str, optional
        When given, overrides the ``device`` of both estimators.
    random_state : int, optional
        When given, overrides the ``random_state`` of both estimators.

    Attributes
    ----------
    base_, residual_ : fitted estimators
    rating_range_ : (float, float)
    n_users_, n_items_, device_

    Notes
    -----
    A residual that is exactly 0 would be an absent entry for a sparse matrix; such values
    are stored as ``1e-12`` so that every rating stays a training example of ``residual``.

    Examples
    --------
    >>> from skrec import BaselineBiases, MFRegressor
    >>> from skrec.datasets import make_interactions
    >>> from skrec.model_selection import holdout_split
    >>> X = make_interactions(200, 80, kind="explicit", density=0.2, random_state=0).X
    >>> X_hist, y = holdout_split(X, 0.2, random_state=0)
    >>> stack = ResidualRegressor(BaselineBiases(), MFRegressor(n_factors=4, max_iter=20), random_state=0)
    >>> stack.fit(X_hist).predict_at(X_hist, y).nnz == y.nnz
    True
    """

    _kind = "regressor"

    def __init__(self, base=None, residual=None, *, clip=True, device=None, random_state=None):
        store_params(self, locals())

    @classmethod
    def _test_instances(cls):
        from .baseline import BaselineBiases
        from .factorization import MFRegressor

        return [cls(BaselineBiases(damping=2.0),
                    MFRegressor(n_factors=4, solver="gradient", alpha=0.02, learning_rate=0.02, batch_size=128,
                                max_iter=20))]

    def _check_params(self):
        check_param("clip", self.clip, "bool")
        for name in ("base", "residual"):
            est = getattr(self, name)
            if est is not None and not (isinstance(est, BaseRecommender) and est._kind == "regressor"):
                raise_invalid(name, "None or a skrec regressor (e.g. BaselineBiases(), MFRegressor())", est,
                              TypeError)
        if self.device is not None:
            from ._torch import resolve_device

            resolve_device(self.device)

    def _component(self, name):
        from .baseline import BaselineBiases
        from .factorization import MFRegressor

        est = getattr(self, name)
        est = clone(est) if est is not None else (BaselineBiases() if name == "base" else MFRegressor())
        overrides = {k: v for k, v in (("device", self.device), ("random_state", self.random_state))
                     if v is not None and k in est.get_params()}
        return est.set_params(**overrides)

    def _make_trainer(self, X, *, generator, seed, warm, previous=None):
        return _StackTrainer(X, self._component("base"), self._component("residual"))

    def _score_batch(self, batch):
        first = self.base_._score_batch(batch)
        left = batch.values - first[batch.row_ids(), batch.indices]
        left = torch.where(left == 0, torch.full_like(left, 1e-12), left)
        rest = DeviceCSR(batch.indptr, batch.indices, left, batch.shape, batch.indptr_host)
        dev = self.residual_.device_
        if dev != batch.values.device:
            rest = DeviceCSR(rest.indptr.to(dev), rest.indices.to(dev), rest.values.to(dev), rest.shape,
                             rest.indptr_host)
        scores = first + self.residual_._score_batch(rest).to(first.device)
        if self._spec["clip"]:  # the fit's value: set_params after the fit changes nothing
            scores = scores.clamp(*self.rating_range_)
        return scores
