"""Batched top-k on the device with seen-item masking, an allow-list and exact tie-breaking."""

from __future__ import annotations

import torch

__all__ = ["topk_items"]


def topk_items(scores, k, *, exclude=None, items=None):
    """Top-``k`` item ids of each row of ``scores``, ties broken by the lower item index.

    Parameters
    ----------
    scores : torch.Tensor of shape (B, n_items)
        Item scores for a batch of rows. It is modified in place where ``exclude`` is
        given (callers pass a fresh tensor).
    k : int
        Number of items per row; at most ``n_items`` (or ``len(items)``).
    exclude : DeviceCSR, optional
        The rows' histories: these items get ``-inf`` and are never recommended.
    items : torch.Tensor of int64, optional
        Sorted allow-list of item ids; only these are ranked.

    Returns
    -------
    ids : torch.Tensor of int64, shape (B, k)
        Item ids, best first; ``-1`` where a row has fewer than ``k`` available items.
    top : torch.Tensor of float32, shape (B, k)
        Their scores (``-inf`` where the id is ``-1``).

    Notes
    -----
    ``torch.topk`` does not define which of several equal scores it returns. The top
    ``k + 1`` scores of every row come from one ``topk``; where the ``k``-th and the
    ``(k + 1)``-th differ, the ``k`` best items are unique and only their order needs fixing
    (ascending ids, then a stable sort by score). Rows with a tie across that boundary (equal
    scores, or fewer than ``k`` available items) are redone exactly: every item strictly
    above the ``k``-th score is kept and the remaining places go to the lowest-indexed items
    equal to it. Checking for such rows reads one flag per batch on the host.

    Examples
    --------
    >>> s = torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0]])
    >>> ids, top = topk_items(s, 2)
    >>> ids.tolist(), top.tolist()
    ([[1, 2]], [[3.0, 3.0]])
    """
    scores = torch.nan_to_num_(scores, nan=float("-inf"), posinf=float("inf"), neginf=float("-inf"))  # a NaN is never recommended
    if exclude is not None:
        scores[exclude.row_ids(), exclude.indices] = float("-inf")
    if items is not None:
        scores = scores[:, items]
    n_cols = scores.shape[1]
    top, cols = torch.topk(scores, min(k + 1, n_cols), dim=1, sorted=True)
    tied = (top[:, k - 1] == top[:, k]) if n_cols > k else None
    top, cols = top[:, :k], cols[:, :k]
    cols, order = torch.sort(cols, dim=1)  # the same items in ascending id order ...
    top = torch.gather(top, 1, order)
    top, order = torch.sort(top, dim=1, descending=True, stable=True)  # ... then best first
    cols = torch.gather(cols, 1, order)
    if tied is not None and bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        cols[rows], top[rows] = _exact_top(scores[rows], k)
    ids = items[cols] if items is not None else cols
    ids = torch.where(torch.isneginf(top), torch.full_like(ids, -1), ids)
    return ids, top


def _exact_top(scores, k):
    """Columns and scores of the top ``k`` of each row, ties at the ``k``-th score to the lowest columns."""
    n_cols = scores.shape[1]
    kth = torch.topk(scores, k, dim=1, sorted=True).values[:, -1:]  # [B, 1]
    greater = scores > kth
    equal = scores == kth
    need = k - greater.sum(dim=1, keepdim=True, dtype=torch.int32)
    chosen = greater | (equal & (torch.cumsum(equal, dim=1, dtype=torch.int32) <= need))  # exactly k per row
    # Lowest-index-first order of the chosen columns: topk over a descending index key.
    key = torch.where(chosen, n_cols - torch.arange(n_cols, device=scores.device, dtype=torch.int32), 0)
    cols = torch.topk(key, k, dim=1, sorted=True).indices  # [B, k] ascending column
    top = torch.gather(scores, 1, cols)
    top, order = torch.sort(top, dim=1, descending=True, stable=True)
    return torch.gather(cols, 1, order), top
