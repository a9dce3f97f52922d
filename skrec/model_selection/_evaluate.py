"""``evaluate``: score a fitted recommender on ``(X, y)`` pairs with several metrics at once."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from skrec.model_selection._heldout import unwrap_heldout
from skrec.utils.validation import (
    check_heldout,
    check_interactions,
    check_param,
    raise_invalid,
)

__all__ = ["evaluate"]

RATING_METRICS = ("rmse", "mae")


def _batches(n_rows, batch_size):
    step = n_rows if batch_size is None else batch_size
    return [(start, min(start + step, n_rows)) for start in range(0, max(n_rows, 1), max(step, 1))]


def evaluate(estimator, X, y, metrics=("ndcg@10", "recall@20"), *, exclude_seen=True,
             batch_size=None):
    """Score a fitted recommender: rank (or predict) from ``X``, compare against ``y``.

    Each row of ``X`` is a user's history (folded in by the estimator) and the same row of
    ``y`` holds that user's held-out interactions, as produced by :func:`holdout_split`
    (protocols P2, P3, P4) or :func:`train_test_split_interactions` (P1).

    Ranking metrics make one call to ``estimator.recommend(X, k=max_k,
    exclude_seen=exclude_seen)`` (one per row batch with ``batch_size``), with ``max_k``
    the largest cut-off requested, and are computed by :func:`skrec.metrics.ranking_metrics`;
    ``"rmse"``/``"mae"`` make one call to ``estimator.predict_at(X, y)`` and compare the
    predictions with ``y``'s values.

    Parameters
    ----------
    estimator : object
        A fitted recommender with ``recommend`` (ranking metrics) and/or ``predict_at``
        (rating metrics).
    X : sparse matrix or 2-D array-like of shape (n_rows, n_items)
        History of each evaluated row.
    y : sparse matrix, 2-D array-like or HeldOut of shape (n_rows, n_items)
        Held-out interactions of the same rows. Rows without any are skipped and counted in
        ``n_rows_skipped``. With ``exclude_seen=True`` it must be disjoint from ``X``.
    metrics : str or sequence of str, default=("ndcg@10", "recall@20")
        ``"<name>@<k>"`` with ``<name>`` in recall, precision, ndcg, ap (or
        average_precision), hit_rate, mrr; and ``"rmse"``, ``"mae"``. Case-insensitive;
        whitespace around the name and the ``@`` is ignored. A name repeated in another
        case or spacing is computed and returned once, under its first spelling.
    exclude_seen : bool, default=True
        Whether the history items are excluded from the recommendations.
    batch_size : int >= 1, optional
        Rows per call of ``recommend``/``predict_at``; ``None`` makes a single call.

    Returns
    -------
    dict
        One float per requested metric (under the name as given), then
        ``"n_rows_evaluated"`` and ``"n_rows_skipped"`` (ints). With ranking metrics the
        counts come from :func:`~skrec.metrics.ranking_metrics`; with rating metrics only, a
        row is evaluated when ``y`` stores at least one entry in it.

    Notes
    -----
    When ``max_k`` exceeds the number of items, ``recommend`` is asked for every item and
    the lists are padded with ``-1`` (no item), as are shorter lists returned by the
    estimator.

    Examples
    --------
    A stand-in for a fitted model that ranks items by index, history excluded:

    >>> import numpy as np
    >>> from skrec.model_selection import evaluate
    >>> class ByIndex:
    ...     def recommend(self, X, k=10, *, exclude_seen=True, items=None):
    ...         scores = -np.tile(np.arange(X.shape[1], dtype=np.float32), (X.shape[0], 1))
    ...         scores[X.toarray() > 0] = -np.inf
    ...         ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    ...         return ids, np.take_along_axis(scores, ids, axis=1)
    >>> X = np.array([[1, 0, 0, 0], [0, 1, 0, 0]])
    >>> y = np.array([[0, 1, 0, 0], [0, 0, 0, 1]])
    >>> evaluate(ByIndex(), X, y, metrics=("hit_rate@1", "recall@3"))
    {'hit_rate@1': 0.5, 'recall@3': 1.0, 'n_rows_evaluated': 2, 'n_rows_skipped': 0}
    """
    # lazy: keeps model_selection importable on its own
    from skrec.metrics._names import parse_metric_names

    # [(key as given, normalized name, k or None)], in order, repeats dropped
    parsed = [(key, name if k is None else f"{name}@{k}", k)
              for key, name, k in parse_metric_names(metrics, arg="metrics",
                                                     extra=RATING_METRICS, canonical=False,
                                                     unique=True)]
    exclude_seen = check_param("exclude_seen", exclude_seen, "bool")
    batch_size = check_param("batch_size", batch_size, "int", low=1, allow_none=True)
    X = check_interactions(X, "X", allow_empty=True)
    y = unwrap_heldout(y, X, require_disjoint=exclude_seen)
    if exclude_seen:
        y = check_heldout(y, X, "y")
    else:
        y = check_interactions(y, "y", allow_empty=True)
        if y.shape != X.shape:
            raise_invalid("y", f"a matrix of the same shape as X {X.shape}", f"<shape {y.shape}>")
    if y.nnz == 0:
        raise_invalid("y", "a matrix with at least one held-out interaction",
                      "<no stored interaction>")

    ranking = [(key, name, k) for key, name, k in parsed if k is not None]
    rating = [(key, name) for key, name, k in parsed if k is None]
    if ranking and not callable(getattr(estimator, "recommend", None)):
        raise_invalid("estimator", "an object with a recommend(X, k, exclude_seen=...) method "
                      "for ranking metrics", f"<{type(estimator).__name__} without recommend>",
                      TypeError)
    if rating and not callable(getattr(estimator, "predict_at", None)):
        raise_invalid("estimator", "an object with a predict_at(X, y) method for rmse/mae",
                      f"<{type(estimator).__name__} without predict_at>", TypeError)

    from skrec import metrics as skm  # lazy: keeps model_selection importable on its own

    n_rows, n_items = X.shape
    batches = _batches(n_rows, batch_size)
    values = {}
    n_evaluated = n_skipped = None
    if ranking:
        max_k = max(k for _, _, k in ranking)
        k_call = min(max_k, n_items)
        parts = []
        for start, stop in batches:
            out = estimator.recommend(X[start:stop], k=k_call, exclude_seen=exclude_seen)
            ids = np.asarray(out[0] if isinstance(out, tuple) else out)
            if ids.ndim != 2 or ids.shape[0] != stop - start or ids.shape[1] > k_call:
                raise_invalid("estimator", f"an estimator whose recommend returns ids of shape "
                              f"({stop - start}, <= {k_call})", f"<ids of shape {ids.shape}>")
            if ids.shape[1] < max_k:
                pad = np.full((ids.shape[0], max_k - ids.shape[1]), -1, dtype=np.int64)
                ids = np.hstack([ids.astype(np.int64, copy=False), pad])
            parts.append(ids.astype(np.int64, copy=False))
        y_pred = np.vstack(parts) if len(parts) > 1 else parts[0]
        result = skm.ranking_metrics(y, y_pred, tuple(name for _, name, _ in ranking))
        for key, name, _ in ranking:
            values[key] = float(result[name])
        n_evaluated = int(result["n_rows_evaluated"])
        n_skipped = int(result["n_rows_skipped"])
    if rating:
        parts = []
        for start, stop in batches:
            pred = estimator.predict_at(X[start:stop], y[start:stop])
            if not sp.issparse(pred) or pred.shape != (stop - start, n_items):
                raise_invalid("estimator", f"an estimator whose predict_at returns a sparse "
                              f"matrix of shape {(stop - start, n_items)}", pred)
            parts.append(sp.csr_matrix(pred))
        y_hat = sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0]
        for key, name in rating:
            values[key] = float(getattr(skm, name)(y, y_hat))
        if n_evaluated is None:
            n_evaluated = int(np.count_nonzero(np.diff(y.indptr)))
            n_skipped = n_rows - n_evaluated
    ordered = {key: values[key] for key, _, _ in parsed}
    ordered["n_rows_evaluated"] = n_evaluated
    ordered["n_rows_skipped"] = n_skipped
    return ordered
