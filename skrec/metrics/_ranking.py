"""Top-k ranking metrics with binary relevance (Mult-VAE definitions, DESIGN.md §4).

Everything is vectorized over rows: ranked ids are turned into one boolean hits matrix
``[n_rows, k]`` by looking each ``(row, item)`` key up in the sorted keys of ``y_true``,
and every metric is a few array reductions of that matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from skrec.utils.validation import check_interactions, check_k, check_param, describe, raise_invalid

from ._names import parse_metric_names

__all__ = [
    "average_precision_at_k",
    "hit_rate_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
]

# rows of a score matrix processed at once when taking the top k (bounds temporaries)
_SCORE_CHUNK_ELEMENTS = 1 << 24


def _check_y_true(y_true, allow_empty=True):
    """``check_interactions`` for ``y_true`` (a copy: the caller's matrix is never touched)."""
    return check_interactions(y_true, "y_true", allow_empty=allow_empty)


def _topk_from_scores(scores, k):
    """Top-``k`` item ids of each row of ``scores``, ties broken by the lower item index.

    Equal to ``np.argsort(-scores, axis=1, kind="stable")[:, :k]`` but selects the ``k``
    candidates with ``argpartition`` first, so only ``k`` values per row are sorted.
    """
    n_rows, n_items = scores.shape
    out = np.empty((n_rows, k), dtype=np.int64)
    chunk = max(1, _SCORE_CHUNK_ELEMENTS // max(n_items, 1))
    for start in range(0, n_rows, chunk):  # loop over row blocks, not rows
        neg = -scores[start:start + chunk]
        if k == n_items:
            out[start:start + chunk] = np.argsort(neg, axis=1, kind="stable")
            continue
        part = np.argpartition(neg, k - 1, axis=1)[:, :k]
        # k-th smallest -score of each row: everything strictly below is in the top k,
        # and the ties at the threshold are taken by increasing item index.
        thr = np.take_along_axis(neg, part, axis=1).max(axis=1)[:, None]
        below = neg < thr
        at = neg == thr
        need = k - below.sum(axis=1)
        selected = below | (at & (np.cumsum(at, axis=1) <= need[:, None]))
        cols = np.nonzero(selected)[1].reshape(-1, k)  # increasing item index per row
        order = np.argsort(np.take_along_axis(neg, cols, axis=1), axis=1, kind="stable")
        out[start:start + chunk] = np.take_along_axis(cols, order, axis=1)
    return out


def _ranked_ids(y_pred, n_rows, n_items, k, k_name="k"):
    """Validate ``y_pred`` and return the ranked ids ``(n_rows, k)`` as int64 (``-1`` = none)."""
    if not isinstance(y_pred, (np.ndarray, list, tuple)):
        raise_invalid("y_pred", "a numpy array of ranked item ids (integer dtype) or of "
                      "scores (floating dtype)", y_pred, TypeError)
    arr = np.asarray(y_pred)
    if np.issubdtype(arr.dtype, np.integer):
        kind = "ids"
    elif np.issubdtype(arr.dtype, np.floating):
        kind = "scores"
    else:
        raise_invalid("y_pred", "a numpy array of ranked item ids (integer dtype) or of "
                      "scores (floating dtype)", f"<array of dtype {arr.dtype}>", TypeError)
    if arr.ndim != 2 or arr.shape[0] != n_rows:
        raise_invalid("y_pred", f"a 2-D array with one row per row of y_true ({n_rows} rows)",
                      f"<array of shape {arr.shape}>")
    if kind == "scores":
        if arr.shape[1] != n_items:
            raise_invalid("y_pred", f"a score array with one column per item of y_true "
                          f"({n_items} columns)", f"<array of shape {arr.shape}>")
        n_nan = int(np.isnan(arr).sum())
        if n_nan:
            raise_invalid("y_pred", "scores free of NaN", f"<{n_nan} NaN values>")
        check_k(k, n_items, k_name)
        return _topk_from_scores(arr, k)
    if arr.shape[1] < k:
        raise_invalid("y_pred", f"an array of ranked item ids with at least {k_name}={k} "
                      "columns", f"<array of shape {arr.shape}>")
    ids = arr[:, :k].astype(np.int64)  # a copy: the caller's array is never touched
    if arr.size and (arr.min() < -1 or arr.max() >= n_items):
        raise_invalid("y_pred", f"item ids in [0, {n_items}) or -1 for padding",
                      f"<values from {arr.min()} to {arr.max()}>")
    if k > 1:
        srt = np.sort(ids, axis=1)
        dup = ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any(axis=1)
        if dup.any():
            raise_invalid("y_pred", f"ranked item ids without repeats within the first {k} "
                          "columns of a row", f"<{int(dup.sum())} rows with a repeated id, "
                          f"first row {int(np.flatnonzero(dup)[0])}>")
    return ids


def _hits_matrix(y_true, ids):
    """Boolean ``[n_rows, k]``: whether ``ids[r, j]`` is a relevant item of row ``r``."""
    n_rows, n_items = y_true.shape
    if y_true.nnz == 0 or ids.shape[1] == 0:
        return np.zeros(ids.shape, dtype=bool)
    # canonical CSR: these keys are sorted (rows ascending, indices sorted within a row)
    keys = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(y_true.indptr)) * n_items
    keys += y_true.indices
    query = np.arange(n_rows, dtype=np.int64)[:, None] * n_items + ids
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return (ids >= 0) & (keys[pos] == query)


def _discounts(k):
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _metric_values(name, hits, n_rel, k):
    """Per-row values of one metric for rows that all have ``n_rel >= 1``."""
    h = hits[:, :k]
    n_hits = h.sum(axis=1)
    denom = np.minimum(k, n_rel)
    if name == "recall":
        return n_hits / denom
    if name == "precision":
        return n_hits / float(k)
    if name == "ndcg":
        disc = _discounts(k)
        return (h @ disc) / np.cumsum(disc)[denom - 1]
    if name == "ap":
        prec = np.cumsum(h, axis=1) / np.arange(1, k + 1, dtype=np.float64)
        return (prec * h).sum(axis=1) / denom
    if name == "hit_rate":
        return (n_hits > 0).astype(np.float64)
    if name == "mrr":
        first = np.argmax(h, axis=1)
        return np.where(n_hits > 0, 1.0 / (first + 1.0), 0.0)
    raise AssertionError(name)  # pragma: no cover


def _evaluate(y_true, y_pred, specs, per_row, k_name):
    """Shared core: validate, build the hits matrix once for the largest k, reduce."""
    y_true = _check_y_true(y_true)
    n_rows, n_items = y_true.shape
    k_max = max(k for _, _, k in specs)
    ids = _ranked_ids(y_pred, n_rows, n_items, k_max, k_name)
    n_rel = np.diff(y_true.indptr)
    evaluated = n_rel > 0
    n_eval = int(evaluated.sum())
    if n_eval == 0:
        raise_invalid("y_true", "a matrix with at least one row holding a relevant item",
                      f"<{describe(y_true)} with no stored interaction>")
    hits = _hits_matrix(y_true, ids)[evaluated]
    n_rel_eval = n_rel[evaluated]
    result = {}
    for key, name, k in specs:
        values = _metric_values(name, hits, n_rel_eval, k)
        if per_row:
            full = np.full(n_rows, np.nan)
            full[evaluated] = values
            result[key] = full
        else:
            result[key] = float(values.mean())
    result["n_rows_evaluated"] = n_eval
    result["n_rows_skipped"] = n_rows - n_eval
    return result


def _single(name, y_true, y_pred, k):
    k = check_param("k", k, "int", low=1)
    return _evaluate(y_true, y_pred, [("value", name, k)], False, "k")["value"]


def _shared_parameters(func):
    """Fill a single-metric docstring's ``%(parameters)s`` with the block they all share."""
    import inspect

    k = inspect.signature(func).parameters["k"].default
    func.__doc__ = func.__doc__.replace("%(parameters)s", _PARAMETERS_DOC.format(k=k).strip() + "\n")
    return func


_PARAMETERS_DOC = """
    Parameters
    ----------
    y_true : sparse matrix of shape (n_rows, n_items)
        Held-out interactions; any stored non-zero is relevant. Rows without a relevant item
        are skipped.
    y_pred : ndarray of shape (n_rows, m) of int, or (n_rows, n_items) of float
        Ranked item ids (best first, ``-1`` = no item, ``m >= k``) or scores for every item
        (top ``k`` taken with ties broken by the lower item index).
    k : int, default={k}
        Length of the recommendation list.

    Returns
    -------
    float
        Mean over the rows that hold at least one relevant item.
"""


def ranking_metrics(y_true, y_pred, metrics=("ndcg@10",), *, per_row=False):
    """Several top-k ranking metrics at once, from one hits matrix.

    Parameters
    ----------
    y_true : sparse matrix of shape (n_rows, n_items)
        Held-out interactions; any stored non-zero is a relevant item. Rows without a
        relevant item are skipped (not counted in the means) and counted in
        ``"n_rows_skipped"``.
    y_pred : ndarray of shape (n_rows, m) of int, or (n_rows, n_items) of float
        Either ranked item ids, best first, with ``-1`` for "no item" (integer dtype,
        ``m >= k``), or scores for every item (floating dtype), from which the top ``k`` is
        taken with ties broken by the lower item index.
    metrics : str or sequence of str, default=("ndcg@10",)
        Names ``"<name>@<k>"`` with ``<name>`` one of ``recall``, ``precision``, ``ndcg``,
        ``ap`` (alias ``average_precision``), ``hit_rate``, ``mrr``. Case-insensitive;
        whitespace around the name and the ``@`` is ignored. Results are keyed by the
        names as given.
    per_row : bool, default=False
        Return per-row arrays (NaN for skipped rows) instead of means.

    Returns
    -------
    dict
        One entry per requested name (a float mean over the evaluated rows, or an array of
        shape ``(n_rows,)`` with ``per_row=True``), plus ``"n_rows_evaluated"`` and
        ``"n_rows_skipped"`` (ints).

    Raises
    ------
    ValueError
        If no row of ``y_true`` holds a relevant item, or for an unknown metric name.

    Notes
    -----
    The hits matrix is built once for the largest ``k`` requested; see the single-metric
    functions (e.g. :func:`ndcg_at_k`) for the formulas.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> y_true = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]]))
    >>> ids = np.array([[2, 1], [0, 1], [0, 1]])
    >>> res = ranking_metrics(y_true, ids, ["recall@2", "hit_rate@1"])
    >>> res["recall@2"], res["hit_rate@1"], res["n_rows_evaluated"], res["n_rows_skipped"]
    (0.75, 0.5, 2, 1)
    >>> ranking_metrics(y_true, ids, "precision@2", per_row=True)["precision@2"]
    array([0.5, nan, 0.5])
    """
    per_row = check_param("per_row", per_row, "bool")
    specs = parse_metric_names(metrics)
    return _evaluate(y_true, y_pred, specs, per_row, "k")


@_shared_parameters
def recall_at_k(y_true, y_pred, k=20):
    """Recall@k with binary relevance, normalised by ``min(k, |relevant|)``.

    %(parameters)s
    Notes
    -----
    ``recall@k = hits@k / min(k, |rel|)`` (Mult-VAE definition, so that a perfect list
    scores 1 even when a row has more than ``k`` relevant items).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> y_true = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0]]))
    >>> ids = np.array([[2, 1], [0, 3]])
    >>> recall_at_k(y_true, ids, k=2)  # (1/2 + 0/1) / 2
    0.25
    """
    return _single("recall", y_true, y_pred, k)


@_shared_parameters
def precision_at_k(y_true, y_pred, k=10):
    """Precision@k with binary relevance.

    %(parameters)s
    Notes
    -----
    ``precision@k = hits@k / k`` (padding ``-1`` counts as a miss).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> y_true = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0]]))
    >>> ids = np.array([[2, 0], [1, -1]])
    >>> precision_at_k(y_true, ids, k=2)  # (2/2 + 1/2) / 2
    0.75
    """
    return _single("precision", y_true, y_pred, k)


@_shared_parameters
def ndcg_at_k(y_true, y_pred, k=10):
    """Normalised discounted cumulative gain at k, binary relevance.

    %(parameters)s
    Notes
    -----
    ``DCG@k = sum_{i=1..k} rel_i / log2(i + 1)`` and
    ``IDCG = sum_{i=1..min(k, |rel|)} 1 / log2(i + 1)``; ``NDCG@k = DCG@k / IDCG``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> y_true = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0]]))
    >>> ids = np.array([[2, 1], [0, 1]])
    >>> # row 0: 1 / (1 + 1/log2(3)); row 1: (1/log2(3)) / 1
    >>> round(ndcg_at_k(y_true, ids, k=2), 4)
    0.622
    """
    return _single("ndcg", y_true, y_pred, k)


@_shared_parameters
def average_precision_at_k(y_true, y_pred, k=10):
    """Average precision at k, normalised by ``min(k, |relevant|)``.

    %(parameters)s
    Notes
    -----
    The mean over rows is MAP@k.

    ``AP@k = sum_{i=1..k} precision@i * rel_i / min(k, |rel|)``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> y_true = sp.csr_matrix(np.array([[1, 0, 1, 0]]))
    >>> ids = np.array([[0, 1, 2]])
    >>> round(average_precision_at_k(y_true, ids, k=3), 4)  # (1/1 + 2/3) / 2
    0.8333
    """
    return _single("ap", y_true, y_pred, k)


@_shared_parameters
def hit_rate_at_k(y_true, y_pred, k=10):
    """Hit rate at k: the fraction of rows with at least one relevant item in the top k.

    %(parameters)s
    Notes
    -----
    ``HR@k = 1 if hits@k > 0 else 0`` per row.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> y_true = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0]]))
    >>> ids = np.array([[3, 2], [0, 3]])
    >>> hit_rate_at_k(y_true, ids, k=2)  # (1 + 0) / 2
    0.5
    """
    return _single("hit_rate", y_true, y_pred, k)


@_shared_parameters
def mrr_at_k(y_true, y_pred, k=10):
    """Mean reciprocal rank of the first relevant item within the top k.

    %(parameters)s
    Notes
    -----
    ``RR@k = 1 / rank`` of the first relevant item (ranks start at 1), 0 if none is in the
    top ``k``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> y_true = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0]]))
    >>> scores = np.array([[0.1, 0.9, 0.5, 0.0], [0.3, 0.0, 0.2, 0.1]])
    >>> mrr_at_k(y_true, scores, k=2)  # (1/2 + 0) / 2
    0.25
    """
    return _single("mrr", y_true, y_pred, k)
