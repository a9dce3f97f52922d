"""Vectorized on-device samplers.

Every sampler draws with a :class:`torch.Generator` on the data's device and returns index
tensors: there is no per-sample Python and no host synchronisation per batch.
"""

from __future__ import annotations

import torch

__all__ = ["index_batches", "sample_negatives", "gather_rows"]


def index_batches(n, batch_size, generator, *, shuffle=True):
    """Split ``range(n)`` into batches of indices on the generator's device.

    Parameters
    ----------
    n : int
        Number of samples (interactions, rows, sequences…).
    batch_size : int
        Batch length; the last batch may be shorter.
    generator : torch.Generator
        Source of the permutation; its device is the output's device.
    shuffle : bool, default=True
        Draw a fresh permutation (one ``randperm`` per epoch) or keep the order.

    Returns
    -------
    list of torch.Tensor
        int64 index tensors (views into one permutation).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> [b.tolist() for b in index_batches(5, 2, g, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    device = generator.device
    order = (torch.randperm(n, generator=generator, device=device) if shuffle
             else torch.arange(n, device=device))
    return list(torch.split(order, batch_size))


def sample_negatives(users, n_items, generator, *, n_negatives=1, probabilities=None, exclude=None,
                     max_rounds=20):
    """Draw negative items for each user of a batch, on the device.

    Parameters
    ----------
    users : torch.Tensor of int64, shape (B,)
        Row index of each positive in the batch.
    n_items : int
        Catalogue size.
    generator : torch.Generator
    n_negatives : int, default=1
        Negatives per positive.
    probabilities : torch.Tensor of shape (n_items,), optional
        Sampling distribution (e.g. popularity); uniform when ``None``.
    exclude : skrec._torch.DeviceCSR, optional
        The users' positives (canonical CSR: sorted indices). Uniform negatives are then
        drawn exactly from each user's non-positives, without rejection: a draw ``j`` in
        ``[0, n_items - n_u)`` is shifted past the positives at or below it with one
        ``searchsorted``. Popularity negatives that hit a positive are redrawn in bulk, up
        to ``max_rounds`` times.
    max_rounds : int, default=20
        Redraw rounds for ``probabilities``; a negative that is still a positive after them
        is kept (probability ``p(positive) ** (max_rounds + 1)``).

    Returns
    -------
    torch.Tensor of int64, shape (B, n_negatives)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skrec._torch import DeviceCSR
    >>> liked = DeviceCSR.from_scipy(sp.csr_matrix(np.array([[1.0, 1, 1, 0]])), torch.device("cpu"))
    >>> g = torch.Generator().manual_seed(0)
    >>> sample_negatives(torch.zeros(4, dtype=torch.long), 4, g, exclude=liked).flatten().tolist()
    [3, 3, 3, 3]
    """
    shape = (users.shape[0], n_negatives)
    device = users.device
    if probabilities is None and exclude is not None:
        start = exclude.indptr[users].unsqueeze(1)  # [B, 1]
        n_pos = exclude.indptr[users + 1].unsqueeze(1) - start
        room = (n_items - n_pos).clamp(min=1)
        j = (torch.rand(shape, generator=generator, device=device) * room).long().clamp_(max=room - 1)
        # Within a row, positive p_k (k-th, 0-based) shifts every draw j >= p_k - k by one.
        def shifted_keys():
            rows = exclude.row_ids()
            rank = torch.arange(exclude.indices.shape[0], device=device) - exclude.indptr[rows]
            return rows * n_items + exclude.indices - rank  # sorted

        shifted = exclude.cached(("shifted", n_items), shifted_keys)  # built once per matrix, not per batch
        below = torch.searchsorted(shifted, users.unsqueeze(1) * n_items + j, right=True) - start
        return (j + below).clamp_(max=n_items - 1)  # a user who has every item gets an arbitrary one
    if probabilities is None:
        return torch.randint(n_items, shape, generator=generator, device=device)

    def draw():
        return torch.multinomial(probabilities, shape[0] * shape[1], replacement=True,
                                 generator=generator).view(shape)

    neg = draw()
    if exclude is None or exclude.indices.numel() == 0:
        return neg
    keys_all = exclude.cached(("keys", n_items), lambda: exclude.row_ids() * n_items + exclude.indices)  # sorted
    user_base = users.unsqueeze(1) * n_items
    for _ in range(max_rounds):
        keys = user_base + neg
        pos = torch.searchsorted(keys_all, keys).clamp_(max=keys_all.numel() - 1)
        neg = torch.where(keys_all[pos] == keys, draw(), neg)
    return neg


def gather_rows(csr, rows):
    """Dense ``[len(rows), n_items]`` tensor of the given rows of a :class:`DeviceCSR`.

    Parameters
    ----------
    csr : skrec._torch.DeviceCSR
    rows : torch.Tensor of int64, shape (B,)
        Row indices on ``csr``'s device (e.g. a batch from :func:`index_batches`).

    Returns
    -------
    torch.Tensor of shape (B, n_items)

    Notes
    -----
    The number of entries in the batch is read once (one host synchronisation per batch);
    models that need none keep their whole matrix dense on the device instead.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skrec._torch import DeviceCSR
    >>> D = DeviceCSR.from_scipy(sp.csr_matrix(np.eye(3)), torch.device("cpu"))
    >>> gather_rows(D, torch.tensor([2, 0])).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    start = csr.indptr[rows]
    counts = csr.indptr[rows + 1] - start
    total = int(counts.sum())
    local_row = torch.repeat_interleave(torch.arange(rows.shape[0], device=rows.device), counts,
                                        output_size=total)
    offsets = torch.cumsum(counts, 0) - counts
    pos = start[local_row] + torch.arange(total, device=rows.device) - offsets[local_row]
    out = torch.zeros((rows.shape[0], csr.shape[1]), dtype=csr.values.dtype, device=rows.device)
    out[local_row, csr.indices[pos]] = csr.values[pos]
    return out
