"""Base classes: the estimator contract every skrec model keeps.

:class:`BaseRecommender` turns one per-model hook, ``_score_batch`` ("scores of these history
rows against all items"), into ``predict``, ``predict_at``, ``recommend``, ``score`` and
``transform``. :class:`TorchRecommender` adds the shared training loop for models trained by
gradient descent; such a model supplies a module, its training data, and a batch loss.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._torch import DeviceCSR, LoopSettings, make_generator, make_optimizer, resolve_device, run_training, topk_items
from ._torch.training import LR_SCHEDULES, OPTIMIZERS
from .sampling import index_batches
from .utils.validation import (
    check_heldout,
    check_interactions,
    check_items,
    check_k,
    check_param,
    check_random_seed,
    raise_invalid,
)

__all__ = ["BaseRecommender", "TorchRecommender", "register", "all_estimators"]

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


def _can_transform(est):
    return est._supports_transform()


class BaseRecommender(BaseEstimator):
    """Shared behaviour of every skrec estimator.

    Subclasses implement ``_fit(X, warm)`` and ``_score_batch(batch)``, and optionally
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
    _allow_negative = True
    _param_specs: dict = {}
    _inference_elements = 2**24  # bounds a score batch to B * n_items <= this

    # ----------------------------------------------------------------- hooks
    def _fit(self, X, warm):  # pragma: no cover - abstract
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
        return check_interactions(X, name, n_items=self.n_items_, allow_negative=self._allow_negative,
                                  allow_empty=True)

    def _is_warm(self):
        return bool(getattr(self, "warm_start", False)) and hasattr(self, "n_items_")

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Fit the model on the interactions ``X`` (and the held-out ``y`` when given).

        Parameters
        ----------
        X : sparse matrix or array-like of shape (n_users, n_items)
            Interactions; see the model's docstring for what the values mean.
        y : sparse matrix of the same shape, optional
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
        >>> BaselineBiases(alpha=1.0).fit(X).n_items_
        3
        """
        self._check_params()
        X = check_interactions(X, "X", allow_negative=self._allow_negative)
        if y is not None:
            y = check_heldout(y, X, allow_negative=self._allow_negative)
            X = check_interactions(X + y, "X")
        warm = self._is_warm()
        if warm and X.shape != (self.n_users_, self.n_items_):
            raise_invalid("X", f"a matrix of shape ({self.n_users_}, {self.n_items_}) as in the previous fit, "
                               "to continue training (warm_start=True)", f"<shape {X.shape}>")
        self.n_users_, self.n_items_ = X.shape
        device = getattr(self, "device", None)
        self.device_ = resolve_device(device) if device is not None else torch.device("cpu")
        try:
            self._fit(X, warm)
        except Exception:
            if not warm:  # a failed fit leaves no half-fitted state behind
                for key in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
                    delattr(self, key)
            raise
        return self

    # ------------------------------------------------------------- inference
    def _row_batches(self, X):
        """Yield ``(start, DeviceCSR batch)`` over the rows of validated ``X``."""
        data = DeviceCSR.from_scipy(X, self.device_)
        step = max(1, self._inference_elements // self.n_items_)
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
        >>> BaselineBiases(alpha=1.0).fit(X).predict(X).shape
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
        y : sparse matrix of the same shape
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
        >>> BaselineBiases(alpha=1.0).fit(X).predict_at(X, y).nnz
        1
        """
        X = self._validate_rows(X)
        return self._predict_pattern(X, check_heldout(y, X))

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
        >>> ids, scores = BaselineBiases(alpha=1.0).fit(X).recommend(X, k=1, items=[0, 2])
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
        >>> BaselineBiases(alpha=1.0).fit(X).transform(X).shape
        (3, 1)
        """
        X = self._validate_rows(X)
        parts = []
        with torch.no_grad():
            for _, batch in self._row_batches(X):
                parts.append(self._transform_batch(batch).float().cpu().numpy())
        return np.concatenate(parts, axis=0)

    def score(self, X, y=None):
        """Quality of the model on held-out interactions; higher is better.

        Rankers: NDCG@10 of ``recommend(X)`` against ``y``. Regressors: minus the RMSE of
        the predictions at ``y``'s positions. With ``y=None`` each row of ``X`` is split by
        :func:`skrec.model_selection.holdout_split` (20 %, ``random_state=0``).

        Parameters
        ----------
        X : sparse matrix of shape (n_rows, n_items_)
            Histories to fold in.
        y : sparse matrix of the same shape, optional
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
        >>> round(BaselineBiases(alpha=1.0).fit(X).score(X, y), 3) < 0
        True
        """
        from .metrics import ndcg_at_k, rmse

        if y is None:
            from .model_selection import holdout_split

            X, y = holdout_split(self._validate_rows(X), 0.2, random_state=0)
        if self._kind == "regressor":
            return -rmse(y, self.predict_at(X, y))
        X = self._validate_rows(X)
        y = check_heldout(y, X)
        if y.nnz == 0:
            raise_invalid("y", "held-out interactions with at least one stored entry", "<no stored interaction>")
        ids, _ = self.recommend(X, k=min(10, self.n_items_))
        return ndcg_at_k(y, ids, k=ids.shape[1])

    # -------------------------------------------------------------- pickling
    def __getstate__(self):
        state = dict(super().__getstate__())
        for key, value in list(state.items()):
            if isinstance(value, (torch.Tensor, torch.nn.Module)):
                state[key] = _to_cpu(value)
            elif isinstance(value, (torch.optim.Optimizer, torch.Generator)):
                del state[key]  # rebuilt on the next (warm) fit
        if "device_" in state:
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state):
        device = state.get("device_")
        if device is not None:
            dev = torch.device(device)
            if dev.type == "cuda" and not torch.cuda.is_available():
                warnings.warn(f"{type(self).__name__} was fitted on {device}, which is not available "
                              "here; it is loaded on the CPU.", RuntimeWarning, stacklevel=2)
                dev = torch.device("cpu")
            state["device_"] = dev
            for key, value in state.items():
                if isinstance(value, (torch.Tensor, torch.nn.Module)):
                    state[key] = value.to(dev)
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.required = False
        return tags


def _to_cpu(value):
    if isinstance(value, torch.nn.Module):
        if all(p.device.type == "cpu" for p in value.state_dict().values()):
            return value
        import copy

        return copy.deepcopy(value).to("cpu")
    return value.detach().to("cpu")


_LOOP_SPECS = {
    "learning_rate": dict(kind="float", low=0, low_inclusive=False),
    "batch_size": dict(kind="int", low=1),
    "max_iter": dict(kind="int", low=1),
    "early_stopping": dict(kind="bool"),
    "validation_fraction": dict(kind="float", low=0, high=1, low_inclusive=False, high_inclusive=False),
    "n_iter_no_change": dict(kind="int", low=1),
    "tol": dict(kind="float", low=0),
    "lr_schedule": dict(kind="str", options=LR_SCHEDULES, allow_none=True),
    "lr_cycle": dict(kind="int", low=1),
    "checkpoint_every": dict(kind="int", low=0),
    "checkpoint_path": dict(kind="str", allow_none=True),
    "warm_start": dict(kind="bool"),
    "verbose": dict(kind="int", low=0),
}


class TorchRecommender(BaseRecommender):
    """Base of the models trained by gradient descent through the one loop.

    A model provides:

    - ``_build_module(X, generator)`` → an ``nn.Module`` (math only, no device in it);
    - ``_training_data(X)`` → whatever its loss needs, already on ``device_``, and
      ``_n_samples(data)``, the length the loop batches over;
    - ``_loss(data, idx, generator)`` → a scalar tensor for the batch ``idx``;
    - optionally ``_validation_split(X, seed)`` (default: a random ``validation_fraction``
      of the interactions) and ``_validation_loss(data, generator)`` (default: the mean
      loss over the validation data).

    Shared hyper-parameters (the one vocabulary): ``learning_rate``, ``batch_size``,
    ``max_iter``, ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``, ``tol``,
    ``optimizer``, ``lr_schedule``, ``lr_cycle``, ``checkpoint_every``, ``checkpoint_path``,
    ``warm_start``, ``device``, ``random_state``, ``verbose``.

    Examples
    --------
    >>> from skrec import BaselineBiases
    >>> issubclass(BaselineBiases, TorchRecommender)
    True
    """

    _param_specs = dict(_LOOP_SPECS, optimizer=dict(kind="str", options=OPTIMIZERS))

    # ----------------------------------------------------------------- hooks
    def _build_module(self, X, generator):  # pragma: no cover - abstract
        raise NotImplementedError

    def _training_data(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def _n_samples(self, data):  # pragma: no cover - abstract
        raise NotImplementedError

    def _loss(self, data, idx, generator):  # pragma: no cover - abstract
        raise NotImplementedError

    def _optimizer_name(self):
        return self.optimizer

    def _weight_decay(self):
        return 0.0

    _adam_betas = (0.9, 0.999)  # Adam's moment decay rates; transformers use (0.9, 0.98)

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

    def _validation_loss(self, data, generator):
        n = self._n_samples(data)
        total = torch.zeros((), device=self.device_)
        for idx in index_batches(n, self.batch_size, generator, shuffle=False):
            total = total + self._loss(data, idx, generator) * idx.shape[0]
        return total / n

    # ------------------------------------------------------------------- fit
    def _check_params(self):
        super()._check_params()
        if self.checkpoint_every and not self.checkpoint_path:
            raise_invalid("checkpoint_path", "a path (it may contain '{epoch}') when checkpoint_every > 0",
                          self.checkpoint_path)

    def _loop_settings(self):
        return LoopSettings(
            max_iter=self.max_iter, learning_rate=self.learning_rate, early_stopping=self.early_stopping,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol, verbose=self.verbose,
            lr_schedule=self.lr_schedule, lr_cycle=self.lr_cycle, checkpoint_every=self.checkpoint_every,
            checkpoint_path=self.checkpoint_path,
        )

    def _fit(self, X, warm):
        settings = self._loop_settings()
        if warm and hasattr(self, "_seed"):
            seed = self._seed + len(self.history_)  # fresh draws when training continues
        else:
            seed = self._seed = check_random_seed(self.random_state)
        generator = make_generator(seed, self.device_)
        # The same held-out interactions in every warm fit: nothing trained on leaks into validation.
        X_train, X_val = self._validation_split(X, self._seed) if self.early_stopping else (X, None)
        if not warm:
            self.module_ = self._build_module(X_train, generator).to(self.device_)
            self._optimizer = None
        if not warm or not hasattr(self, "history_"):
            self.history_ = []
        data = self._training_data(X_train)
        val = self._training_data(X_val) if X_val is not None else None
        config = (self._optimizer_name(), self.learning_rate, self._weight_decay(), self._adam_betas)
        if getattr(self, "_optimizer", None) is None or getattr(self, "_optimizer_config", None) != config:
            self._optimizer = make_optimizer(config[0], self.module_.parameters(), *config[1:])
            self._optimizer_config = config
        n = self._n_samples(data)
        validate = None
        if val is not None:
            def validate():
                return self._validation_loss(val, make_generator(seed + 1, self.device_))
        run_training(
            self, self.module_, self._optimizer,
            batches=lambda: index_batches(n, self.batch_size, generator),
            loss_fn=lambda idx: self._loss(data, idx, generator),
            settings=settings, steps_per_epoch=math.ceil(n / self.batch_size), validate=validate,
            history=self.history_ if warm else None,
        )
