"""Ranking metrics of a batch of score rows, computed on the device without a host sync.

Models use these for validation during training: each returns ``(sum, count)`` as 0-d
tensors, so a caller adds them up over row batches and reads the mean once, at the end
(``(total / count).item()``). The top k is :func:`skrec._torch.topk_items` (ties broken
by the lower item index) and the definitions are those of :mod:`skrec.metrics`.
"""

from __future__ import annotations

import torch

from ..utils.validation import check_param, raise_invalid
from .topk import topk_items

__all__ = ["ndcg_on_device", "recall_on_device"]


def _check(scores, held, exclude, k):
    """Host-side checks (shapes and ``k``); nothing here reads a device tensor."""
    if not isinstance(scores, torch.Tensor) or scores.ndim != 2:
        raise_invalid("scores", "a 2-D torch.Tensor of shape (B, n_items)", scores, TypeError)
    if not torch.is_floating_point(scores):
        raise_invalid("scores", "a floating-point tensor", f"<tensor of dtype {scores.dtype}>",
                      TypeError)
    shape = tuple(scores.shape)
    for name, csr in (("held", held), ("exclude", exclude)):
        if csr is None and name == "exclude":
            continue
        if tuple(getattr(csr, "shape", ())) != shape:
            raise_invalid(name, f"a DeviceCSR of the same shape as scores {shape}",
                          f"<{type(csr).__name__} of shape {getattr(csr, 'shape', None)}>")
    return check_param("k", k, "int", low=1)


def _hits(scores, held, k, exclude):
    """``hits [B, k']`` (bool, best first), ``n_rel [B]`` (int64) and ``k' = min(k, n_items)``."""
    n_rows, n_items = scores.shape
    k_top = min(k, n_items)
    # topk_items masks in place: work on a copy, never on the caller's tensor
    work = scores.detach().clone()
    ids, _ = topk_items(work, k_top, exclude=exclude)  # -1 where no item is left
    relevant = torch.zeros((n_rows, n_items), dtype=torch.bool, device=scores.device)
    relevant[held.row_ids(), held.indices] = True
    hits = torch.gather(relevant, 1, ids.clamp(min=0)) & (ids >= 0)
    return hits, relevant.sum(dim=1), k_top


def ndcg_on_device(scores, held, k, *, exclude=None):
    """Sum of NDCG@k over the rows that hold a held-out item, and the number of such rows.

    Parameters
    ----------
    scores : torch.Tensor of shape (B, n_items)
        Item scores of ``B`` rows; not modified (the masking is done on a copy). NaN counts
        as ``-inf``.
    held : DeviceCSR of shape (B, n_items)
        Held-out items of the same rows; every stored entry is relevant (binary relevance).
    k : int >= 1
        Length of the ranked list. With ``k > n_items`` every item is ranked.
    exclude : DeviceCSR of shape (B, n_items), optional
        Items never ranked (e.g. the rows' histories): their scores become ``-inf``.

    Returns
    -------
    total : torch.Tensor, 0-d float32
        Sum of NDCG@k over the rows with at least one held-out item.
    count : torch.Tensor, 0-d int64
        Number of those rows (rows without a held-out item are skipped).

    Notes
    -----
    The list is :func:`~skrec._torch.topk_items` of the scores: ties are broken by the
    lower item index, and an excluded item (or one scored NaN) is never a hit.
    ``DCG@k = sum_{i=1..k} rel_i / log2(i + 1)`` and
    ``IDCG = sum_{i=1..min(k, |rel|)} 1 / log2(i + 1)``, as in
    :func:`skrec.metrics.ndcg_at_k`, whose mean over the evaluated rows is
    ``total / count``. The work is vectorized over the batch and nothing is copied to the
    host, so the sums of several row batches can be added on the device.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skrec._torch import DeviceCSR
    >>> cpu = torch.device("cpu")
    >>> scores = torch.tensor([[3.0, 1.0, 3.0, 0.0],
    ...                        [0.0, 2.0, 1.0, 5.0],
    ...                        [1.0, 1.0, 1.0, 1.0]])
    >>> held = DeviceCSR.from_scipy(sp.csr_matrix(np.array(
    ...     [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=float)), cpu)
    >>> seen = DeviceCSR.from_scipy(sp.csr_matrix(np.array(
    ...     [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=float)), cpu)
    >>> total, count = ndcg_on_device(scores, held, 2, exclude=seen)
    >>> # row 0: item 0 wins the tie, item 2 is second; row 1: item 1 first once 3 is seen
    >>> round(float(total), 4), int(count)
    (1.6309, 2)
    """
    k = _check(scores, held, exclude, k)
    hits, n_rel, k_top = _hits(scores, held, k, exclude)
    ranks = torch.arange(2, k_top + 2, dtype=torch.float32, device=scores.device)
    disc = 1.0 / torch.log2(ranks)
    dcg = hits.to(torch.float32) @ disc  # [B]
    evaluated = n_rel > 0
    # The ideal DCG sums the first min(n_rel, k) discounts: a masked product, not a float cumsum,
    # which has no deterministic CUDA kernel (torch.use_deterministic_algorithms refuses it).
    first = torch.arange(k_top, device=scores.device) < n_rel.unsqueeze(1)
    idcg = first.to(torch.float32) @ disc
    ndcg = torch.where(evaluated, dcg / idcg, torch.zeros_like(dcg))
    return ndcg.sum(), evaluated.sum()


def recall_on_device(scores, held, k, *, exclude=None):
    """Sum of Recall@k over the rows that hold a held-out item, and the number of such rows.

    Parameters
    ----------
    scores : torch.Tensor of shape (B, n_items)
        Item scores of ``B`` rows; not modified. NaN counts as ``-inf``.
    held : DeviceCSR of shape (B, n_items)
        Held-out items of the same rows (binary relevance).
    k : int >= 1
        Length of the ranked list. With ``k > n_items`` every item is ranked.
    exclude : DeviceCSR of shape (B, n_items), optional
        Items never ranked (their scores become ``-inf``).

    Returns
    -------
    total : torch.Tensor, 0-d float32
        Sum of Recall@k over the rows with at least one held-out item.
    count : torch.Tensor, 0-d int64
        Number of those rows.

    Notes
    -----
    ``recall@k = hits@k / min(k, |rel|)``, as in :func:`skrec.metrics.recall_at_k`; the
    ranked list and the tie rule are those of :func:`ndcg_on_device`.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skrec._torch import DeviceCSR
    >>> scores = torch.tensor([[3.0, 1.0, 3.0, 0.0], [0.0, 2.0, 1.0, 5.0]])
    >>> held = DeviceCSR.from_scipy(sp.csr_matrix(np.array(
    ...     [[0, 1, 1, 0], [1, 0, 0, 0]], dtype=float)), torch.device("cpu"))
    >>> total, count = recall_on_device(scores, held, 2)  # row 0: 1/2, row 1: 0/1
    >>> float(total), int(count)
    (0.5, 2)
    """
    k = _check(scores, held, exclude, k)
    hits, n_rel, k_top = _hits(scores, held, k, exclude)
    evaluated = n_rel > 0
    denom = torch.clamp(n_rel, min=1, max=k).to(torch.float32)
    recall = torch.where(evaluated, hits.sum(dim=1).to(torch.float32) / denom,
                         torch.zeros(hits.shape[0], device=scores.device))
    return recall.sum(), evaluated.sum()
