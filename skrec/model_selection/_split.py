"""Splits of a user x item interaction matrix: per-row holdout, interaction-level split,
held-out users and interaction filtering.

Everything here is vectorized over the stored entries of a CSR matrix (no Python loop over
rows), so a split of tens of millions of interactions takes a few seconds at most.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from skrec.model_selection._heldout import HeldOut
from skrec.utils.validation import (
    check_interactions,
    check_param,
    check_random_seed,
    raise_invalid,
)

__all__ = [
    "filter_interactions",
    "holdout_split",
    "split_users",
    "train_test_split_interactions",
]


# --------------------------------------------------------------------------- helpers


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_float(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and not _is_int(value)


def _round_half_up(x):
    """Nearest integer, halves rounded up (``2.5 -> 3``), element-wise, as int64."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def _check_fraction_or_count(name, value, *, allow_zero=False):
    """``value`` must be a float in (0, 1) ([0, 1) with allow_zero) or an int >= 1 (>= 0)."""
    low = 0 if allow_zero else 1
    expected = (f"a float in {'[' if allow_zero else '('}0, 1) or an int >= {low}")
    if _is_int(value):
        if value < low:
            raise_invalid(name, expected, value)
        return int(value)
    if _is_float(value):
        if not np.isfinite(value) or not ((0 <= value if allow_zero else 0 < value) and value < 1):
            raise_invalid(name, expected, value)
        return float(value)
    raise_invalid(name, expected, value, TypeError)


def _row_ids(X):
    """Row index of every stored entry of the CSR matrix ``X`` (int64, CSR order)."""
    return np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))


def _subset(X, rows, mask):
    """New CSR matrix of ``X``'s shape holding the entries where ``mask`` is true (copies)."""
    counts = np.bincount(rows[mask], minlength=X.shape[0])
    indptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return sp.csr_matrix((X.data[mask], X.indices[mask], indptr), shape=X.shape)


def _sort_within_rows(rows, n_rows, key_rank):
    """Permutation sorting the entries by (row, key_rank); ``key_rank`` holds distinct ints."""
    nnz = rows.size
    if n_rows * max(nnz, 1) < 2**62:  # one int64 sort on a combined key (much faster)
        return np.argsort(rows * nnz + key_rank)
    return np.lexsort((key_rank, rows))  # pragma: no cover - astronomically large inputs


def _order_keys(order, X, rows, name="order"):
    """Order key of every stored entry of ``X`` (CSR order), read from ``order``.

    ``order`` must store a key at each stored entry of ``X``; keys at other positions are
    ignored (so the full timestamp matrix can order an ``X`` that is already a history).
    ``name`` is the argument named in error messages.
    """
    expected = f"a sparse matrix or 2-D array of shape {X.shape} (order keys aligned with X)"
    if sp.issparse(order):
        if order.ndim != 2 or order.shape != X.shape:
            raise_invalid(name, expected, order)
        o = check_interactions(order, name, allow_empty=True, keep_zeros=True)
        if o.nnz == X.nnz and np.array_equal(o.indptr, X.indptr) and np.array_equal(o.indices, X.indices):
            keys = np.asarray(o.data, dtype=np.float64)
        else:
            o_keys = _row_ids(o) * X.shape[1] + o.indices
            x_keys = rows * X.shape[1] + X.indices
            pos = np.searchsorted(o_keys, x_keys)
            found = pos < o_keys.size
            found[found] = o_keys[pos[found]] == x_keys[found]
            if not found.all():
                raise_invalid(name, "a matrix storing a key at every stored entry of X",
                              f"<{int((~found).sum())} entries of X without an order key>")
            keys = np.asarray(o.data[pos], dtype=np.float64)
    else:
        if isinstance(order, (str, bytes, dict)) or not (hasattr(order, "__len__") or hasattr(order, "__array__")):
            raise_invalid(name, expected, order, TypeError)
        arr = np.asarray(order)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise_invalid(name, "a matrix of numbers", f"<array of dtype {arr.dtype}>", TypeError)
        if arr.shape != X.shape:
            raise_invalid(name, expected, f"<array of shape {arr.shape}>")
        keys = np.asarray(arr[rows, X.indices], dtype=np.float64)
    if not np.all(np.isfinite(keys)):
        raise_invalid(name, "free of NaN and infinite values at X's entries",
                      f"<{int(np.sum(~np.isfinite(keys)))} non-finite keys>")
    return keys


# --------------------------------------------------------------------------- public API


def holdout_split(X, test_size=0.2, *, strategy="random", order=None, min_history=1,
                  random_state=None, as_heldout=False):
    """Hold out part of every row: split each user's history into a history and a target.

    This is the per-row split of protocols P2 (fold in 80 %, rank 20 %), P3 (leave the last
    interaction out, ``test_size=1, strategy="last"``) and P4 (80/20 of each user's
    interactions). The two results are disjoint and add up to ``X``.

    Parameters
    ----------
    X : sparse matrix or 2-D array-like of shape (n_users, n_items)
        Interactions; a row is one user's history. Never modified.
    test_size : float in (0, 1) or int >= 1, default=0.2
        Per row with ``n_u`` stored items: a float holds out ``round(test_size * n_u)``
        items (halves rounded up) but at least 1; an int holds out that many items. In both
        cases at most ``n_u - min_history`` items are held out, so rows with
        ``n_u <= min_history`` stay wholly in the history and add nothing to ``y_heldout``.
    strategy : {"random", "last"}, default="random"
        ``"random"``: the held-out items of each row are drawn uniformly at random (seeded by
        ``random_state``). ``"last"``: the items with the largest order keys are held out;
        between equal keys the larger item index counts as later (so it is held out first).
    order : sparse matrix or 2-D array of shape (n_users, n_items), optional
        Order keys (timestamps, positions; larger = later) for ``strategy="last"``, aligned
        with ``X``: it must store a key at every stored entry of ``X``; keys at other
        positions are ignored, so the full timestamp matrix can order an ``X`` that is
        already a history. ``None`` uses ``X``'s own values as the order keys (the
        convention of sequence models). Only valid with ``strategy="last"``.
    min_history : int >= 0, default=1
        Minimum number of items left in each row's history.
    random_state : int, RandomState instance, Generator or None, default=None
        Seed of the ``"random"`` strategy (ignored by ``"last"``).
    as_heldout : bool, default=False
        Return ``y_heldout`` as a :class:`HeldOut` (the target ``cross_validate``,
        ``validation_curve``, ``learning_curve`` and ``permutation_test_score`` accept)
        instead of a sparse matrix.

    Returns
    -------
    X_history : scipy.sparse.csr_matrix of shape (n_users, n_items)
        The kept interactions (float64, values preserved).
    y_heldout : scipy.sparse.csr_matrix or HeldOut of shape (n_users, n_items)
        The held-out interactions, disjoint from ``X_history``;
        ``X_history + y_heldout`` equals ``X``.

    See Also
    --------
    train_test_split_interactions : split the stored entries regardless of rows (P1).
    split_users : hold out whole users (P2).

    Notes
    -----
    Vectorized: a random permutation (or the rank of the order key) gives every interaction
    a distinct key, one ``argsort`` by (row, key) groups each row in key order, and the rank
    within the row comes from ``indptr`` arithmetic (about 1 s per 5 M interactions). Explicitly stored zeros
    in ``X`` are not interactions and are dropped.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skrec.model_selection import holdout_split
    >>> X = sp.csr_matrix(np.array([[1, 2, 3, 4, 5],
    ...                             [0, 0, 7, 0, 0]], dtype=float))
    >>> X_hist, y = holdout_split(X, 0.4, random_state=0)
    >>> X_hist.getnnz(axis=1).tolist(), y.getnnz(axis=1).tolist()  # 1-item row: kept whole
    ([3, 1], [2, 0])
    >>> (X_hist + y != X).nnz
    0

    Leave the last interaction out by timestamp (protocol P3):

    >>> times = sp.csr_matrix(np.array([[50, 10, 40, 20, 30],
    ...                                 [0, 0, 99, 0, 0]], dtype=float))
    >>> X_hist, y = holdout_split(X, 1, strategy="last", order=times)
    >>> y.toarray()
    array([[1., 0., 0., 0., 0.],
           [0., 0., 0., 0., 0.]])

    For ``cross_validate`` and the other tools that refuse a sparse ``y``:

    >>> holdout_split(X, 0.4, random_state=0, as_heldout=True)[1]
    HeldOut(<2x5 sparse matrix with 2 held-out interactions>, overlap='raise')
    """
    X = check_interactions(X, "X")
    test_size = _check_fraction_or_count("test_size", test_size)
    strategy = check_param("strategy", strategy, "str", options=("random", "last"))
    min_history = int(check_param("min_history", min_history, "int", low=0))
    as_heldout = check_param("as_heldout", as_heldout, "bool")
    if strategy == "random" and order is not None:
        raise_invalid("order", "None when strategy='random' (order keys are only used by "
                      "strategy='last')", order)

    rows = _row_ids(X)
    n_per_row = np.diff(X.indptr)
    if isinstance(test_size, float):
        n_test = np.maximum(_round_half_up(test_size * n_per_row), 1)
    else:
        n_test = np.full(X.shape[0], test_size, dtype=np.int64)
    n_test = np.clip(np.minimum(n_test, n_per_row - min_history), 0, None)

    if strategy == "random":
        rng = np.random.default_rng(check_random_seed(random_state))
        key_rank = rng.permutation(X.nnz)  # distinct random keys: a uniform order per row
    else:
        keys = X.data if order is None else _order_keys(order, X, rows)
        # global rank of each key; the stable sort keeps CSR order (item index ascending)
        # between equal keys, so the larger item index of a tie counts as later
        key_rank = np.empty(X.nnz, dtype=np.int64)
        key_rank[np.argsort(keys, kind="stable")] = np.arange(X.nnz, dtype=np.int64)
    perm = _sort_within_rows(rows, X.shape[0], key_rank)
    # ``rows[perm] == rows`` (entries stay grouped by row), so the position of an entry in
    # the sorted order minus its row start is its rank within the row (0 = first); the
    # entries ranked in the last ``n_test`` places of their row are held out.
    first_held = (X.indptr[:-1] + n_per_row - n_test)[rows]
    held = np.zeros(X.nnz, dtype=bool)
    held[perm[np.arange(X.nnz, dtype=np.int64) >= first_held]] = True
    y = _subset(X, rows, held)
    return _subset(X, rows, ~held), (HeldOut._wrap(y, "raise") if as_heldout else y)


def train_test_split_interactions(X, test_size=0.2, *, random_state=None):
    """Split the stored interactions of ``X`` at random, regardless of rows (protocol P1).

    Each stored entry goes to exactly one of the two matrices, both of ``X``'s shape: the
    rating-holdout split of rating-prediction benchmarks (a random split over ratings, as
    one fold of ``KFold(shuffle=True)`` over the entries).

    Parameters
    ----------
    X : sparse matrix or 2-D array-like of shape (n_users, n_items)
        Interactions or ratings. Never modified.
    test_size : float in (0, 1) or int >= 1, default=0.2
        A float: the fraction of the stored entries that goes to the test matrix,
        ``round(test_size * nnz)`` (halves rounded up) but at least 1; an int: that many
        entries. The training matrix must keep at least one entry.
    random_state : int, RandomState instance, Generator or None, default=None
        Seed of the split.

    Returns
    -------
    X_train : scipy.sparse.csr_matrix of shape (n_users, n_items)
    X_test : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Disjoint; ``X_train + X_test`` equals ``X``. The test entries are a uniformly random
        subset of the stored entries.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skrec.model_selection import train_test_split_interactions
    >>> X = sp.random(50, 40, density=0.1, format="csr", random_state=0)
    >>> X_train, X_test = train_test_split_interactions(X, 0.25, random_state=0)
    >>> X_train.nnz, X_test.nnz
    (150, 50)
    >>> (X_train + X_test != X).nnz
    0
    """
    X = check_interactions(X, "X")
    test_size = _check_fraction_or_count("test_size", test_size)
    if isinstance(test_size, float):
        n_test = max(int(_round_half_up(test_size * X.nnz)), 1)
    else:
        n_test = test_size
    if n_test >= X.nnz:
        raise_invalid("test_size", f"smaller than the number of stored entries ({X.nnz}) so "
                      "that the training matrix is not empty",
                      f"<{test_size!r}, i.e. {n_test} test entries>")
    rng = np.random.default_rng(check_random_seed(random_state))
    held = np.zeros(X.nnz, dtype=bool)
    held[rng.permutation(X.nnz)[:n_test]] = True
    rows = _row_ids(X)
    return _subset(X, rows, ~held), _subset(X, rows, held)


def split_users(X_or_n_users, *, test_size=0.1, validation_size=0.1, min_interactions=0,
                random_state=None):
    """Split the rows (users) into training, validation and test users (protocol P2).

    Strong generalization: the validation and test users are never seen in training; their
    rows are then split with :func:`holdout_split` into a folded-in history and a target.

    Parameters
    ----------
    X_or_n_users : sparse matrix, 2-D array-like or int >= 1
        The interaction matrix (its rows are split) or the number of rows.
    test_size : float in [0, 1) or int >= 0, default=0.1
        Test users: a fraction of the eligible rows (``round(test_size * n)``, halves
        rounded up, at least 1 when ``test_size > 0``) or a count.
    validation_size : float in [0, 1) or int >= 0, default=0.1
        Validation users, counted the same way (from the eligible rows, not from the rest).
    min_interactions : int >= 0, default=0
        Only with a matrix: rows with fewer stored entries are not eligible and appear in
        none of the three outputs (they are dropped, not assigned to training).
    random_state : int, RandomState instance, Generator or None, default=None
        Seed of the split.

    Returns
    -------
    train_rows, validation_rows, test_rows : numpy.ndarray of int64
        Sorted, disjoint row indices; together they are all eligible rows. At least one row
        is left for training.

    Examples
    --------
    >>> from skrec.model_selection import split_users
    >>> train, val, test = split_users(10, test_size=0.2, validation_size=0.1, random_state=0)
    >>> len(train), len(val), len(test)
    (7, 1, 2)
    >>> sorted(set(train) | set(val) | set(test)) == list(range(10))
    True
    """
    min_interactions = int(check_param("min_interactions", min_interactions, "int", low=0))
    if _is_int(X_or_n_users):
        if X_or_n_users < 1:
            raise_invalid("X_or_n_users", "an int >= 1 or an interaction matrix", X_or_n_users)
        if min_interactions > 0:
            raise_invalid("min_interactions", "0 when X_or_n_users is a number of rows "
                          "(filtering by interactions needs the matrix)", min_interactions)
        eligible = np.arange(int(X_or_n_users), dtype=np.int64)
    elif isinstance(X_or_n_users, (bool, np.bool_, numbers.Real, str, bytes)) or X_or_n_users is None:
        raise_invalid("X_or_n_users", "an int >= 1 or an interaction matrix", X_or_n_users, TypeError)
    else:
        X = check_interactions(X_or_n_users, "X_or_n_users", allow_empty=True)
        eligible = np.flatnonzero(np.diff(X.indptr) >= min_interactions).astype(np.int64)
        if eligible.size == 0:
            raise_invalid("min_interactions", "at most the largest number of interactions of a "
                          "row so that some row is eligible",
                          f"<{min_interactions}, while rows have at most "
                          f"{int(np.diff(X.indptr).max())}>")
    test_size = _check_fraction_or_count("test_size", test_size, allow_zero=True)
    validation_size = _check_fraction_or_count("validation_size", validation_size, allow_zero=True)
    n = eligible.size

    def count(size):
        if isinstance(size, float):
            return max(int(_round_half_up(size * n)), 1) if size > 0 else 0
        return size

    n_test, n_val = count(test_size), count(validation_size)
    if n_test + n_val >= n:
        raise_invalid("test_size", f"such that test_size and validation_size leave at least one "
                      f"training row out of {n} eligible rows",
                      f"<{n_test} test and {n_val} validation rows>")
    rng = np.random.default_rng(check_random_seed(random_state))
    perm = eligible[rng.permutation(n)]
    test = np.sort(perm[:n_test])
    val = np.sort(perm[n_test:n_test + n_val])
    train = np.sort(perm[n_test + n_val:])
    return train, val, test


def filter_interactions(X, *, min_user=1, min_item=0, threshold=None, binarize=False,
                        iterate=False):
    """Keep strong interactions, then drop sparse items and users (P2 preparation).

    In this order: keep the entries with value ``>= threshold``; optionally set them to 1;
    drop the columns with fewer than ``min_item`` kept entries; drop the rows with fewer than
    ``min_user`` entries left. With ``iterate=False`` this is one pass, so every kept row has
    at least ``min_user`` entries but a kept column may fall below ``min_item`` after rows
    are dropped (it is not an iterated k-core); ``iterate=True`` repeats the two drops until
    nothing changes, so both minima hold (the k-core).

    Parameters
    ----------
    X : sparse matrix or 2-D array-like of shape (n_users, n_items)
        Interactions or ratings. Never modified.
    min_user : int >= 0, default=1
        Minimum number of kept entries of a row. The default drops rows left empty.
    min_item : int >= 0, default=0
        Minimum number of kept entries of a column. The default keeps every column (the item
        space is unchanged).
    threshold : float, optional
        Keep only entries with a value ``>= threshold`` (e.g. ratings >= 4 are positives).
    binarize : bool, default=False
        Set every kept value to 1.0.
    iterate : bool, default=False
        Repeat the column and row drops until both minima hold.

    Returns
    -------
    X_filtered : scipy.sparse.csr_matrix of shape (len(row_index), len(col_index))
        The kept entries (float64).
    row_index : numpy.ndarray of int64
        The original row of each row of ``X_filtered`` (sorted).
    col_index : numpy.ndarray of int64
        The original column of each column of ``X_filtered`` (sorted).

    Examples
    --------
    Ratings >= 4 become positives; users with at least 2 positives are kept:

    >>> import numpy as np
    >>> from skrec.model_selection import filter_interactions
    >>> R = np.array([[5, 4, 0, 1],
    ...               [3, 0, 4, 0],
    ...               [4, 5, 5, 0]], dtype=float)
    >>> Xf, rows, cols = filter_interactions(R, min_user=2, threshold=4, binarize=True)
    >>> rows, cols
    (array([0, 2]), array([0, 1, 2, 3]))
    >>> Xf.toarray()
    array([[1., 1., 0., 0.],
           [1., 1., 1., 0.]])
    """
    X = check_interactions(X, "X")
    min_user = int(check_param("min_user", min_user, "int", low=0))
    min_item = int(check_param("min_item", min_item, "int", low=0))
    threshold = check_param("threshold", threshold, "float", allow_none=True)
    binarize = check_param("binarize", binarize, "bool")
    iterate = check_param("iterate", iterate, "bool")

    rows = _row_ids(X)
    cols = X.indices
    keep = np.ones(X.nnz, dtype=bool) if threshold is None else X.data >= threshold
    row_ok = np.ones(X.shape[0], dtype=bool)
    col_ok = np.ones(X.shape[1], dtype=bool)
    while True:
        col_ok = np.bincount(cols[keep], minlength=X.shape[1]) >= min_item
        keep &= col_ok[cols]
        row_ok = np.bincount(rows[keep], minlength=X.shape[0]) >= min_user
        keep &= row_ok[rows]
        if not iterate:
            break
        col_counts = np.bincount(cols[keep], minlength=X.shape[1])
        if np.all(col_counts[col_ok] >= min_item):
            break
    row_index = np.flatnonzero(row_ok).astype(np.int64)
    col_index = np.flatnonzero(col_ok).astype(np.int64)
    new_row = np.cumsum(row_ok) - 1
    new_col = np.cumsum(col_ok) - 1
    data = np.ones(int(keep.sum())) if binarize else X.data[keep]
    # Entries keep their CSR order (rows and columns are renumbered monotonically).
    indptr = np.zeros(row_index.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(new_row[rows[keep]], minlength=row_index.size), out=indptr[1:])
    out = sp.csr_matrix((data, new_col[cols[keep]].astype(np.int64), indptr),
                        shape=(row_index.size, col_index.size))
    return out, row_index, col_index
