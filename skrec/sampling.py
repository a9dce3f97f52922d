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


def sample_negatives(users, n_items, generator, *, n_negatives=1, probabilities=None,
                     positive_keys=None, max_rounds=10):
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
    positive_keys : torch.Tensor of int64, optional
        Sorted ``user * n_items + item`` keys of all positives. When given, negatives that
        are positives of their user are redrawn, up to ``max_rounds`` times, all in bulk
        (membership by ``torch.searchsorted``).
    max_rounds : int, default=10
        Redraw rounds; a user whose positives cover almost the whole catalogue may keep a
        positive after them (the probability is ``density ** max_rounds``).

    Returns
    -------
    torch.Tensor of int64, shape (B, n_negatives)

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> keys = torch.tensor([0 * 4 + 0, 0 * 4 + 1, 0 * 4 + 2])  # user 0 likes items 0, 1, 2
    >>> neg = sample_negatives(torch.zeros(6, dtype=torch.long), 4, g, positive_keys=keys)
    >>> neg.flatten().tolist()
    [3, 3, 3, 3, 3, 3]
    """
    shape = (users.shape[0], n_negatives)

    def draw():
        if probabilities is None:
            return torch.randint(n_items, shape, generator=generator, device=users.device)
        flat = torch.multinomial(probabilities, shape[0] * shape[1], replacement=True, generator=generator)
        return flat.view(shape)

    neg = draw()
    if positive_keys is None or positive_keys.numel() == 0:
        return neg
    user_base = users.unsqueeze(1) * n_items
    for _ in range(max_rounds):
        keys = user_base + neg
        pos = torch.searchsorted(positive_keys, keys).clamp_(max=positive_keys.numel() - 1)
        clash = positive_keys[pos] == keys
        neg = torch.where(clash, draw(), neg)
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
