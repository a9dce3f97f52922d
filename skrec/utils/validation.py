"""Input validation: one place, one wording for every error skrec raises.

Every message follows the template ``"<name> must be <expected>; got <received>."`` so that
the argument at fault, what was expected and what was received are always visible. Tests pin
each message with ``pytest.raises(..., match=...)``.

Interaction values are read as float64 but models train on them in float32 (the device
dtype), so :func:`check_interactions` also refuses finite values float32 cannot hold, and
matrices whose values add up beyond float32's range (:data:`FLOAT32_MAX`).
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

__all__ = [
    "FLOAT32_MAX",
    "check_interactions",
    "check_heldout",
    "check_k",
    "check_items",
    "check_param",
    "check_random_seed",
    "describe",
    "raise_invalid",
]


#: Largest finite float32, about 3.4e38: the bound on interaction values and on their total
#: magnitude (see :func:`check_interactions`).
FLOAT32_MAX = float(np.finfo(np.float32).max)


def describe(value):
    """Short human description of ``value`` for error messages.

    Parameters
    ----------
    value : object
        Anything the user passed.

    Returns
    -------
    str
        ``repr`` for scalars and strings, type and shape for arrays and matrices.

    Examples
    --------
    >>> import numpy as np
    >>> describe(np.zeros((2, 3)))
    'ndarray of shape (2, 3)'
    >>> describe("x")
    "'x'"
    """
    if sp.issparse(value) or isinstance(value, np.ndarray):
        return f"{type(value).__name__} of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def raise_invalid(name, expected, value, exc=ValueError):
    """Raise ``exc`` with skrec's single error wording.

    Parameters
    ----------
    name : str
        The argument at fault, e.g. ``"X"`` or ``"alpha"``.
    expected : str
        What was expected, e.g. ``"a float >= 0"``.
    value : object
        What was received; shown through :func:`describe` unless it is already a string
        wrapped in ``<>`` (a description of the problem).
    exc : type, default=ValueError
        The exception class.

    Examples
    --------
    >>> raise_invalid("alpha", "a float >= 0", -1.0)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be a float >= 0; got -1.0.
    """
    received = value[1:-1] if isinstance(value, str) and value.startswith("<") and value.endswith(">") else describe(value)
    raise exc(f"{name} must be {expected}; got {received}.")


def check_param(name, value, kind, *, low=None, high=None, low_inclusive=True,
                high_inclusive=True, options=None, allow_none=False):
    """Validate one hyper-parameter and return it.

    Parameters
    ----------
    name : str
        Parameter name used in the message.
    value : object
        The value to check.
    kind : {"int", "float", "bool", "str", "sequence", "pair"}
        Expected type. ``"float"`` accepts any real number (ints included); ``"int"``
        accepts integers but not bools; ``"sequence"`` accepts a list/tuple of positive ints;
        ``"pair"`` accepts a float or a pair of floats, each within the bounds.
    low, high : float, optional
        Bounds for numbers.
    low_inclusive, high_inclusive : bool, default=True
        Whether the bounds are allowed.
    options : collection of str, optional
        Allowed values for ``kind="str"``.
    allow_none : bool, default=False
        Whether ``None`` is accepted.

    Returns
    -------
    object
        ``value`` unchanged (a tuple for ``"sequence"``).

    Examples
    --------
    >>> check_param("alpha", 0.5, "float", low=0)
    0.5
    >>> check_param("alpha", -1, "float", low=0)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be a float >= 0; got -1.
    >>> check_param("damping", 2.0, "pair", low=0)
    (2.0, 2.0)
    """
    if value is None and allow_none:
        return value
    if kind == "pair":
        expected = "a float or a pair of floats" + (f" >= {low}" if low is not None else "")
        pair = (value, value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else value
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(
                isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in pair)):
            raise_invalid(name, expected, value, TypeError)
        if not all(np.isfinite(v) and (low is None or v >= low) for v in pair):
            raise_invalid(name, expected, value)
        return float(pair[0]), float(pair[1])
    if kind == "str":
        if not isinstance(value, str) or (options is not None and value not in options):
            expected = "one of " + ", ".join(repr(o) for o in options) if options else "a str"
            raise_invalid(name, expected, value, ValueError if isinstance(value, str) else TypeError)
        return value
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise_invalid(name, "a bool", value, TypeError)
        return bool(value)
    if kind == "sequence":
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = (value,)
        if not (isinstance(value, (list, tuple)) and all(
                isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in value)):
            raise_invalid(name, "a tuple of positive ints", value, TypeError)
        if any(v <= 0 for v in value):
            raise_invalid(name, "a tuple of positive ints", value)
        return tuple(int(v) for v in value)
    if kind == "int":
        ok_type = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
        label = "an int"
    elif kind == "float":
        ok_type = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        label = "a float"
    else:  # pragma: no cover - programming error
        raise AssertionError(kind)
    bounds = []
    if low is not None:
        bounds.append(f"{'>=' if low_inclusive else '>'} {low}")
    if high is not None:
        bounds.append(f"{'<=' if high_inclusive else '<'} {high}")
    expected = label + (" " + " and ".join(bounds) if bounds else "")
    if allow_none:
        expected += " or None"
    if not ok_type:
        raise_invalid(name, expected, value, TypeError)
    if kind == "float" and not np.isfinite(value):
        raise_invalid(name, expected, value)
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise_invalid(name, expected, value)
    if high is not None and (value > high or (value == high and not high_inclusive)):
        raise_invalid(name, expected, value)
    return value


def check_random_seed(random_state):
    """Turn ``random_state`` into an int seed for a ``torch.Generator``.

    Parameters
    ----------
    random_state : int, numpy.random.RandomState, numpy.random.Generator or None
        ``None`` draws a fresh seed (non-deterministic); an int is used as is; a numpy
        generator is advanced once to draw the seed (as scikit-learn does).

    Returns
    -------
    int
        A seed in ``[0, 2**63)``.

    Examples
    --------
    >>> check_random_seed(3)
    3
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise_invalid("random_state", "an int >= 0, a numpy RandomState/Generator or None", random_state)
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    raise_invalid("random_state", "an int >= 0, a numpy RandomState/Generator or None", random_state, TypeError)


def check_interactions(X, name="X", *, n_items=None, allow_negative=True, allow_empty=False,
                       keep_zeros=False, owner="the model"):
    """Validate a user×item interaction matrix and return it as canonical CSR.

    The caller's object is never modified: a copy is made whenever anything changes.

    Parameters
    ----------
    X : scipy sparse matrix/array or 2-D array-like of shape (n_users, n_items)
        A row is one user's history; stored non-zeros are interactions. Dense input is
        converted (zeros are non-interactions); explicit stored zeros are dropped.
    name : str, default="X"
        Name used in error messages.
    n_items : int, optional
        Required number of columns (the fitted ``n_items_``).
    allow_negative : bool, default=True
        Whether negative values are accepted.
    allow_empty : bool, default=False
        Whether a matrix with no stored interaction is accepted.
    keep_zeros : bool, default=False
        Keep explicit stored zeros of sparse input (for matrices whose stored positions
        matter more than their values: predictions, order keys). Dense input never has any.
    owner : str, default="the model"
        Who expects ``n_items`` columns (named in that message).

    Returns
    -------
    scipy.sparse.csr_matrix of float64
        Sorted indices, no duplicates, no explicit zeros.

    Raises
    ------
    TypeError
        For something that is not a matrix of numbers.
    ValueError
        For a wrong shape, NaN/inf, values beyond float32's range (see Notes), negative
        values where not allowed, duplicate entries, a wrong number of columns or an empty
        matrix.

    Notes
    -----
    Models train and score in float32, whose largest finite value is :data:`FLOAT32_MAX`
    (about 3.4e38). A finite float64 beyond it (such as 1e300) has no float32 value, so it
    is refused rather than turned into ``inf``. So is a matrix whose absolute values add up
    to more than :data:`FLOAT32_MAX` (for example 1e38 stored ten times): the global mean,
    the per-user and per-item totals that models accumulate in float32 are all bounded by
    that sum, so they stay finite. Real data is far from either bound: a billion Unix
    timestamps in nanoseconds add up to about 1.7e27. Squares and products of accepted
    values may still overflow float32 in a loss; training then stops with
    :class:`~skrec._torch.TrainingDiverged`. Tiny values (1e-300) are accepted; float32
    rounds them to 0.

    Examples
    --------
    >>> import numpy as np
    >>> check_interactions(np.array([[0, 5.0], [3.0, 0]])).nnz
    2
    >>> check_interactions(np.array([[0, 1e300]]))
    Traceback (most recent call last):
    ...
    ValueError: X must be a matrix of values float32 can hold ...; got 1 stored value beyond it (largest magnitude 1e+300).
    """
    if X is None:
        raise_invalid(name, "a sparse matrix or 2-D array of shape (n_users, n_items)", X, TypeError)
    if sp.issparse(X):
        if X.ndim != 2:
            raise_invalid(name, "a 2-D sparse matrix", X)
        if np.iscomplexobj(X):
            raise_invalid(name, "a matrix of real numbers", f"<dtype {X.dtype}: Complex data not supported>")
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
            raise_invalid(name, "a matrix of numbers", f"<dtype {X.dtype}>", TypeError)
        if X.format == "csr":
            csr = X
        else:
            if X.format == "coo":
                coo = X
                keys = coo.row.astype(np.int64) * X.shape[1] + coo.col
                if np.unique(keys).size != keys.size:
                    raise_invalid(name, "a matrix without duplicate (row, column) entries",
                                  f"<{keys.size - np.unique(keys).size} duplicate entries>")
            csr = X.tocsr()
        csr = sp.csr_matrix(csr)  # matrix API, shares data where possible
        if not csr.has_canonical_format:
            csr = csr.copy()
            csr.sort_indices()
            if not csr.has_canonical_format:
                before = csr.nnz
                csr.sum_duplicates()
                raise_invalid(name, "a matrix without duplicate (row, column) entries",
                              f"<{before - csr.nnz} duplicate entries>")
        # Always our own arrays: later in-place steps (eliminate_zeros) must not reach X.
        csr = csr.astype(np.float64, copy=True)
    else:
        if isinstance(X, (str, bytes, dict)) or not hasattr(X, "__len__") and not hasattr(X, "__array__"):
            raise_invalid(name, "a sparse matrix or 2-D array of shape (n_users, n_items)", X, TypeError)
        try:
            arr = np.asarray(X)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be a sparse matrix or 2-D array of shape (n_users, "
                            f"n_items); got {describe(X)} that numpy cannot read ({exc}).") from exc
        if arr.dtype == object:  # numbers held as Python objects are read as numbers
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{name} must be a matrix of numbers; got an array of dtype object whose "
                                f"entries are not all numbers ({exc}).") from exc
        if np.iscomplexobj(arr):
            raise_invalid(name, "a matrix of real numbers", f"<array of dtype {arr.dtype}: Complex data not supported>")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise_invalid(name, "a matrix of numbers", f"<array of dtype {arr.dtype}>", TypeError)
        if arr.ndim != 2:
            raise_invalid(name, "a 2-D array of shape (n_users, n_items), one row per user (Reshape your data "
                          "if it holds a single user or item)", f"<array of shape {arr.shape}>")
        if not np.all(np.isfinite(arr)):
            raise_invalid(name, "free of NaN and infinite values", f"<{int(np.sum(~np.isfinite(arr)))} non-finite values>")
        csr = sp.csr_matrix(arr.astype(np.float64))
    if csr.shape[0] == 0:
        raise_invalid(name, "a matrix with at least one row and one column",
                      f"<0 sample(s) (shape={csr.shape}) while a minimum of 1 is required>")
    if csr.shape[1] == 0:
        raise_invalid(name, "a matrix with at least one row and one column",
                      f"<0 feature(s) (shape={csr.shape}) while a minimum of 1 is required>")
    if not np.all(np.isfinite(csr.data)):
        raise_invalid(name, "free of NaN and infinite values",
                      f"<{int(np.sum(~np.isfinite(csr.data)))} non-finite stored values>")
    _check_float32_range(csr.data, name)
    if not keep_zeros and np.any(csr.data == 0):
        csr.eliminate_zeros()
    if not allow_negative and csr.nnz and csr.data.min() < 0:
        raise_invalid(name, "a matrix of non-negative values", f"<minimum {csr.data.min():g}>")
    if n_items is not None and csr.shape[1] != n_items:
        raise_invalid(name, f"a matrix with n_items_={n_items} columns (as seen in fit)",
                      f"<{name} has {csr.shape[1]} features, but {owner} is expecting {n_items} features as input>")
    if not allow_empty and csr.nnz == 0:
        raise_invalid(name, "a matrix with at least one stored interaction", "<no stored interaction>")
    csr.indices = csr.indices.astype(np.int64, copy=False)
    csr.indptr = csr.indptr.astype(np.int64, copy=False)
    return csr


def _check_float32_range(data, name):
    """Refuse finite values, or a total magnitude, beyond float32's range (see check_interactions)."""
    if not data.size:
        return
    magnitude = np.abs(data)
    beyond = magnitude > FLOAT32_MAX
    if beyond.any():
        n = int(beyond.sum())
        raise_invalid(name, f"a matrix of values float32 can hold (|value| <= {FLOAT32_MAX:.8g}, the dtype models "
                      "train in)", f"<{n} stored value{'s' if n > 1 else ''} beyond it (largest magnitude "
                      f"{magnitude.max():.8g})>")
    total = float(magnitude.sum())  # every term <= FLOAT32_MAX: no overflow in float64
    if total > FLOAT32_MAX:
        raise_invalid(name, f"a matrix whose absolute values sum to at most {FLOAT32_MAX:.8g} (float32's largest "
                      "value), so that the totals and means models compute in float32 stay finite",
                      f"<a sum of {total:.8g} over {data.size} stored values>")


def check_heldout(y, X, name="y", *, allow_negative=True):
    """Validate held-out interactions ``y`` against the history matrix ``X``.

    Parameters
    ----------
    y : sparse matrix or 2-D array-like
        Held-out interactions of the same rows as ``X``.
    X : scipy.sparse.csr_matrix
        The validated history.
    name : str, default="y"
        Name used in error messages.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``y`` as canonical CSR (may hold rows with no interaction).

    Examples
    --------
    >>> import numpy as np
    >>> X = check_interactions(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    >>> check_heldout(np.array([[0, 1.0, 0], [0, 0, 1.0]]), X).nnz
    2
    """
    y = check_interactions(y, name, allow_empty=True, allow_negative=allow_negative)
    if y.shape != X.shape:
        raise_invalid(name, f"a matrix of the same shape as X {X.shape}", f"<shape {y.shape}>")
    overlap = _pattern(X).multiply(_pattern(y)).nnz if y.nnz and X.nnz else 0
    if overlap:
        raise_invalid(name, "disjoint from X (held-out interactions are not in the history)",
                      f"<{overlap} positions stored in both>")
    return y


def _pattern(X):
    """Ones at the stored positions of a canonical CSR matrix (values cannot underflow)."""
    return type(X)((np.ones(X.nnz), X.indices, X.indptr), shape=X.shape)


def check_k(k, n_items, name="k"):
    """Validate the length of a recommendation list.

    Parameters
    ----------
    k : int
        Requested list length.
    n_items : int
        Number of candidate items.
    name : str, default="k"
        Name used in error messages.

    Returns
    -------
    int

    Examples
    --------
    >>> check_k(5, 10)
    5
    """
    return int(check_param(name, k, "int", low=1, high=n_items))


def check_items(items, n_items, name="items"):
    """Validate an item allow-list and return it as a sorted ``int64`` array.

    Parameters
    ----------
    items : array-like of int or None
        Item indices in ``[0, n_items)``, no duplicates.
    n_items : int
        Number of items of the fitted model.
    name : str, default="items"
        Name used in error messages.

    Returns
    -------
    numpy.ndarray of int64 or None

    Examples
    --------
    >>> check_items([3, 1], 5)
    array([1, 3])
    """
    if items is None:
        return None
    arr = np.asarray(items)
    if arr.ndim != 1 or arr.size == 0:
        raise_invalid(name, "a non-empty 1-D array of item indices", items)
    if not np.issubdtype(arr.dtype, np.integer):
        raise_invalid(name, "an array of integer item indices", f"<dtype {arr.dtype}>", TypeError)
    if arr.min() < 0 or arr.max() >= n_items:
        raise_invalid(name, f"item indices in [0, {n_items})",
                      f"<values from {arr.min()} to {arr.max()}>")
    out = np.unique(arr.astype(np.int64))
    if out.size != arr.size:
        raise_invalid(name, "item indices without duplicates", f"<{arr.size - out.size} duplicates>")
    return out
