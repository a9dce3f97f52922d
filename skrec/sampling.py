"""Vectorized on-device samplers.

Every sampler draws with a :class:`torch.Generator` on the data's device and returns index
tensors: there is no per-sample Python and no host synchronisation per batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["index_batches", "sample_negatives", "AdaptiveNegatives", "is_positive", "gather_rows"]


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
    for _ in range(max_rounds):
        neg = torch.where(is_positive(exclude, users, neg), draw(), neg)
    return neg


def is_positive(csr, users, items):
    """Whether ``items[b, k]`` is stored in row ``users[b]`` of ``csr`` (canonical CSR), ``[B, K]``.

    One ``searchsorted`` over the sorted keys ``row * n_items + item`` of every entry, built
    once per matrix.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skrec._torch import DeviceCSR
    >>> D = DeviceCSR.from_scipy(sp.csr_matrix(np.array([[1.0, 0, 1], [0, 1, 0]])), torch.device("cpu"))
    >>> is_positive(D, torch.tensor([0, 1]), torch.tensor([[0, 1], [0, 1]])).tolist()
    [[True, False], [False, True]]
    """
    n_items = csr.shape[1]
    if csr.indices.numel() == 0:
        return torch.zeros(items.shape, dtype=torch.bool, device=items.device)
    keys_all = csr.cached(("keys", n_items), lambda: csr.row_ids() * n_items + csr.indices)  # sorted
    keys = users.unsqueeze(1) * n_items + items
    pos = torch.searchsorted(keys_all, keys).clamp_(max=keys_all.numel() - 1)
    return keys_all[pos] == keys


class AdaptiveNegatives:
    """Adaptive, rank-based negatives for pairwise losses (Rendle & Freudenthaler, 2014).

    A negative for user vector ``p_u`` is drawn in two steps: a factor ``f`` with probability
    proportional to ``|p_uf| σ_f`` (``σ_f``: the spread of factor ``f`` over the items), then
    a rank ``r`` from a geometric distribution with mean ``mean_rank · n_items``; the negative
    is the item at rank ``r`` when the items are ordered by ``sign(p_uf) q_if``, descending.
    The items a user's score pushes up the most are thus drawn the most, at a cost per draw
    independent of the catalogue size. The per-factor orders are refreshed by :meth:`refresh`
    (one ``argsort`` of the ``[n_items, d]`` table); the published sampler refreshes them
    after every ``n_items · log(n_items)`` samples, which :meth:`due` implements.

    Parameters
    ----------
    mean_rank : float in (0, 1]
        Mean rank of a draw, as a fraction of the catalogue: small values draw only the
        hardest items, large ones approach uniform draws.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> Q = torch.randn(50, 4, generator=g)
    >>> sampler = AdaptiveNegatives(0.05).refresh(Q)
    >>> P = torch.randn(3, 4, generator=g)
    >>> j = sampler.sample(P, g, n_negatives=200)
    >>> j.shape
    torch.Size([3, 200])
    >>> bool(((P @ Q.T).gather(1, j).mean() > (P @ Q.T).mean()).item())  # hard: above-average scores
    True
    """

    def __init__(self, mean_rank):
        self.mean_rank = float(mean_rank)
        self.order = self.spread = None
        self._since = 0

    def due(self, n_drawn):
        """Count ``n_drawn`` new samples; whether ``n_items · log(n_items)`` have passed since the
        last refresh (always ``True`` before the first one)."""
        self._since += n_drawn
        if self.order is None:
            return True
        n = self.order.shape[1]
        return self._since >= n * math.log(max(n, 2))

    @torch.no_grad()
    def refresh(self, item_factors):
        """Re-rank the items along every factor from the current ``[n_items, d]`` table."""
        if item_factors.device.type == "cpu":  # numpy's vectorised quicksort: 2-3x torch's on the CPU
            order = np.argsort(-item_factors.T.numpy(), axis=1)
            self.order = torch.from_numpy(order).to(torch.int64)
        else:
            self.order = torch.argsort(item_factors.T, dim=1, descending=True)  # [d, n_items]
        self.spread = item_factors.std(0) if item_factors.shape[0] > 1 else torch.ones_like(item_factors[0])
        self._since = 0
        return self

    def _factor_weights(self, user_vectors):
        """``|p_uf| σ_f``, ``[B, d]``: the unnormalised probability of drawing along factor ``f``."""
        return user_vectors.abs() * self.spread

    def rank_probabilities(self, items):
        """``(above, below)``, each ``[d, m]``: the probability that a draw along factor ``f`` is
        ``items[k]``, for a user whose ``f``-th coordinate is >= 0 (ranks from the top) or < 0
        (from the bottom). Ranks past the end are clamped to the last item, as :meth:`sample` does."""
        d, n = self.order.shape
        rank = torch.empty_like(self.order)
        rank.scatter_(1, self.order, torch.arange(n, device=rank.device).expand(d, -1))  # rank of item j along f
        rank = rank[:, items]
        p = 1.0 / max(self.mean_rank * n, 1.0)

        def pmf(r):
            out = torch.exp(r.to(torch.float64) * math.log1p(-p)) * p if p < 1 else (r == 0).to(torch.float64)
            return torch.where(r == n - 1, (1 - p) ** (n - 1), out).to(self.spread.dtype)

        return pmf(rank), pmf(n - 1 - rank)

    def probabilities(self, user_vectors, tables):
        """``[B, m]``: the probability of drawing each item of ``tables`` (from
        :meth:`rank_probabilities`) for each user vector, before positives are excluded."""
        above, below = tables
        weight = self._factor_weights(user_vectors)
        weight = weight / weight.sum(1, keepdim=True).clamp(min=torch.finfo(weight.dtype).tiny)
        up = user_vectors >= 0
        return (weight * up) @ above + (weight * ~up) @ below

    @torch.no_grad()
    def sample(self, user_vectors, generator, *, n_negatives=1, users=None, exclude=None):
        """``[B, n_negatives]`` item indices for the user vectors ``[B, d]``.

        With ``exclude`` (a :class:`~skrec._torch.DeviceCSR` of the positives) and ``users``
        (their rows), a draw that is one of the user's positives is replaced by a uniform
        draw among the non-positives (:func:`sample_negatives`).
        """
        B, K = user_vectors.shape[0], n_negatives
        d, n = self.order.shape
        device = user_vectors.device
        cdf = torch.cumsum(self._factor_weights(user_vectors), 1)
        u = torch.rand((B, K), generator=generator, device=device) * cdf[:, -1:]
        f = torch.searchsorted(cdf, u).clamp_(max=d - 1)  # [B, K] factors
        p = 1.0 / max(self.mean_rank * n, 1.0)
        rank = torch.rand((B, K), generator=generator, device=device).clamp_(min=1e-12).log_()
        rank = rank.div_(math.log1p(-p) if p < 1 else -math.inf).long().clamp_(max=n - 1)  # geometric, from 0
        rank = torch.where(user_vectors.gather(1, f) >= 0, rank, n - 1 - rank)
        items = self.order[f, rank]
        if exclude is not None:
            hit = is_positive(exclude, users, items)
            if device.type == "cpu":  # no device to wait for: redraw only the hits
                b, k = hit.nonzero(as_tuple=True)
                items[b, k] = sample_negatives(users[b], n, generator, exclude=exclude)[:, 0]
            else:  # no host sync: a replacement for every draw, kept where needed
                items = torch.where(hit, sample_negatives(users, n, generator, n_negatives=K, exclude=exclude), items)
        return items


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
