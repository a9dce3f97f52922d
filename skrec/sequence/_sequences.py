"""Sequences from order keys, built on the device with no per-user Python loop."""

from __future__ import annotations

import torch

__all__ = ["build_sequences", "time_gap_buckets"]


def build_sequences(indptr, indices, keys, max_len, *, pad, extra=None):
    """Each CSR row as its item sequence, oldest first, right-padded, truncated to the last items.

    Parameters
    ----------
    indptr : torch.Tensor of int64, shape (n_rows + 1,)
        Row pointer (starting at 0) on the device.
    indices : torch.Tensor of int64, shape (nnz,)
        Item of every stored entry.
    keys : torch.Tensor of float64, shape (nnz,)
        Order key of every stored entry (larger = later).
    max_len : int
        Width of the result; a longer row keeps its ``max_len`` latest items.
    pad : int
        Item id written where a row has no item.
    extra : torch.Tensor of shape (nnz,), optional
        Per-entry values carried along in the same order (e.g. ratings).

    Returns
    -------
    items : torch.Tensor of int64, shape (n_rows, max_len)
        Items in order (ties of the key broken by the item index: the larger index is the
        later one), then ``pad``.
    keys : torch.Tensor of float64, shape (n_rows, max_len)
        Their order keys (0 at padding).
    lengths : torch.Tensor of int64, shape (n_rows,)
        Items kept per row (``min(n_u, max_len)``).
    extra : torch.Tensor of shape (n_rows, max_len) or None
        ``extra`` in the same layout.

    Notes
    -----
    Two stable sorts (by key, then by row) order the entries by ``(row, key, item)``, since
    a canonical CSR stores each row's entries by increasing item; the position inside the
    row and the truncation come from ``indptr`` arithmetic, and one scatter writes the
    padded matrix. Everything stays on the device and needs no host synchronisation.

    Examples
    --------
    >>> import torch
    >>> indptr = torch.tensor([0, 3, 4])
    >>> indices = torch.tensor([0, 1, 2, 1])
    >>> keys = torch.tensor([3.0, 1.0, 1.0, 5.0], dtype=torch.float64)
    >>> items, k, n, _ = build_sequences(indptr, indices, keys, 2, pad=9)
    >>> items.tolist(), n.tolist()
    ([[2, 0], [1, 9]], [2, 1])
    """
    device = indices.device
    n_rows = indptr.shape[0] - 1
    nnz = indices.shape[0]
    counts = indptr[1:] - indptr[:-1]
    rows = torch.repeat_interleave(torch.arange(n_rows, device=device), counts, output_size=nnz)
    by_key = torch.sort(keys, stable=True).indices
    order = by_key[torch.sort(rows[by_key], stable=True).indices]  # (row, key, item)
    rank = torch.arange(nnz, device=device) - indptr[:-1][rows]  # rows are already grouped
    start = (counts - max_len).clamp(min=0)
    col = rank - start[rows]
    col = torch.where(col >= 0, col, max_len)  # dropped entries go to a spare column
    flat = rows * (max_len + 1) + col

    def scatter(values, fill, dtype):
        out = torch.full((n_rows * (max_len + 1),), fill, dtype=dtype, device=device)
        out[flat] = values[order].to(dtype)
        return out.view(n_rows, max_len + 1)[:, :max_len]

    items = scatter(indices, pad, torch.int64)
    key_out = scatter(keys, 0, torch.float64)
    extra_out = None if extra is None else scatter(extra, 0, extra.dtype)
    return items, key_out, counts.clamp(max=max_len), extra_out


def time_gap_buckets(keys, lengths, n_buckets):
    """Log-scale bucket of the gap between each item's key and the previous one.

    Parameters
    ----------
    keys : torch.Tensor of float64, shape (B, L)
        Right-padded order keys.
    lengths : torch.Tensor of int64, shape (B,)
    n_buckets : int
        Buckets ``1 … n_buckets - 1`` hold ``floor(2 log2(1 + gap))`` (clipped); bucket 0
        is the first item of a sequence and padding.

    Returns
    -------
    torch.Tensor of int64, shape (B, L)

    Examples
    --------
    >>> import torch
    >>> keys = torch.tensor([[10.0, 11.0, 26.0, 0.0]], dtype=torch.float64)
    >>> time_gap_buckets(keys, torch.tensor([3]), 64).tolist()
    [[0, 3, 9, 0]]
    """
    gaps = (keys[:, 1:] - keys[:, :-1]).clamp(min=0)
    b = (2 * torch.log2(1 + gaps)).floor().long().clamp(max=n_buckets - 2) + 1
    b = torch.cat([torch.zeros_like(keys[:, :1], dtype=torch.int64), b], dim=1)
    pos = torch.arange(keys.shape[1], device=keys.device)
    return torch.where(pos < lengths.unsqueeze(1), b, 0)
