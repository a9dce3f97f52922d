"""``HeldOut``: the held-out side of an ``(X, y)`` pair as a row-indexable target.

scikit-learn's ``GridSearchCV`` accepts a sparse ``y``, but ``cross_validate``,
``cross_val_score``, ``validation_curve``, ``learning_curve`` and ``permutation_test_score``
validate ``y`` as "an array-like", which excludes scipy sparse matrices. ``HeldOut`` wraps
the CSR matrix of held-out interactions in a small object that is array-like for those
checks (``__len__``, ``shape``, ``__getitem__``) and keeps sparse storage: indexing its rows
(``sklearn.utils._safe_indexing``) returns a ``HeldOut`` of the selected rows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from skrec.utils.validation import check_interactions, check_param, raise_invalid

__all__ = ["HeldOut"]

_OVERLAP = ("raise", "drop")


class HeldOut:
    """Held-out interactions of each row, as a target every scikit-learn tool can slice.

    A row is one user's held-out interactions; the same row of ``X`` is the history that
    is folded in. Wrapping the matrix lets ``cross_validate``, ``cross_val_score``,
    ``validation_curve``, ``learning_curve`` and ``permutation_test_score`` accept an
    ``(X, y)`` pair (their parameter validation refuses a sparse ``y``); ``GridSearchCV``,
    ``RandomizedSearchCV`` and ``HalvingGridSearchCV`` accept it as well as a plain sparse
    matrix. Every skrec estimator's ``fit``, ``predict_at`` and ``score``, the scorers of
    :mod:`skrec.metrics` and :func:`~skrec.model_selection.evaluate` read it as the matrix
    it holds.

    Parameters
    ----------
    matrix : sparse matrix or 2-D array-like of shape (n_rows, n_items), or HeldOut
        The held-out interactions. Stored as canonical CSR (float64, explicit zeros
        dropped), a copy: the caller's object is never modified.
    overlap : {"raise", "drop"}, default="raise"
        What an estimator or scorer does when a held-out entry sits at a position that the
        history ``X`` also stores. ``"raise"``: a ``ValueError``, as for a plain matrix
        (such an item would count as "seen"). ``"drop"``: the entry is not held out for that
        history -- it is left out of the targets, and ``fit(X, y)`` trains on ``X`` there.
        Rows are only misaligned on purpose in a permutation test
        (``sklearn.model_selection.permutation_test_score`` shuffles the rows of ``y``
        against those of ``X``, Ojala & Garriga 2010), which needs ``"drop"``.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix of shape (n_rows, n_items)
        The held-out interactions.
    shape : tuple of int
        ``matrix.shape``; ``len(heldout)`` is the number of rows.
    nnz : int
        Number of held-out interactions.

    See Also
    --------
    holdout_split : per-row holdout; ``as_heldout=True`` returns a ``HeldOut``.
    time_split : global time split; ``as_heldout=True`` returns a ``HeldOut``.

    Notes
    -----
    Indexing follows scipy's CSR row indexing: an int, a slice, an array of ints or a
    boolean mask selects rows (``h[rows]`` or ``h[rows, ...]``, the form
    ``sklearn.utils._safe_indexing`` uses) and returns a ``HeldOut`` with the same
    ``overlap``. Converting to a dense array (``numpy.asarray``) is refused rather than
    silently building an ``n_rows x n_items`` array: use ``h.matrix.toarray()``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skrec.model_selection import HeldOut
    >>> y = HeldOut(sp.csr_matrix(np.array([[0, 1.0, 0], [1.0, 0, 0], [0, 0, 1.0]])))
    >>> y
    HeldOut(<3x3 sparse matrix with 3 held-out interactions>, overlap='raise')
    >>> len(y), y[[0, 2]].matrix.toarray()
    (3, array([[0., 1., 0.],
           [0., 0., 1.]]))

    ``cross_validate`` slices it with the rows of ``X``:

    >>> from sklearn.model_selection import KFold, cross_validate
    >>> from skrec import Popularity
    >>> from skrec.metrics import get_scorer
    >>> from skrec.datasets import make_interactions
    >>> from skrec.model_selection import holdout_split
    >>> X = make_interactions(60, 30, kind="implicit", random_state=0).X
    >>> X_hist, y_held = holdout_split(X, 0.2, random_state=0, as_heldout=True)
    >>> cv = cross_validate(Popularity(device="cpu"), X_hist, y_held, cv=KFold(3),
    ...                     scoring={"ndcg@10": get_scorer("ndcg@10")})
    >>> cv["test_ndcg@10"].shape
    (3,)
    """

    def __init__(self, matrix, *, overlap="raise"):
        self.overlap = check_param("overlap", overlap, "str", options=_OVERLAP)
        if isinstance(matrix, HeldOut):
            matrix = matrix.matrix
        self.matrix = check_interactions(matrix, "matrix", allow_empty=True)

    @classmethod
    def _wrap(cls, csr, overlap):
        """A ``HeldOut`` around an already canonical CSR matrix (no copy, no validation)."""
        out = cls.__new__(cls)
        out.matrix, out.overlap = csr, overlap
        return out

    @property
    def shape(self):
        return self.matrix.shape

    @property
    def nnz(self):
        return self.matrix.nnz

    def __len__(self):
        return self.matrix.shape[0]

    def __getitem__(self, key):
        if isinstance(key, tuple):
            if len(key) == 2 and (key[1] is Ellipsis or (isinstance(key[1], slice) and key[1] == slice(None))):
                key = key[0]
            elif len(key) == 1:
                key = key[0]
            else:
                raise_invalid("key", "a row selection (an int, a slice, an array of row indices or a "
                              "boolean mask), optionally followed by '...'", f"<{key!r}>", IndexError)
        if isinstance(key, tuple):
            key = list(key)
        rows = self.matrix[key]  # scipy's CSR row indexing: always 2-D for a csr_matrix
        rows.indices = rows.indices.astype(np.int64, copy=False)
        rows.indptr = rows.indptr.astype(np.int64, copy=False)
        return HeldOut._wrap(rows, self.overlap)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"{self!r} is not converted to a dense array implicitly (it may be large); "
                        "use .matrix (a scipy CSR matrix) or .matrix.toarray().")

    def __repr__(self):
        n_rows, n_items = self.matrix.shape
        return (f"HeldOut(<{n_rows}x{n_items} sparse matrix with {self.matrix.nnz} held-out interactions>, "
                f"overlap={self.overlap!r})")


def unwrap_heldout(y, X, *, require_disjoint=True, name="y"):
    """The held-out matrix behind ``y`` for the history ``X``.

    A plain matrix (or ``None``) is returned unchanged: the caller validates it as before
    (``check_heldout``). A :class:`HeldOut` returns its CSR matrix after its ``overlap``
    policy: ``"drop"`` removes the entries at positions ``X`` stores; ``"raise"`` refuses
    them when ``require_disjoint``.

    Parameters
    ----------
    y : HeldOut, sparse matrix, array-like or None
    X : sparse matrix or 2-D array-like
        The history of the same rows (validated here only when ``y`` is a ``HeldOut``).
    require_disjoint : bool, default=True
        Whether held-out entries stored in ``X`` are an error (``overlap="raise"``).
    name : str, default="y"

    Returns
    -------
    scipy.sparse.csr_matrix, or ``y`` itself when it is not a ``HeldOut``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    >>> y = HeldOut(sp.csr_matrix(np.array([[1.0, 1.0, 0], [0, 0, 1.0]])), overlap="drop")
    >>> unwrap_heldout(y, X).toarray()
    array([[0., 1., 0.],
           [0., 0., 1.]])
    """
    if not isinstance(y, HeldOut):
        return y
    matrix = y.matrix
    if y.overlap == "raise" and not require_disjoint:
        return matrix
    if not (sp.isspmatrix_csr(X) and X.has_canonical_format and np.all(X.data != 0)):
        X = check_interactions(X, "X", allow_empty=True)  # already-validated histories skip the copy
    if matrix.shape != X.shape:
        raise_invalid(name, f"a matrix of the same shape as X {X.shape}", f"<{y!r}>")
    if matrix.nnz == 0 or X.nnz == 0:
        return matrix
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    # (row, column) keys; works on read-only arrays (joblib memmaps, unpickled buffers)
    x_keys = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr)) * X.shape[1] + X.indices
    in_history = np.isin(rows * matrix.shape[1] + matrix.indices, x_keys)  # [nnz of y]
    if not in_history.any():
        return matrix
    if y.overlap == "raise":
        raise_invalid(name, "disjoint from X (held-out interactions are not in the history; for rows of y "
                      "shuffled against X on purpose, as in permutation_test_score, use "
                      "HeldOut(..., overlap='drop'))",
                      f"<{int(in_history.sum())} positions stored in both>")
    keep = ~in_history
    counts = np.bincount(rows[keep], minlength=matrix.shape[0])
    indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return type(matrix)((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)
