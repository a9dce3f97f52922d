"""Base classes: the estimator contract every skrec model keeps.

:class:`BaseRecommender` turns one per-model hook, ``_score_batch`` ("scores of these history
rows against all items"), into ``predict``, ``predict_at``, ``recommend``, ``score`` and
``transform``. :class:`TorchRecommender` adds the shared training loop for models trained by
gradient descent; such a model supplies a module, its training data, and a batch loss.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._torch import DeviceCSR, make_generator, resolve_device, topk_items
from ._torch.device import loading_device
from ._torch.distributed import active_group
from ._torch.training import (LR_SCHEDULES, OPTIMIZERS, Checkpoint, EarlyStopping, GradientTrainer, LRSchedule,
                              ProgressBar, TrainingResult, fit_epochs)
from .model_selection._heldout import unwrap_heldout
from .utils.validation import (
    check_heldout,
    check_interactions,
    check_items,
    check_k,
    check_param,
    check_random_seed,
    raise_invalid,
)

__all__ = ["BaseRecommender", "TorchRecommender", "register", "all_estimators", "store_params"]

_REGISTRY = []


def register(cls):
    """Class decorator: add an estimator to the registry the conformance suite runs over.

    The class provides ``_test_instances()``, a list of small, fast configurations.

    Examples
    --------
    >>> from skrec import BaselineBiases
    >>> BaselineBiases in all_estimators()
    True
    """
    _REGISTRY.append(cls)
    return cls


def all_estimators():
    """The registered estimator classes, in registration order.

    Examples
    --------
    >>> "MFRegressor" in [c.__name__ for c in all_estimators()]
    True
    """
    return list(_REGISTRY)


def store_params(estimator, arguments):
    """Store every constructor argument under its own name, and nothing else.

    Called as ``store_params(self, locals())`` at the end of an explicit ``__init__``: as
    scikit-learn requires, the constructor only stores its parameters (no validation, no
    derived state); ``get_params`` reads them back by name.

    Examples
    --------
    >>> class Model(BaseRecommender):
    ...     def __init__(self, n_factors=8, *, alpha=0.1):
    ...         store_params(self, locals())
    >>> Model(alpha=1.0).get_params()
    {'alpha': 1.0, 'n_factors': 8}
    """
    for name in type(estimator)._get_param_names():
        setattr(estimator, name, arguments[name])


def _can_transform(est):
    return est._supports_transform()


class BaseRecommender(BaseEstimator):
    """Shared behaviour of every skrec estimator.

    Subclasses implement ``_fit(X, warm, **fit_params)`` and ``_score_batch(batch)``, and optionally
    ``_transform_batch(batch)``. ``X`` reaching ``_fit`` is validated canonical CSR (the union
    of ``X`` and ``y``); ``batch`` is a :class:`skrec._torch.DeviceCSR` of history rows on
    ``device_``.

    Examples
    --------
    >>> from skrec import BaselineBiases
    >>> issubclass(BaselineBiases, BaseRecommender)
    True
    """

    _kind = "ranker"  # or "regressor": decides what score() measures
    _param_specs: dict = {}
    _inference_elements = 2**24  # bounds a score batch to B * n_items <= this

    # ----------------------------------------------------------------- hooks
    def _fit(self, X, warm, **fit_params):  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_batch(self, batch):  # pragma: no cover - abstract
        """Return a ``[B, n_items]`` float tensor of scores for the history rows ``batch``."""
        raise NotImplementedError

    def _transform_batch(self, batch):  # pragma: no cover - abstract
        raise NotImplementedError

    def _supports_transform(self):
        return type(self)._transform_batch is not BaseRecommender._transform_batch

    # Models that learn a vector per training row also define ``_learned_user_vectors()``
    # (``[n_users_, n_components]``); when ``_fold_in_reproduces_learned()`` is true (the
    # default for such models), the conformance suite checks that ``transform`` of the
    # training rows (fold-in) reproduces it. Models whose vectors are not identifiable (a
    # network) return False and test fold-in quality by scores instead.
    def _fold_in_reproduces_learned(self):
        return hasattr(self, "_learned_user_vectors") and self._supports_transform()

    @classmethod
    def _test_instances(cls):  # pragma: no cover - overridden by registered models
        return [cls()]

    # ------------------------------------------------------------ validation
    def _check_params(self):
        for name, spec in self._param_specs.items():
            check_param(name, getattr(self, name), **spec)
        if hasattr(self, "device"):
            resolve_device(self.device)
        rs = getattr(self, "random_state", None)
        if not isinstance(rs, (np.random.RandomState, np.random.Generator)):
            check_random_seed(rs)  # ints and None: type and range only, nothing is drawn

    def _validate_rows(self, X, name="X"):
        check_is_fitted(self, "n_items_")
        return check_interactions(X, name, n_items=self.n_items_, allow_empty=True, owner=type(self).__name__)

    def _is_warm(self):
        return bool(getattr(self, "warm_start", False)) and hasattr(self, "n_items_")

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, **fit_params):
        """Fit the model on the interactions ``X`` (and the held-out ``y`` when given).

        Parameters
        ----------
        X : sparse matrix or array-like of shape (n_users, n_items)
            Interactions; see the model's docstring for what the values mean.
        y : sparse matrix of the same shape or :class:`~skrec.model_selection.HeldOut`, optional
            Held-out interactions of the same rows. The model trains on the union of ``X``
            and ``y``, which lets one ``(X, y)`` pair pass through ``GridSearchCV``.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from skrec import BaselineBiases
        >>> X = sp.csr_matrix(np.array([[5, 4, 0], [4, 0, 1], [0, 5, 2]], dtype=float))
        >>> BaselineBiases(damping=1.0).fit(X).n_items_
        3
        """
        self._check_params()
        X = check_interactions(X, "X")
        if y is not None:
            y = check_heldout(unwrap_heldout(y, X), X)
            X = check_interactions(X + y, "X")
        warm = self._is_warm()
        if warm and X.shape != (self.n_users_, self.n_items_):
            raise_invalid("X", f"a matrix of shape ({self.n_users_}, {self.n_items_}) as in the previous fit, "
                               "to continue training (warm_start=True)", f"<shape {X.shape}>")
        params = set(self.get_params(deep=False))
        # A warm fit trains the fitted module (and the optimizer state) in place: keep a copy
        # to put back if it fails, so that the model stays the one the last fit returned.
        before = copy.deepcopy({k: v for k, v in vars(self).items() if k not in params}) if warm else None
        self.n_users_, self.n_items_ = X.shape
        self.n_features_in_ = self.n_items_  # sklearn's name for the input width
        device = getattr(self, "device", None)
        previous_device = getattr(self, "device_", None)
        self.device_ = resolve_device(device) if device is not None else torch.device("cpu")
        try:
            if warm and previous_device is not None and torch.device(previous_device) != self.device_:
                # Training continues where the model now runs (a checkpoint written on the CPU and
                # resumed on a GPU, or set_params(device=...)): the fitted state moves there; the
                # optimizer's moments stay on the CPU until load_state_dict places them.
                for key in [k for k in vars(self) if k not in params and k not in ("device_", "_optimizer_state")]:
                    setattr(self, key, _tree_to(getattr(self, key), self.device_))
            self._fit(X, warm, **fit_params)
        except Exception:  # a failed fit leaves no half-fitted state behind
            for key in [k for k in vars(self) if k not in params]:
                delattr(self, key)
            if warm:
                vars(self).update(before)
            raise
        return self

    # ------------------------------------------------------------- inference
    _history_dtype = torch.float32  # dtype of the history values on the device (order keys: float64)

    def _inference_width(self):
        """Elements one (row, item) pair costs in a score batch (1 for a dot product)."""
        return 1

    def _rows_per_batch(self, n_items=None):
        """Rows per inference batch so that ``rows * n_items * width <= _inference_elements``."""
        n_items = self.n_items_ if n_items is None else n_items
        return max(1, self._inference_elements // max(n_items * self._inference_width(), 1))

    def _row_batches(self, X):
        """Yield ``(start, DeviceCSR batch)`` over the rows of validated ``X``."""
        data = DeviceCSR.from_scipy(X, self.device_, dtype=self._history_dtype)
        step = self._rows_per_batch()
        for start in range(0, X.shape[0], step):
            yield start, data.slice_rows(start, min(start + step, X.shape[0]))

    def predict(self, X):
        """Scores of every item for each history row.

        Parameters
        ----------
        X : sparse matrix of shape (n_rows, n_items_)
            Histories (training rows or new users); items in the history are not masked.

        Returns
        -------
        ndarray of float32, shape (n_rows, n_items_)
            Predicted ratings (regressors) or relevance scores (rankers).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from skrec import BaselineBiases
        >>> X = sp.csr_matrix(np.array([[5, 4, 0], [4, 0, 1], [0, 5, 2]], dtype=float))
        >>> BaselineBiases(damping=1.0).fit(X).predict(X).shape
        (3, 3)
        """
        X = self._validate_rows(X)
        out = np.empty(X.shape, dtype=np.float32)
        with torch.no_grad():
            for start, batch in self._row_batches(X):
                out[start:start + batch.n_rows] = self._score_batch(batch).float().cpu().numpy()
        return out

    def predict_at(self, X, y):
        """Predictions at the stored positions of ``y`` only.

        Parameters
        ----------
        X : sparse matrix of shape (n_rows, n_items_)
            Histories.
        y : sparse matrix of the same shape or :class:`~skrec.model_selection.HeldOut`
            Positions to predict (e.g. held-out ratings); disjoint from ``X``.

        Returns
        -------
        scipy.sparse.csr_matrix
            ``y``'s sparsity pattern holding the predictions.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from skrec import BaselineBiases
        >>> X = sp.csr_matrix(np.array([[5, 4, 0], [4, 0, 1], [0, 5, 2]], dtype=float))
        >>> y = sp.csr_matrix(np.array([[0, 0, 3], [0, 0, 0], [0, 0, 0]], dtype=float))
        >>> BaselineBiases(damping=1.0).fit(X).predict_at(X, y).nnz
        1
        """
        X = self._validate_rows(X)
        return self._predict_pattern(X, check_heldout(unwrap_heldout(y, X), X))

    def _predict_pattern(self, X, y):
        """Predictions at ``y``'s stored positions (validated CSR; ``y`` may equal ``X``)."""
        target = DeviceCSR.from_scipy(y, self.device_)
        out = np.empty(y.nnz, dtype=np.float32)
        with torch.no_grad():
            for start, batch in self._row_batches(X):
                stop = start + batch.n_rows
                part = target.slice_rows(start, stop)
                scores = self._score_batch(batch)
                out[y.indptr[start]:y.indptr[stop]] = scores[part.row_ids(), part.indices].float().cpu().numpy()
        return sp.csr_matrix((out, y.indices.copy(), y.indptr.copy()), shape=y.shape)

    def recommend(self, X, k=10, *, exclude_seen=True, items=None):
        """Top-``k`` items for each history row, computed in row batches on the device.

        Parameters
        ----------
        X : sparse matrix of shape (n_rows, n_items_)
            Histories (training rows or new users).
        k : int, default=10
            List length, ``1 <= k <= n_items_`` (or ``len(items)``).
        exclude_seen : bool, default=True
            Never recommend an item of the row's history.
        items : array-like of int, optional
            Allow-list: rank only these items.

        Returns
        -------
        ids : ndarray of int64, shape (n_rows, k)
            Best first; ties broken by the lower item index; ``-1`` where a row has fewer
            than ``k`` available items.
        scores : ndarray of float32, shape (n_rows, k)
            Their scores (``-inf`` for ``-1`` ids).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from skrec import BaselineBiases
        >>> X = sp.csr_matrix(np.array([[5, 4, 0], [4, 0, 1], [0, 5, 2]], dtype=float))
        >>> ids, scores = BaselineBiases(damping=1.0).fit(X).recommend(X, k=1, items=[0, 2])
        >>> ids.ravel().tolist()  # row 1 has seen both allowed items: -1
        [2, -1, 0]
        """
        X = self._validate_rows(X)
        check_param("exclude_seen", exclude_seen, "bool")
        allow = check_items(items, self.n_items_)
        k = check_k(k, self.n_items_ if allow is None else allow.size)
        allow_t = None if allow is None else torch.as_tensor(allow, device=self.device_)
        ids = np.empty((X.shape[0], k), dtype=np.int64)
        top = np.empty((X.shape[0], k), dtype=np.float32)
        with torch.no_grad():
            for start, batch in self._row_batches(X):
                scores = self._score_batch(batch).to(torch.float32, copy=True)
                i, s = topk_items(scores, k, exclude=batch if exclude_seen else None, items=allow_t)
                ids[start:start + batch.n_rows] = i.cpu().numpy()
                top[start:start + batch.n_rows] = s.cpu().numpy()
        return ids, top

    @available_if(_can_transform)
    def transform(self, X):
        """User representation of each history row (see the model for what it is).

        Parameters
        ----------
        X : sparse matrix of shape (n_rows, n_items_)

        Returns
        -------
        ndarray of float32, shape (n_rows, n_components)

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from skrec import BaselineBiases
        >>> X = sp.csr_matrix(np.array([[5, 4, 0], [4, 0, 1], [0, 5, 2]], dtype=float))
        >>> BaselineBiases(damping=1.0).fit(X).transform(X).shape
        (3, 1)
        """
        X = self._validate_rows(X)
        parts = []
        with torch.no_grad():
            for _, batch in self._row_batches(X):
                parts.append(self._transform_batch(batch).float().cpu().numpy())
        return np.concatenate(parts, axis=0)

    @available_if(_can_transform)
    def fit_transform(self, X, y=None, **fit_params):
        """Fit on ``X`` (and ``y``), then return ``transform(X)``.

        Parameters
        ----------
        X : sparse matrix of shape (n_users, n_items)
        y : sparse matrix of the same shape, optional
            Held-out interactions of the same rows (trained on with ``X``, not transformed).
        **fit_params
            Passed to ``fit``.

        Returns
        -------
        ndarray of float32, shape (n_users, n_components)

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from skrec import BaselineBiases
        >>> X = sp.csr_matrix(np.array([[5, 4, 0], [4, 0, 1], [0, 5, 2]], dtype=float))
        >>> BaselineBiases(damping=1.0).fit_transform(X).shape
        (3, 1)
        """
        return self.fit(X, y, **fit_params).transform(X)

    def score(self, X, y=None):
        """Quality of the model on held-out interactions; higher is better.

        Rankers: NDCG@10 of ``recommend(X)`` against ``y``. Regressors: minus the RMSE of
        the predictions at ``y``'s positions. With ``y=None`` each row of ``X`` is split by
        :func:`skrec.model_selection.holdout_split` (20 %, ``random_state=0``).

        Parameters
        ----------
        X : sparse matrix of shape (n_rows, n_items_)
            Histories to fold in.
        y : sparse matrix of the same shape or :class:`~skrec.model_selection.HeldOut`, optional
            Held-out interactions of the same rows.

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from skrec import BaselineBiases
        >>> X = sp.csr_matrix(np.array([[5, 4, 0], [4, 0, 1], [0, 5, 2]], dtype=float))
        >>> y = sp.csr_matrix(np.array([[0, 0, 3], [0, 0, 0], [0, 0, 0]], dtype=float))
        >>> round(BaselineBiases(damping=1.0).fit(X).score(X, y), 3) < 0
        True
        """
        from .metrics import ndcg_at_k, rmse

        X = self._validate_rows(X)
        if y is None:
            from .model_selection import holdout_split

            X, y = holdout_split(X, 0.2, random_state=0)
        y = unwrap_heldout(y, X)
        if self._kind == "regressor":
            return -rmse(y, self.predict_at(X, y))
        y = check_heldout(y, X)
        if y.nnz == 0:
            raise_invalid("y", "held-out interactions with at least one stored entry", "<no stored interaction>")
        ids, _ = self.recommend(X, k=min(10, self.n_items_))
        return ndcg_at_k(y, ids, k=ids.shape[1])

    # -------------------------------------------------------------- pickling
    def __getstate__(self):
        state = dict(super().__getstate__())
        for key, value in list(state.items()):
            if isinstance(value, (torch.optim.Optimizer, torch.Generator)):
                del state[key]  # rebuilt on the next (warm) fit
            else:
                state[key] = _tree_to(value, "cpu")
        if "device_" in state:
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state):
        device = state.get("device_")
        if device is not None:
            dev = loading_device(device, type(self).__name__)
            state["device_"] = dev
            for key, value in state.items():
                if key != "_optimizer_state":  # kept on the CPU: load_state_dict places it
                    state[key] = _tree_to(value, dev)
        super().__setstate__(state)

    def __sklearn_tags__(self):
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # scipy sparse is the native input; dense 2-D arrays work too
        tags.target_tags.required = False  # y, when given, is held-out interactions, never a label
        tags.target_tags.single_output = False
        if self._supports_transform():
            # transform returns float32 user vectors whatever the input dtype.
            tags.transformer_tags = TransformerTags(preserves_dtype=[])
        return tags


def _tree_to(value, device):
    """``value`` with every tensor and module in it (dicts, lists, tuples too) on ``device``.

    The caller's objects are not changed: a module that is elsewhere is copied first.
    """
    device = torch.device(device)
    if isinstance(value, torch.nn.Module):
        if all(p.device == device for p in value.state_dict().values()):
            return value
        import copy

        return copy.deepcopy(value).to(device)
    if isinstance(value, torch.Tensor):
        return value if value.device == device else value.detach().to(device)
    if isinstance(value, dict):
        return {k: _tree_to(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and any(isinstance(v, (torch.Tensor, dict, list, tuple)) for v in value):
        return type(value)(_tree_to(v, device) for v in value)
    return value


_LOOP_SPECS = {
    "learning_rate": dict(kind="float", low=0, low_inclusive=False),
    "batch_size": dict(kind="int", low=1),
    "max_iter": dict(kind="int", low=1),
    "early_stopping": dict(kind="bool"),
    "validation_fraction": dict(kind="float", low=0, high=1, low_inclusive=False, high_inclusive=False),
    "n_iter_no_change": dict(kind="int", low=1),
    "tol": dict(kind="float", low=0),
    "optimizer": dict(kind="str", options=OPTIMIZERS),
    "lr_schedule": dict(kind="str", options=LR_SCHEDULES, allow_none=True),
    "lr_cycle": dict(kind="int", low=1),
    "checkpoint_every": dict(kind="int", low=0),
    "checkpoint_path": dict(kind="str", allow_none=True),
    "warm_start": dict(kind="bool"),
    "verbose": dict(kind="int", low=0),
}


class TorchRecommender(BaseRecommender):
    """Base of the models fitted through the training seam (:mod:`skrec._torch.training`).

    A model provides ``_make_trainer(X, *, generator, seed, warm, **fit_params)``, which
    returns a :class:`skrec._torch.training.Trainer` (gradient, ALS or closed form) holding
    the module and everything that exists only during the fit, and ``_score_batch``. The
    base seeds one generator on ``device_``, runs :func:`skrec._torch.training.fit_epochs`
    with the callbacks the loop parameters ask for (early stopping, learning-rate schedule,
    checkpoints, progress bar), then sets ``module_``, ``history_``, ``n_iter_``,
    ``best_iteration_``, ``best_score_`` (minus the best monitored value: higher is
    better), ``n_steps_`` and whatever the trainer's ``fitted_attributes()`` returns. The
    trainer is dropped. The parameters of the fit are kept as ``_spec`` (a copy of
    ``get_params()``, normalised by ``_fit_spec``): inference reads them, never the live
    parameters that ``set_params`` may change later.

    The shared loop parameters (one vocabulary): ``learning_rate``, ``batch_size``,
    ``max_iter``, ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``, ``tol``,
    ``optimizer``, ``lr_schedule``, ``lr_cycle``, ``checkpoint_every``, ``checkpoint_path``,
    ``warm_start``, ``device``, ``random_state``, ``verbose``. A model without gradient
    training leaves out those that do not apply.

    Examples
    --------
    >>> from skrec import BaselineBiases
    >>> issubclass(BaselineBiases, TorchRecommender)
    True
    """

    _param_specs = dict(_LOOP_SPECS)
    _structure = ()  # the parameters that shape the module: a warm fit refuses to change them

    # ----------------------------------------------------------------- hooks
    def _make_trainer(self, X, *, generator, seed, warm, **fit_params):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_spec(self, **fit_params):
        """The parameters inference reads, normalised once per fit."""
        return self.get_params(deep=False)

    def _validation_split(self, X, seed):
        """Random ``validation_fraction`` of the stored interactions (host, once per fit)."""
        rng = np.random.default_rng(seed)
        held = rng.random(X.nnz) < self.validation_fraction
        if not held.any() or held.all():
            raise_invalid("validation_fraction", "a fraction that leaves interactions on both sides of "
                          "the validation split", self.validation_fraction)
        coo = X.tocoo()
        parts = [sp.csr_matrix((coo.data[m], (coo.row[m], coo.col[m])), shape=X.shape) for m in (~held, held)]
        return parts[0], parts[1]

    def _validation_rows(self, n_rows, seed):
        """``(train_rows, val_rows, split_seed)``: a seeded ``validation_fraction`` of the rows held out.

        ``split_seed`` seeds the 80/20 split of the held-out rows (:meth:`_row_validation_split`).
        """
        rng = np.random.default_rng(seed)
        n_val = int(round(self.validation_fraction * n_rows))
        if n_val < 1 or n_val >= n_rows:
            raise_invalid("validation_fraction", f"a fraction that leaves rows on both sides of the validation "
                          f"split ({n_rows} rows)", self.validation_fraction)
        perm = rng.permutation(n_rows)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val]), int(rng.integers(2**31))

    def _row_validation_split(self, X, seed):
        """Hold out whole rows, each split 80/20 (fold in / rank), as protocol P2 does.

        Returns ``(X_train, (history, held_out))``; a model whose validation ranks unseen
        users sets ``_validation_split = TorchRecommender._row_validation_split``.
        """
        from .model_selection import holdout_split

        train_rows, val_rows, split_seed = self._validation_rows(X.shape[0], seed)
        return X[train_rows], holdout_split(X[val_rows], 0.2, random_state=split_seed)

    def _split(self, X, seed):
        """``(X_train, X_val)``: the validation split when early stopping, else ``(X, None)``."""
        if getattr(self, "early_stopping", False):
            return self._validation_split(X, seed)
        return X, None

    def _gradient_options(self, warm, *, betas=(0.9, 0.999), weight_decay=0.0):
        """Keyword arguments of :class:`GradientTrainer` from the loop parameters."""
        saved = getattr(self, "_optimizer_state", None) if warm else None
        state = saved[1] if saved is not None and saved[0] == self.optimizer else None
        spec = self._spec  # as normalised for this fit (a model may resolve "chosen for you" values)
        return dict(optimizer=self.optimizer, learning_rate=spec["learning_rate"], batch_size=spec["batch_size"],
                    weight_decay=weight_decay, betas=betas, optimizer_state=state,
                    n_steps=getattr(self, "n_steps_", 0) if warm else 0)

    # ------------------------------------------------------------------- fit
    def _check_params(self):
        super()._check_params()
        if getattr(self, "checkpoint_every", 0) and not self.checkpoint_path:
            raise_invalid("checkpoint_path", "a path (it may contain '{epoch}') when checkpoint_every > 0",
                          self.checkpoint_path)

    def _callbacks(self, trainer):
        callbacks = []
        if hasattr(self, "n_iter_no_change") and trainer.stops_early:
            callbacks.append(EarlyStopping(self.n_iter_no_change, self.tol,
                                           restore_best=trainer.has_validation))
        if getattr(self, "lr_schedule", None) is not None and isinstance(trainer, GradientTrainer):
            callbacks.append(LRSchedule(self.lr_schedule, self.lr_cycle))
        lead = active_group() is None or active_group().rank == 0  # one writer, one progress bar
        if getattr(self, "checkpoint_every", 0) and lead:
            callbacks.append(Checkpoint(self.checkpoint_every,
                                        lambda epoch, state: self._save_checkpoint(trainer, epoch, state)))
        if getattr(self, "verbose", 0) and lead:
            callbacks.append(ProgressBar(type(self).__name__, getattr(self, "max_iter", 1)))
        return callbacks

    def _fit(self, X, warm, **fit_params):
        if warm and hasattr(self, "_seed"):
            seed = self._seed + len(self.history_)  # fresh draws when training continues
        else:
            seed = self._seed = check_random_seed(getattr(self, "random_state", None))
        previous = self._spec if warm else None
        self._spec = self._fit_spec(**fit_params)
        changed = [k for k in self._structure if warm and self._spec[k] != previous[k]]
        if changed:
            raise_invalid("warm_start", f"False when the architecture changes ({', '.join(changed)} differ "
                          "from the fitted model)", True)
        generator = make_generator(seed, self.device_)
        group = active_group()
        if group is not None and group.backend == "nccl" and self.device_.type != "cuda":
            raise_invalid("device", "'cuda' or 'auto' on a GPU when training under data_parallel with the "
                          "NCCL backend", getattr(self, "device", None))
        trainer = self._make_trainer(X, generator=generator, seed=seed, warm=warm, previous=previous,
                                     **fit_params)
        if group is not None and group.world_size > 1 and isinstance(trainer, GradientTrainer):
            trainer.distribute(group)
        result = fit_epochs(trainer, getattr(self, "max_iter", 1), callbacks=self._callbacks(trainer),
                            history=self.history_ if warm else None, name=type(self).__name__)
        self._assign(trainer, result)

    def _assign(self, trainer, result):
        self.module_ = trainer.module
        for name, value in trainer.fitted_attributes().items():
            setattr(self, name, value)
        self.history_, self.n_iter_ = result.history, result.n_iter
        self.best_iteration_, self.best_score_ = result.best_iteration, result.best_score
        self.n_steps_ = trainer.n_steps
        state = trainer.optimizer_state()
        # On the CPU: torch's load_state_dict moves the moments, and the step counters of a
        # fused Adam, to the parameters' device.
        self._optimizer_state = None if state is None else (self.optimizer, _tree_to(state, "cpu"))

    def _save_checkpoint(self, trainer, epoch, state):
        """Write the estimator as it is after ``epoch`` (joblib; resumable with ``warm_start``).

        The snapshot holds that epoch's parameters and the optimizer's state, not the best
        state, which a resumed run measures anew.
        """
        import copy

        import joblib

        snapshot = copy.copy(self)
        snapshot._assign(trainer, TrainingResult(
            history=list(state.history), n_iter=len(state.history), best_iteration=state.best_iteration,
            monitor=state.monitor, best_score=-state.best_value if math.isfinite(state.best_value) else None))
        joblib.dump(snapshot, str(self.checkpoint_path).format(epoch=epoch))
