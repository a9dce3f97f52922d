"""A global time split: what happened before a moment trains, what follows is held out."""

from __future__ import annotations

import numpy as np

from skrec.model_selection._heldout import HeldOut
from skrec.model_selection._split import _order_keys, _row_ids, _sort_within_rows, _subset
from skrec.utils.validation import check_interactions, check_param, raise_invalid

__all__ = ["time_split"]


def time_split(X, timestamps, *, cut=None, quantile=None, n_heldout=None, filter_cold_items=True,
               as_heldout=False):
    """Split the interactions at one moment: before it is history, after it is held out.

    The global temporal split of RecTools' ``TimeRangeSplitter`` and Cornac's temporal
    evaluation: every interaction with a timestamp before ``cut`` goes to the history, those
    at or after it are held out for the users who also have a history. The history of each
    row is folded in and ranked against the same row of the held-out matrix, so the pair
    goes to :func:`evaluate` (and ``GridSearchCV``) like the result of
    :func:`holdout_split`.

    Parameters
    ----------
    X : sparse matrix or 2-D array-like of shape (n_users, n_items)
        Interactions (ratings, positives); a row is one user. Never modified.
    timestamps : sparse matrix or 2-D array of shape (n_users, n_items)
        The time of every interaction (e.g. Unix seconds, as the ``timestamps`` matrix of
        :func:`skrec.datasets.load_movielens`): a key must be stored at every stored entry of
        ``X``; keys at other positions are ignored. Never modified.
    cut : float, optional
        The moment of the split, in the unit of ``timestamps``. Must satisfy
        ``min(t) < cut <= max(t)`` over ``X``'s interactions, so that both sides are
        non-empty. Give exactly one of ``cut`` and ``quantile``.
    quantile : float in (0, 1), optional
        The cut as a quantile of the interaction times: ``cut =
        numpy.quantile(t, quantile)`` over the timestamps of ``X``'s stored entries (linear
        interpolation), e.g. ``0.8`` holds out about the last 20 % of the interactions
        (ties at the cut are held out).
    n_heldout : int >= 1, optional
        Hold out only each user's first ``n_heldout`` interactions at or after the cut (the
        "next items"; between equal timestamps the lower item index comes first). ``None``
        holds out all of them.
    filter_cold_items : bool, default=True
        Drop from the held-out side the items with no interaction before the cut: a model
        fitted on the history cannot recommend them (RecTools' ``filter_cold_items``).
        ``n_heldout`` counts what remains.
    as_heldout : bool, default=False
        Return ``y_heldout`` as a :class:`HeldOut` instead of a sparse matrix.

    Returns
    -------
    X_history : scipy.sparse.csr_matrix of shape (n_users, n_items)
        The interactions before the cut (values of ``X``), for every user.
    y_heldout : scipy.sparse.csr_matrix or HeldOut of shape (n_users, n_items)
        The interactions at or after the cut of the users with a history (and of items with
        a history when ``filter_cold_items``), at most ``n_heldout`` per user. Disjoint from
        ``X_history``; the interactions after the cut that are not held out (cold users,
        cold items, beyond ``n_heldout``) are in neither matrix.

    Raises
    ------
    ValueError
        When neither or both of ``cut`` and ``quantile`` are given, when the cut leaves one
        side empty (no interaction before it, or no held-out interaction of a user with a
        history), or for a ``timestamps`` matrix of another shape, without a key at some
        entry of ``X``, or with non-finite keys.
    TypeError
        For a ``cut``, ``quantile`` or ``n_heldout`` that is not a number of the right kind.

    See Also
    --------
    holdout_split : hold out part of every row (random, or each user's last by time).

    Notes
    -----
    Every history timestamp is ``< cut`` and every held-out timestamp is ``>= cut``: no
    information from after the cut reaches a model fitted on ``X_history``. To keep it so,
    fit on the history alone (``est.fit(X_history)``, then ``evaluate(est, X_history,
    y_heldout)``): ``fit(X, y)`` trains on ``X + y``, so cross-validating the pair over rows
    (``GridSearchCV(...).fit(X_history, y_heldout)``) trains on the held-out interactions of
    the other folds' users, as the strong-generalization protocol P2 does. Users whose
    interactions all come after the cut keep an empty row in both matrices (evaluation
    skips them). Vectorized over the stored entries: one pass, plus one sort with
    ``n_heldout``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skrec.model_selection import time_split
    >>> X = sp.csr_matrix(np.array([[1, 1, 1, 0],
    ...                             [1, 0, 1, 1],
    ...                             [0, 1, 0, 0]], dtype=float))
    >>> T = sp.csr_matrix(np.array([[10, 20, 30, 0],
    ...                             [15, 0, 22, 40],
    ...                             [0, 50, 0, 0]], dtype=float))
    >>> X_hist, y = time_split(X, T, cut=25)
    >>> X_hist.toarray()  # everything before t = 25
    array([[1., 1., 0., 0.],
           [1., 0., 1., 0.],
           [0., 0., 0., 0.]])
    >>> y.toarray()  # item 3 is first seen after the cut; user 2 has no history
    array([[0., 0., 1., 0.],
           [0., 0., 0., 0.],
           [0., 0., 0., 0.]])

    The cut as a quantile of the interaction times, and only the next item of each user:

    >>> X_hist, y = time_split(X, T, quantile=0.5, n_heldout=1, filter_cold_items=False)
    >>> y.toarray()  # cut = 22, the median time
    array([[0., 0., 1., 0.],
           [0., 0., 1., 0.],
           [0., 0., 0., 0.]])
    """
    X = check_interactions(X, "X")
    rows = _row_ids(X)
    keys = _order_keys(timestamps, X, rows, name="timestamps")
    if (cut is None) == (quantile is None):
        raise_invalid("cut", "given (a timestamp), or quantile instead: exactly one of the two",
                      f"<cut={cut!r} and quantile={quantile!r}>")
    n_heldout = check_param("n_heldout", n_heldout, "int", low=1, allow_none=True)
    filter_cold_items = check_param("filter_cold_items", filter_cold_items, "bool")
    as_heldout = check_param("as_heldout", as_heldout, "bool")
    t_min, t_max = float(keys.min()), float(keys.max())
    if quantile is not None:
        quantile = check_param("quantile", quantile, "float", low=0, high=1, low_inclusive=False,
                               high_inclusive=False)
        given, value = "quantile", quantile
        cut = float(np.quantile(keys, quantile))
        if cut <= t_min:
            raise_invalid("quantile", "a fraction whose cut leaves interactions before it",
                          f"<{quantile!r}: the cut {cut:g} is the earliest timestamp>")
    else:
        cut = check_param("cut", cut, "float")
        given, value = "cut", cut
        if not t_min < cut <= t_max:
            raise_invalid("cut", f"a timestamp in ({t_min:g}, {t_max:g}] (after the earliest interaction of X "
                          "and at most the latest) so that both sides are non-empty", cut)

    before = keys < cut  # [nnz]
    held = ~before & (np.bincount(rows[before], minlength=X.shape[0]) > 0)[rows]  # users with a history
    if filter_cold_items:
        held &= (np.bincount(X.indices[before], minlength=X.shape[1]) > 0)[X.indices]
    if n_heldout is not None and held.any():
        idx = np.flatnonzero(held)  # CSR order: rows ascending, items ascending within a row
        r = rows[idx]
        rank = np.empty(idx.size, dtype=np.int64)
        rank[np.argsort(keys[idx], kind="stable")] = np.arange(idx.size, dtype=np.int64)
        perm = _sort_within_rows(r, X.shape[0], rank)  # by (row, time); ties: lower item first
        counts = np.bincount(r, minlength=X.shape[0])
        starts = np.cumsum(counts) - counts
        within = np.arange(idx.size, dtype=np.int64) - starts[r[perm]]  # rank within the row
        held[idx[perm[within >= n_heldout]]] = False
    if not held.any():
        raise_invalid(given, "a cut after which some user with an earlier interaction has a held-out "
                      "interaction" + (" with an item seen before the cut" if filter_cold_items else ""),
                      f"<{value!r}: nothing is held out>")
    y = _subset(X, rows, held)
    return _subset(X, rows, before), (HeldOut._wrap(y, "raise") if as_heldout else y)
