"""Plain-PyTorch yardsticks: the hand-written loops an estimator's epoch time is read against.

:data:`YARDSTICKS` maps a name to a :class:`Yardstick`: the loop, the data it trains on and
the estimator of :data:`benchmarks.speed.SPEED_MODELS` it stands beside. Each loop is the
bare training code of the same model, with none of an estimator's validation, device
transfer or bookkeeping, and returns its seconds per epoch, timed by
:func:`benchmarks._common.seconds_per_epoch` (one warm-up pass, then ``epochs`` timed passes,
CUDA synchronised). ``n_batches`` caps the batches of each pass and the time is scaled to a
whole epoch (the per-sample DataLoader loop is far too slow for whole epochs of a large matrix).

``python -m benchmarks speed --yardstick NAME[,NAME]`` reports them beside the estimators;
the default is ``dataloader-mf``, the textbook per-sample ``Dataset`` + ``DataLoader`` loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks._common import seconds_per_epoch

__all__ = ["Yardstick", "YARDSTICKS", "dataloader_mf", "plain_mf", "plain_bpr", "plain_dae", "plain_sasrec",
           "last_items"]


def _epoch_seconds(epoch, epochs, n, batch_size, n_batches):
    """Seconds of a whole epoch of ``n`` units in batches of ``batch_size``, from ``epoch()``
    passes over at most ``n_batches`` batches (``None``: all of them)."""
    covered = n if n_batches is None else min(n, n_batches * batch_size)
    return seconds_per_epoch(epoch, epochs) * n / covered


def _batches(n, batch_size, n_batches, generator, device):
    parts = torch.randperm(n, generator=generator, device=device).split(batch_size)
    return parts if n_batches is None else parts[:n_batches]


def _triples(X, device):
    coo = sp.coo_matrix(X)
    return (torch.as_tensor(coo.row.astype(np.int64), device=device),
            torch.as_tensor(coo.col.astype(np.int64), device=device),
            torch.as_tensor(coo.data, dtype=torch.float32, device=device))


class _Triples(torch.utils.data.Dataset):
    """The textbook dataset: one (user, item, rating) triple per ``__getitem__``."""

    def __init__(self, X):
        self.row, self.col, self.data = _triples(X, "cpu")

    def __len__(self):
        return self.row.shape[0]

    def __getitem__(self, index):
        return self.row[index], self.col[index], self.data[index]


def dataloader_mf(X, device, *, epochs=1, n_batches=300, n_factors=64, batch_size=64, lr=1e-3):
    """The textbook loop: a per-sample ``Dataset`` batched by a shuffling ``DataLoader``, MF
    without biases, Adam (its per-sample Python indexing is what it measures).

    Parameters
    ----------
    X : sparse matrix of ratings
    device : str or torch.device
    epochs : int, default=1
        Timed passes (after one warm-up pass).
    n_batches : int or None, default=300
        Batches per pass; the time is scaled to the whole epoch.
    n_factors, batch_size, lr
        The loop's settings.

    Returns
    -------
    float
        Seconds per epoch.
    """
    P = nn.Embedding(X.shape[0], n_factors).to(device)
    Q = nn.Embedding(X.shape[1], n_factors).to(device)
    opt = torch.optim.Adam(list(P.parameters()) + list(Q.parameters()), lr=lr)
    data = _Triples(X)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True)

    def epoch():
        for u, i, r in islice(loader, n_batches):
            u, i, r = u.to(device), i.to(device), r.to(device)
            loss = ((P(u) * Q(i)).sum(-1) - r).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    return _epoch_seconds(epoch, epochs, len(data), batch_size, n_batches)


def plain_mf(X, device, *, epochs=1, n_batches=None, n_factors=64, batch_size=2**20, lr=0.005, alpha=0.05):
    """A bare device-resident biased-MF loop (Adam, one ``randperm`` per epoch, the loss read
    once per epoch): the best a hand-written loop does. Returns seconds per epoch."""
    users, items, values = _triples(X, device)
    g = torch.Generator(device=device).manual_seed(0)
    P = nn.Parameter(0.1 * torch.randn(X.shape[0], n_factors, device=device, generator=g))
    Q = nn.Parameter(0.1 * torch.randn(X.shape[1], n_factors, device=device, generator=g))
    bu = nn.Parameter(torch.zeros(X.shape[0], device=device))
    bi = nn.Parameter(torch.zeros(X.shape[1], device=device))
    mu = values.mean()
    opt = torch.optim.Adam([P, Q, bu, bi], lr=lr)

    def epoch():
        total = torch.zeros((), device=device)
        for idx in _batches(values.shape[0], batch_size, n_batches, g, device):
            u, i = users[idx], items[idx]
            pu, qi = P[u], Q[i]
            err = values[idx] - (mu + bu[u] + bi[i] + (pu * qi).sum(-1))
            loss = (err * err).mean() + alpha * ((pu * pu).sum(-1) + (qi * qi).sum(-1) + bu[u] ** 2
                                                 + bi[i] ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total = total + loss.detach()
        return float(total)

    return _epoch_seconds(epoch, epochs, values.shape[0], batch_size, n_batches)


def plain_bpr(X, device, *, epochs=1, n_batches=None, n_factors=64, batch_size=2**20, lr=0.01, alpha=0.01):
    """A bare device-resident BPR loop: one ``randperm`` per epoch, uniform negatives without
    rejection, item biases, Adam (the reference of DESIGN.md §5). Returns seconds per epoch."""
    users, items, _ = _triples(X, device)
    g = torch.Generator(device=device).manual_seed(0)
    U = nn.Parameter(0.1 * torch.randn(X.shape[0], n_factors, generator=g, device=device))
    V = nn.Parameter(0.1 * torch.randn(X.shape[1], n_factors, generator=g, device=device))
    b = nn.Parameter(torch.zeros(X.shape[1], device=device))
    opt = torch.optim.Adam([U, V, b], lr=lr)

    def epoch():
        total = torch.zeros((), device=device)
        for idx in _batches(users.numel(), batch_size, n_batches, g, device):
            u, i = users[idx], items[idx]
            j = torch.randint(X.shape[1], (idx.numel(),), generator=g, device=device)
            p, qi, qj = U[u], V[i], V[j]
            x = (p * (qi - qj)).sum(-1) + b[i] - b[j]
            loss = F.softplus(-x).mean() + alpha * (p.square().sum(-1) + qi.square().sum(-1)
                                                    + qj.square().sum(-1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        return float(total)

    return _epoch_seconds(epoch, epochs, users.numel(), batch_size, n_batches)


def plain_dae(X, device, *, epochs=1, n_batches=None, hidden=(600, 200), batch_size=500, dropout=0.5, lr=1e-3):
    """Mult-DAE written directly in PyTorch: the matrix dense on the device, ``randperm`` row
    batches, tanh, input dropout, multinomial loss, Adam. Returns seconds per epoch."""
    gen = torch.Generator(device=device).manual_seed(0)
    dense = torch.as_tensor(X.toarray(), dtype=torch.float32, device=device)
    sizes = (X.shape[1],) + tuple(hidden)
    dims = list(zip(sizes[:-1], sizes[1:])) + list(zip(sizes[::-1][:-1], sizes[::-1][1:]))
    weights = [nn.Parameter(torch.randn(o, i, device=device, generator=gen) * (2 / (i + o)) ** 0.5)
               for i, o in dims]
    biases = [nn.Parameter(torch.zeros(o, device=device)) for _, o in dims]
    opt = torch.optim.Adam(weights + biases, lr=lr)

    def epoch():
        total = torch.zeros((), device=device)
        for idx in _batches(dense.shape[0], batch_size, n_batches, gen, device):
            x = dense[idx]
            h = F.normalize(x, dim=1)
            h = h * (torch.rand(h.shape, generator=gen, device=device) >= dropout) / (1 - dropout)
            for k, (w, b) in enumerate(zip(weights, biases)):
                h = F.linear(h, w, b)
                if k < len(weights) - 1:
                    h = torch.tanh(h)
            loss = -(F.log_softmax(h, 1) * x).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        return float(total)

    return _epoch_seconds(epoch, epochs, dense.shape[0], batch_size, n_batches)


class _Block(nn.Module):
    """SASRec's block, as the estimator's, with the fused kernel's own attention dropout."""

    def __init__(self, d, p):
        super().__init__()
        self.p = p
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.kv, self.out = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Dropout(p), nn.Linear(d, d), nn.Dropout(p))

    def forward(self, x):
        B, T, d = x.shape
        h = self.n1(x)
        k, v = self.kv(x).view(B, T, 2, 1, d).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(self.q(h).view(B, T, 1, d).transpose(1, 2), k, v, is_causal=True,
                                           dropout_p=self.p if self.training else 0.0)
        x = self.n2(h + self.out(a.transpose(1, 2).reshape(B, T, d)))
        return x + self.ff(x)


class _SASRec(nn.Module):
    """Right-padded causal transformer with a tied full-softmax output."""

    def __init__(self, n_items, length, d, n_blocks, p):
        super().__init__()
        self.item = nn.Embedding(n_items + 1, d, padding_idx=n_items)
        self.pos = nn.Embedding(length, d)
        self.blocks = nn.ModuleList([_Block(d, p) for _ in range(n_blocks)])
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(p)
        self.n_items, self.d = n_items, d

    def forward(self, tokens):
        x = self.drop(self.item(tokens) * self.d ** 0.5
                      + self.pos(torch.arange(tokens.shape[1], device=tokens.device)))
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.item.weight[: self.n_items].t()


def last_items(order, length, pad):
    """Each row's last ``length`` items by order key (ties by item index), right-padded with
    ``pad``: an int64 array ``[n_rows, length]`` (vectorized)."""
    order = sp.csr_matrix(order)
    counts = np.diff(order.indptr)
    rows = np.repeat(np.arange(order.shape[0]), counts)
    perm = np.lexsort((order.indices, order.data, rows))  # rows stay grouped, in order
    pos = np.arange(order.nnz) - order.indptr[rows]
    start = np.maximum(counts - length, 0)[rows]
    keep = pos >= start
    out = np.full((order.shape[0], length), pad, dtype=np.int64)
    out[rows[keep], (pos - start)[keep]] = order.indices[perm][keep]
    return out


def plain_sasrec(X, device, *, epochs=1, n_batches=None, max_seq_len=200, n_factors=64, n_blocks=2, batch_size=128,
                 lr=1e-3, dropout=0.2, random_state=0):
    """A plain hand-written SASRec loop: right-padded sequences built once (not timed),
    full-softmax cross-entropy over every position, Adam (bf16 autocast on CUDA).

    ``X`` holds order keys; an implicit matrix of ones gets random keys (``random_state``).
    Returns seconds per epoch.
    """
    device = torch.device(device)
    X = sp.csr_matrix(X, copy=True)
    if X.nnz and np.all(X.data == X.data[0]):
        X.data = np.random.default_rng(random_state).random(X.nnz) + 1.0
    n_items = X.shape[1]
    seqs = torch.as_tensor(last_items(X, max_seq_len + 1, n_items), device=device)
    model = _SASRec(n_items, max_seq_len, n_factors, n_blocks, dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
    g = torch.Generator(device=device).manual_seed(0)

    def epoch():
        total = torch.zeros((), device=device)
        for idx in _batches(seqs.shape[0], batch_size, n_batches, g, device):
            s = seqs[idx]
            target = s[:, 1:]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(torch.where(target != n_items, s[:, :-1], n_items))
            flat = target.reshape(-1)
            loss = F.cross_entropy(logits.float().reshape(-1, n_items), flat.masked_fill(flat == n_items, -100),
                                   ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        return float(total)

    return _epoch_seconds(epoch, epochs, seqs.shape[0], batch_size, n_batches)


@dataclass(frozen=True)
class Yardstick:
    """A plain loop: its row label, the data kind it trains on, the loop, its estimator."""

    label: str
    kind: str  # "explicit" (ratings 1-5) or "implicit" (ones) synthetic matrix
    run: Callable  # run(X, device, *, epochs, n_batches) -> seconds per epoch
    estimator: str  # the SPEED_MODELS entry it stands beside


YARDSTICKS = {
    "dataloader-mf": Yardstick("per-sample DataLoader (MF, batch 64)", "explicit", dataloader_mf, "MFRegressor"),
    "plain-mf": Yardstick("plain device-resident loop (biased MF, Adam)", "explicit", plain_mf, "MFRegressor"),
    "plain-bpr": Yardstick("plain device-resident loop (BPR, Adam, no rejection)", "implicit", plain_bpr,
                           "BPRRanker"),
    "plain-dae": Yardstick("plain loop (Mult-DAE (600, 200), dense rows)", "implicit", plain_dae,
                           "AutoencoderRecommender"),
    "plain-sasrec": Yardstick("plain hand-written SASRec loop (L 200, d 64, 2 blocks)", "implicit", plain_sasrec,
                              "SequenceTransformer"),
}
