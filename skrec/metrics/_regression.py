"""Rating-prediction errors evaluated at the stored positions of a sparse target."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from skrec.utils.validation import check_interactions, raise_invalid

from ._ranking import _check_y_true

__all__ = ["mae", "rmse"]


def _canonical_keep_zeros(y_pred, shape):
    """``y_pred`` as canonical CSR float64 keeping stored zeros (a prediction of 0 is a value)."""
    if y_pred.ndim != 2 or y_pred.shape != shape:
        raise_invalid("y_pred", f"a matrix of the same shape as y_true {shape}",
                      f"<shape {y_pred.shape}>")
    return check_interactions(y_pred, "y_pred", allow_empty=True, keep_zeros=True)


def _paired_values(y_true, y_pred):
    """Validate and return ``(true, predicted)`` 1-D arrays at the stored positions of y_true."""
    y_true = _check_y_true(y_true, allow_empty=False)
    if sp.issparse(y_pred):
        pred = _canonical_keep_zeros(y_pred, y_true.shape)
        same = (np.array_equal(pred.indptr, y_true.indptr)
                and np.array_equal(pred.indices, y_true.indices))
        if not same:
            raise_invalid("y_pred", "a sparse matrix with the same sparsity pattern as y_true "
                          f"({y_true.nnz} stored positions)",
                          f"<{pred.nnz} stored positions, not the same ones>")
        values = pred.data
    elif isinstance(y_pred, np.ndarray):
        if not (np.issubdtype(y_pred.dtype, np.integer) or np.issubdtype(y_pred.dtype, np.floating)):
            raise_invalid("y_pred", "an array of real numbers", f"<array of dtype {y_pred.dtype}>",
                          TypeError)
        if y_pred.shape != y_true.shape:
            raise_invalid("y_pred", f"an array of the same shape as y_true {y_true.shape}",
                          f"<array of shape {y_pred.shape}>")
        rows = np.repeat(np.arange(y_true.shape[0]), np.diff(y_true.indptr))
        values = y_pred[rows, y_true.indices].astype(np.float64)  # fancy indexing copies
    else:
        raise_invalid("y_pred", "a sparse matrix with the sparsity pattern of y_true or a "
                      "dense ndarray of shape (n_rows, n_items)", y_pred, TypeError)
    n_bad = int(np.sum(~np.isfinite(values)))
    if n_bad:
        raise_invalid("y_pred", "free of NaN and infinite values at the positions of y_true",
                      f"<{n_bad} non-finite values>")
    return y_true.data, values


def rmse(y_true, y_pred):
    """Root mean squared error at the stored positions of ``y_true``.

    Parameters
    ----------
    y_true : sparse matrix of shape (n_rows, n_items)
        True ratings; the stored positions are the ones evaluated. Explicit zeros are
        dropped by validation, so a rating of exactly 0 cannot be stored (shift the scale).
    y_pred : sparse matrix or ndarray of shape (n_rows, n_items)
        Either a sparse matrix with the same sparsity pattern as ``y_true`` (as returned by
        an estimator's ``predict_at``; stored zeros count as predictions of 0), or a dense
        array from which the values at ``y_true``'s positions are taken.

    Returns
    -------
    float

    Notes
    -----
    ``RMSE = sqrt(mean_{(u, i) in y_true} (y_pred[u, i] - y_true[u, i])**2)``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> y_true = sp.csr_matrix(np.array([[4.0, 0, 2.0], [0, 5.0, 0]]))
    >>> y_pred = np.array([[3.0, 9.9, 2.0], [9.9, 3.0, 9.9]])
    >>> round(rmse(y_true, y_pred), 4)  # sqrt((1 + 0 + 4) / 3)
    1.291
    """
    t, p = _paired_values(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(y_true, y_pred):
    """Mean absolute error at the stored positions of ``y_true``.

    Parameters
    ----------
    y_true : sparse matrix of shape (n_rows, n_items)
        True ratings; the stored positions are the ones evaluated. Explicit zeros are
        dropped by validation, so a rating of exactly 0 cannot be stored (shift the scale).
    y_pred : sparse matrix or ndarray of shape (n_rows, n_items)
        Either a sparse matrix with the same sparsity pattern as ``y_true``, or a dense
        array from which the values at ``y_true``'s positions are taken.

    Returns
    -------
    float

    Notes
    -----
    ``MAE = mean_{(u, i) in y_true} |y_pred[u, i] - y_true[u, i]|``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> y_true = sp.csr_matrix(np.array([[4.0, 0, 2.0], [0, 5.0, 0]]))
    >>> y_pred = sp.csr_matrix(np.array([[3.0, 0, 2.5], [0, 3.0, 0]]))
    >>> mae(y_true, y_pred)  # (1 + 0.5 + 2) / 3
    1.1666666666666667
    """
    t, p = _paired_values(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))
