"""External ids <-> indices, and (user, item, value) triples -> canonical CSR matrices."""

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from ..utils.validation import check_param, describe, raise_invalid

_DUPLICATES = ("error", "last", "first", "sum")
_ID_KINDS = "biufUSO"


# ----------------------------------------------------------------------------- validation
def _check_ids(values, name, *, allow_empty=False):
    """A 1-D array of hashable, sortable ids (numbers or strings); never the caller's object."""
    if values is None or isinstance(values, (str, bytes, Mapping)) or np.isscalar(values):
        raise_invalid(name, "a 1-D array-like of ids", values, TypeError)
    try:
        arr = np.asarray(values)
    except Exception as exc:
        raise TypeError(f"{name} must be a 1-D array-like of ids; got {describe(values)} "
                        f"that numpy cannot read ({exc}).") from exc
    if arr.ndim != 1:
        raise_invalid(name, "a 1-D array-like of ids", f"<array of shape {arr.shape}>")
    if arr.dtype.kind not in _ID_KINDS:
        raise_invalid(name, "ids that are numbers or strings", f"<array of dtype {arr.dtype}>",
                      TypeError)
    if arr.size == 0 and not allow_empty:
        raise_invalid(name, "a non-empty array of ids", "<an empty array>")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise_invalid(name, "ids without NaN or infinite values",
                      f"<{int(np.sum(~np.isfinite(arr)))} non-finite ids>")
    if arr.dtype.kind == "O":
        bad = [v for v in arr[:1000].tolist() if v is None or (isinstance(v, float) and v != v)]
        if bad:
            raise_invalid(name, "ids without missing values (None/NaN)", f"<missing ids, e.g. {bad[0]!r}>")
        # object columns of str (pandas' usual) become a fixed-width str array: faster, exact
        if all(isinstance(v, str) for v in arr.tolist()):
            arr = arr.astype(str)
    return arr


def _check_numbers(values, name, n, *, allow_datetime=False):
    """A 1-D float64 copy of ``values`` of length ``n`` with finite entries."""
    try:
        arr = np.asarray(values)
    except Exception as exc:
        raise TypeError(f"{name} must be a 1-D array of numbers; got {describe(values)} "
                        f"that numpy cannot read ({exc}).") from exc
    if allow_datetime and arr.dtype.kind == "M":
        if np.any(np.isnat(arr)):
            raise_invalid(name, "free of missing values (NaT)", f"<{int(np.isnat(arr).sum())} NaT values>")
        arr = arr.astype("datetime64[ns]").astype(np.int64) / 1e9
    if arr.ndim != 1:
        raise_invalid(name, "a 1-D array of numbers", f"<array of shape {arr.shape}>")
    if arr.dtype.kind not in "biuf":
        raise_invalid(name, "a 1-D array of numbers", f"<array of dtype {arr.dtype}>", TypeError)
    if arr.shape[0] != n:
        raise_invalid(name, f"of the same length as users and items ({n})", f"<length {arr.shape[0]}>")
    arr = np.array(arr, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(arr)):
        raise_invalid(name, "free of NaN and infinite values",
                      f"<{int(np.sum(~np.isfinite(arr)))} non-finite values>")
    return arr


def _vocabulary(ids, name):
    """Given ids as an index space: a private copy, checked unique, plus its sorted view."""
    vocab = np.array(_check_ids(ids, name, allow_empty=True), copy=True)
    try:
        order = np.argsort(vocab, kind="stable")
    except TypeError as exc:
        raise TypeError(f"{name} must hold ids of one sortable type (all numbers or all "
                        f"strings); sorting them failed ({exc}).") from exc
    sorted_ids = vocab[order]
    if sorted_ids.size > 1:
        same = sorted_ids[1:] == sorted_ids[:-1]
        if np.any(same):
            example = sorted_ids[1:][same][:1].tolist()[0]
            raise_invalid(name, "unique ids", f"<{int(same.sum())} repeated ids, e.g. {example!r}>")
    return vocab, sorted_ids, order


def _unique(ids, name):
    try:
        return np.unique(ids)
    except TypeError as exc:
        raise TypeError(f"{name} must hold ids of one sortable type (all numbers or all "
                        f"strings); sorting them failed ({exc}).") from exc


def _compatible(vocab, query):
    num = "biuf"
    a, b = vocab.dtype.kind, query.dtype.kind
    if "O" in (a, b):
        return True
    return (a in num) == (b in num)


def _lookup(sorted_ids, order, query, name, vocab_name, handle_unknown):
    """Indices of ``query`` in the id space; unknown ids raise or map to -1."""
    n = sorted_ids.size
    found = np.zeros(query.shape[0], dtype=bool)
    idx = np.full(query.shape[0], -1, dtype=np.int64)
    if n and query.size and _compatible(sorted_ids, query):
        try:
            pos = np.minimum(np.searchsorted(sorted_ids, query), n - 1)
            found = np.asarray(sorted_ids[pos] == query, dtype=bool)
        except TypeError:
            found = np.zeros(query.shape[0], dtype=bool)
        else:
            idx[found] = order[pos[found]]
    if handle_unknown == "error" and not np.all(found):
        unknown = query[~found]
        examples = ", ".join(repr(v) for v in unknown[:5].tolist())
        raise_invalid(name, f"ids known to the encoder (seen in fit or given as {vocab_name})",
                      f"<{unknown.size} unknown ids, e.g. [{examples}]>")
    return idx


# ----------------------------------------------------------------------------- CSR assembly
def _assemble(rows, cols, n_rows, n_cols, arrays, *, duplicates="error", order_key=None,
              row_ids=None, col_ids=None, names=("users", "items")):
    """Build aligned canonical CSR matrices from coordinate arrays.

    ``arrays`` is a list of float64 arrays (values, timestamps, ...) that share the pattern.
    Returns ``(matrices, n_dropped)``. Duplicated (row, col) pairs are resolved by
    ``duplicates``: ``"last"``/``"first"`` keep the latest/earliest by ``order_key`` (then by
    input order); ``"sum"`` adds the first array and keeps the maximum of the others.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if n_rows and n_cols > np.iinfo(np.int64).max // max(n_rows, 1):
        raise ValueError(f"the matrix shape ({n_rows}, {n_cols}) is too large to encode.")
    keys = rows * n_cols + cols
    if keys.size < 2 or np.all(keys[1:] > keys[:-1]):
        perm = None  # already canonical (e.g. a file sorted by user then item)
    elif order_key is not None and duplicates in ("last", "first"):
        perm = np.lexsort((order_key, keys))  # stable: ties keep input order
    else:
        perm = np.argsort(keys, kind="stable")
    skeys = keys if perm is None else keys[perm]
    dup = skeys[1:] == skeys[:-1] if skeys.size > 1 else np.zeros(0, dtype=bool)
    n_dropped = int(dup.sum())
    out = [a if perm is None else a[perm] for a in arrays]
    if n_dropped:
        if duplicates == "error":
            k = skeys[1:][dup][0]
            r, c = divmod(int(k), n_cols)
            pair = (row_ids[r:r + 1].tolist()[0] if row_ids is not None else r,
                    col_ids[c:c + 1].tolist()[0] if col_ids is not None else c)
            raise ValueError(
                f"{names[0]} and {names[1]} must not repeat a (user, item) pair when "
                f"duplicates='error'; got {n_dropped} repeated pairs, e.g. {pair!r}. Pass "
                f"duplicates='last' (keep the latest), 'first' or 'sum' to resolve them.")
        if duplicates == "sum":
            starts = np.flatnonzero(np.concatenate(([True], ~dup)))
            with np.errstate(over="ignore"):
                summed = np.add.reduceat(out[0], starts)
            if not np.isfinite(summed).all():
                raise_invalid("values", "values whose sums over repeated (user, item) pairs stay finite "
                                        "(duplicates='sum')", f"<{int(np.sum(~np.isfinite(summed)))} sums "
                                                               "overflowing to inf>")
            out = [summed] + [np.maximum.reduceat(a, starts) for a in out[1:]]
            skeys = skeys[starts]
        else:
            keep = np.concatenate((~dup, [True])) if duplicates == "last" else np.concatenate(([True], ~dup))
            skeys = skeys[keep]
            out = [a[keep] for a in out]
    srows = skeys // n_cols
    scols = (skeys - srows * n_cols)
    idx_dtype = np.int32 if max(n_cols, skeys.size) < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n_rows + 1, dtype=idx_dtype)
    np.cumsum(np.bincount(srows, minlength=n_rows), out=indptr[1:])
    indices = scols.astype(idx_dtype)
    mats = []
    for a in out:
        m = sp.csr_matrix((a, indices.copy(), indptr.copy()), shape=(n_rows, n_cols))
        m.has_sorted_indices = True
        mats.append(m)
    return mats, n_dropped


# ----------------------------------------------------------------------------- public API
class InteractionEncoder(BaseEstimator):
    """Map external user/item ids to row/column indices and interactions to a CSR matrix.

    ``fit`` learns the id spaces (sorted unique ids, unless fixed by ``user_ids`` /
    ``item_ids``); ``transform`` turns (user, item[, value]) triples into a
    ``(n_users_, n_items_)`` CSR matrix; the ``transform_*`` / ``inverse_transform_*``
    methods map ids to indices and back.

    Parameters
    ----------
    user_ids, item_ids : array-like of ids, optional
        Fixed id spaces: row ``r`` is ``user_ids[r]`` (order kept as given). Ids must be
        unique; any numeric or string type. When omitted, ``fit`` uses the sorted unique ids.
    duplicates : {"error", "last", "first", "sum"}, default="error"
        What to do with a (user, item) pair given more than once: raise, keep the latest
        (by ``timestamps`` where given, then by input order), keep the earliest, or add
        the values (the timestamp kept is the latest).
    handle_unknown : {"error", "ignore"}, default="error"
        Unknown ids in ``transform`` raise a ``ValueError``, or are dropped (``-1`` in
        ``transform_users`` / ``transform_items``).

    Attributes
    ----------
    user_ids_, item_ids_ : ndarray
        External id of each row / column.
    n_users_, n_items_ : int
        Sizes of the id spaces.

    Examples
    --------
    >>> enc = InteractionEncoder().fit(["bob", "ann", "bob"], ["x", "y", "y"])
    >>> enc.user_ids_, enc.item_ids_
    (array(['ann', 'bob'], dtype='<U3'), array(['x', 'y'], dtype='<U1'))
    >>> X = enc.transform(["bob", "ann", "bob"], ["x", "y", "y"], values=[5, 3, 1])
    >>> X.toarray()
    array([[0., 3.],
           [5., 1.]])
    >>> enc.transform_items(["y", "x"]), enc.inverse_transform_users([1, 0])
    (array([1, 0]), array(['bob', 'ann'], dtype='<U3'))
    """

    def __init__(self, user_ids=None, item_ids=None, duplicates="error", handle_unknown="error"):
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.duplicates = duplicates
        self.handle_unknown = handle_unknown

    def fit(self, users, items):
        """Learn the user and item id spaces.

        Parameters
        ----------
        users, items : array-like of shape (n_interactions,)
            External ids of each interaction's user and item.

        Returns
        -------
        self : InteractionEncoder

        Examples
        --------
        >>> InteractionEncoder().fit([3, 1, 3], [10, 20, 10]).n_users_
        2
        """
        check_param("duplicates", self.duplicates, "str", options=_DUPLICATES)
        check_param("handle_unknown", self.handle_unknown, "str", options=("error", "ignore"))
        fixed_u, fixed_i = self.user_ids is not None, self.item_ids is not None
        users = _check_ids(users, "users", allow_empty=fixed_u and fixed_i)
        items = _check_ids(items, "items", allow_empty=fixed_u and fixed_i)
        if users.shape[0] != items.shape[0]:
            raise_invalid("items", f"of the same length as users ({users.shape[0]})",
                          f"<length {items.shape[0]}>")
        for name, fixed, seen in (("user", fixed_u, users), ("item", fixed_i, items)):
            if fixed:
                vocab, sorted_ids, order = _vocabulary(getattr(self, name + "_ids"), name + "_ids")
            else:
                vocab = sorted_ids = _unique(seen, name + "s")
                order = np.arange(vocab.size)
            setattr(self, name + "_ids_", vocab)
            setattr(self, f"_{name}_sorted", sorted_ids)
            setattr(self, f"_{name}_order", order)
        self.n_users_ = int(self.user_ids_.size)
        self.n_items_ = int(self.item_ids_.size)
        return self

    # -- id maps -------------------------------------------------------------------------
    def transform_users(self, ids):
        """Row indices of external user ids.

        Parameters
        ----------
        ids : array-like of shape (n,)

        Returns
        -------
        ndarray of int64
            ``-1`` for unknown ids when ``handle_unknown="ignore"``.

        Examples
        --------
        >>> InteractionEncoder().fit(["b", "a"], [1, 2]).transform_users(["a", "b", "a"])
        array([0, 1, 0])
        """
        check_is_fitted(self, "user_ids_")
        return _lookup(self._user_sorted, self._user_order, _check_ids(ids, "ids", allow_empty=True),
                       "ids", "user_ids", self.handle_unknown)

    def transform_items(self, ids):
        """Column indices of external item ids.

        Parameters
        ----------
        ids : array-like of shape (n,)

        Returns
        -------
        ndarray of int64
            ``-1`` for unknown ids when ``handle_unknown="ignore"``.

        Examples
        --------
        >>> InteractionEncoder().fit([1, 1], ["x", "y"]).transform_items(["y"])
        array([1])
        """
        check_is_fitted(self, "item_ids_")
        return _lookup(self._item_sorted, self._item_order, _check_ids(ids, "ids", allow_empty=True),
                       "ids", "item_ids", self.handle_unknown)

    def _inverse(self, idx, kind):
        check_is_fitted(self, "user_ids_")
        vocab = getattr(self, f"{kind}_ids_")
        arr = np.asarray(idx)
        if arr.dtype.kind not in "iu":
            raise_invalid("idx", "an array of integer indices", f"<dtype {arr.dtype}>", TypeError)
        if arr.size and (arr.min() < 0 or arr.max() >= vocab.size):
            raise_invalid("idx", f"indices in [0, {vocab.size})",
                          f"<values from {arr.min()} to {arr.max()}>")
        return vocab[arr]

    def inverse_transform_users(self, idx):
        """External user ids of row indices.

        Parameters
        ----------
        idx : array-like of int

        Returns
        -------
        ndarray
            Same shape as ``idx`` (so a ``(n, k)`` array of indices maps as a whole).

        Examples
        --------
        >>> InteractionEncoder().fit([7, 5], [1, 2]).inverse_transform_users([1, 0])
        array([7, 5])
        """
        return self._inverse(idx, "user")

    def inverse_transform_items(self, idx):
        """External item ids of column indices (e.g. the output of ``recommend``).

        Parameters
        ----------
        idx : array-like of int

        Returns
        -------
        ndarray
            Same shape as ``idx``.

        Examples
        --------
        >>> enc = InteractionEncoder().fit([1, 1, 1], ["c", "a", "b"])
        >>> enc.inverse_transform_items([[2, 0], [1, 2]])
        array([['c', 'a'],
               ['b', 'c']], dtype='<U1')
        """
        return self._inverse(idx, "item")

    # -- matrices ------------------------------------------------------------------------
    def _encode(self, users, items, values=None, timestamps=None):
        check_is_fitted(self, "user_ids_")
        users = _check_ids(users, "users", allow_empty=True)
        items = _check_ids(items, "items", allow_empty=True)
        n = users.shape[0]
        if items.shape[0] != n:
            raise_invalid("items", f"of the same length as users ({n})", f"<length {items.shape[0]}>")
        vals = np.ones(n) if values is None else _check_numbers(values, "values", n)
        ts = None if timestamps is None else _check_numbers(timestamps, "timestamps", n, allow_datetime=True)
        rows = _lookup(self._user_sorted, self._user_order, users, "users", "user_ids", self.handle_unknown)
        cols = _lookup(self._item_sorted, self._item_order, items, "items", "item_ids", self.handle_unknown)
        n_unknown = 0
        if self.handle_unknown == "ignore":
            ok = (rows >= 0) & (cols >= 0)
            n_unknown = int(n - ok.sum())
            if n_unknown:
                rows, cols, vals = rows[ok], cols[ok], vals[ok]
                ts = None if ts is None else ts[ok]
        arrays = [vals] if ts is None else [vals, ts]
        mats, n_dropped = _assemble(rows, cols, self.n_users_, self.n_items_, arrays,
                                    duplicates=self.duplicates, order_key=ts,
                                    row_ids=self.user_ids_, col_ids=self.item_ids_)
        return Bunch(X=mats[0], timestamps=mats[1] if ts is not None else None,
                     n_duplicates_dropped=n_dropped, n_unknown_dropped=n_unknown)

    def transform(self, users, items, values=None, *, timestamps=None):
        """Build the ``(n_users_, n_items_)`` CSR matrix of the given interactions.

        Parameters
        ----------
        users, items : array-like of shape (n_interactions,)
            External ids.
        values : array-like of shape (n_interactions,), optional
            Stored values (ratings, counts, order keys); ``1.0`` where omitted.
        timestamps : array-like of shape (n_interactions,), optional
            Only used to pick the latest/earliest duplicate (numbers or ``datetime64``).

        Returns
        -------
        scipy.sparse.csr_matrix of float64
            Canonical: sorted indices, no duplicates. A value of ``0`` is stored explicitly
            (estimators treat stored zeros as non-interactions).

        Examples
        --------
        >>> enc = InteractionEncoder(duplicates="last").fit(["u", "u"], ["a", "b"])
        >>> enc.transform(["u", "u"], ["a", "a"], values=[1, 4], timestamps=[20, 10]).toarray()
        array([[1., 0.]])
        """
        return self._encode(users, items, values, timestamps).X

    def fit_transform(self, users, items, values=None, *, timestamps=None):
        """Fit the id spaces on ``users``/``items``, then transform them.

        Parameters
        ----------
        users, items : array-like of shape (n_interactions,)
        values : array-like of shape (n_interactions,), optional
        timestamps : array-like of shape (n_interactions,), optional

        Returns
        -------
        scipy.sparse.csr_matrix of float64

        Examples
        --------
        >>> InteractionEncoder().fit_transform([2, 1], [5, 5]).toarray()
        array([[1.],
               [1.]])
        """
        return self.fit(users, items).transform(users, items, values, timestamps=timestamps)


def encode_interactions(users, items, values=None, *, timestamps=None, user_ids=None,
                        item_ids=None, duplicates="error"):
    """Encode (user, item[, value, timestamp]) triples as CSR matrices plus id maps.

    Parameters
    ----------
    users, items : array-like of shape (n_interactions,)
        External ids (numbers or strings; any sortable type).
    values : array-like of shape (n_interactions,), optional
        Ratings or weights; ``1.0`` where omitted.
    timestamps : array-like of shape (n_interactions,), optional
        Order keys (numbers, e.g. unix seconds, or ``datetime64``, turned into seconds);
        returned as a matrix with the same sparsity pattern as ``X``.
    user_ids, item_ids : array-like, optional
        Fix the index spaces (rows/columns in the given order); unknown ids in
        ``users``/``items`` raise a ``ValueError``. Default: the sorted unique ids seen.
    duplicates : {"error", "last", "first", "sum"}, default="error"
        See :class:`InteractionEncoder`.

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (CSR float64, ``(n_users, n_items)``), ``timestamps`` (CSR or ``None``),
        ``user_ids``, ``item_ids``, ``n_duplicates_dropped`` and ``encoder`` (the fitted
        :class:`InteractionEncoder`, for mapping further ids).

    Examples
    --------
    >>> b = encode_interactions(["ann", "bob", "ann"], [30, 10, 10], values=[4.0, 5.0, 2.0])
    >>> b.X.toarray()
    array([[2., 4.],
           [5., 0.]])
    >>> b.user_ids, b.item_ids
    (array(['ann', 'bob'], dtype='<U3'), array([10, 30]))
    """
    enc = InteractionEncoder(user_ids=user_ids, item_ids=item_ids, duplicates=duplicates)
    enc.fit(users, items)
    out = enc._encode(users, items, values, timestamps)
    return Bunch(X=out.X, timestamps=out.timestamps, user_ids=enc.user_ids_,
                 item_ids=enc.item_ids_, n_duplicates_dropped=out.n_duplicates_dropped,
                 encoder=enc)


def encode_frame(df, user_col="user", item_col="item", value_col=None, time_col=None, *,
                 user_ids=None, item_ids=None, duplicates="error"):
    """Encode a table of interactions (a pandas DataFrame or a dict of columns) as CSR.

    pandas is not required: any object with ``columns`` and ``df[name]`` works, and so
    does a mapping of column names to arrays.

    Parameters
    ----------
    df : DataFrame-like or mapping of str to array-like
        One row per interaction.
    user_col, item_col : str, default="user", "item"
        Columns holding the external user and item ids.
    value_col : str, optional
        Column of ratings/weights; ``1.0`` for every interaction when omitted.
    time_col : str, optional
        Column of timestamps (numbers or datetimes), returned as an aligned matrix.
    user_ids, item_ids : array-like, optional
        Fixed index spaces, as in :func:`encode_interactions`.
    duplicates : {"error", "last", "first", "sum"}, default="error"
        See :class:`InteractionEncoder`.

    Returns
    -------
    sklearn.utils.Bunch
        As :func:`encode_interactions`.

    Examples
    --------
    >>> table = {"user": ["a", "b", "a"], "item": [1, 1, 2], "stars": [5, 3, 4]}
    >>> encode_frame(table, value_col="stars").X.toarray()
    array([[5., 4.],
           [3., 0.]])
    """
    if hasattr(df, "columns"):
        names = list(df.columns)
    elif isinstance(df, Mapping):
        names = list(df.keys())
    else:
        raise_invalid("df", "a DataFrame or a mapping of column names to arrays", df, TypeError)

    def column(arg, col):
        if col is None:
            return None
        if col not in names:
            raise_invalid(arg, f"a column of df (one of {names[:20]})", col)
        return np.asarray(df[col])

    return encode_interactions(column("user_col", user_col), column("item_col", item_col),
                               column("value_col", value_col), timestamps=column("time_col", time_col),
                               user_ids=user_ids, item_ids=item_ids, duplicates=duplicates)
