"""Epoch time of SequenceTransformer vs a plain hand-written SASRec loop of the same size.

ML-1M-shaped synthetic sequences (6,040 users, 3,706 items, ~1 M interactions with random
order keys), ``max_seq_len=200``, d = 64, 2 blocks, full-softmax cross-entropy, batch 128,
Adam. Both run side by side in one process on the same device: the estimator's per-epoch
time is ``(fit(1 + E epochs) - fit(1 epoch)) / E`` (set-up and sequence building excluded
as in the plain loop, whose sequences are built once before timing); the plain loop times E
epochs after one warm-up epoch. Quality is not measured here.

Usage::

    python -m benchmarks.speed_sequence [--device auto|cpu|cuda] [--epochs E] [--users N]

``--users`` keeps the first N users (for a quick CPU run); the default is the ML-1M shape.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skrec._torch import resolve_device
from skrec.sequence import SequenceTransformer

from ._common import ML1M_SHAPE, environment, seconds_per_epoch, synthetic_matrix, timed

L, D, BLOCKS, BATCH, LR = 200, 64, 2, 128, 1e-3


class PlainBlock(nn.Module):
    """SASRec's block, as the estimator's, with the fused kernel's own attention dropout."""

    def __init__(self, d):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.kv, self.out = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Dropout(0.2), nn.Linear(d, d), nn.Dropout(0.2))

    def forward(self, x):
        B, T, d = x.shape
        h = self.n1(x)
        k, v = self.kv(x).view(B, T, 2, 1, d).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(self.q(h).view(B, T, 1, d).transpose(1, 2), k, v, is_causal=True,
                                           dropout_p=0.2 if self.training else 0.0)
        x = self.n2(h + self.out(a.transpose(1, 2).reshape(B, T, d)))
        return x + self.ff(x)


class PlainSASRec(nn.Module):
    """The plain reference: right-padded causal transformer, tied full-softmax output."""

    def __init__(self, n_items):
        super().__init__()
        self.item = nn.Embedding(n_items + 1, D, padding_idx=n_items)
        self.pos = nn.Embedding(L, D)
        self.blocks = nn.ModuleList([PlainBlock(D) for _ in range(BLOCKS)])
        self.norm = nn.LayerNorm(D)
        self.drop = nn.Dropout(0.2)
        self.n_items = n_items

    def forward(self, tokens):
        x = self.drop(self.item(tokens) * D ** 0.5 + self.pos(torch.arange(tokens.shape[1], device=tokens.device)))
        for b in self.blocks:
            x = b(x)
        return self.norm(x) @ self.item.weight[: self.n_items].t()


def plain_sequences(X, device):
    """Right-padded ``[n_users, L + 1]`` item sequences (numpy, once, outside the timing)."""
    n_items = X.shape[1]
    out = np.full((X.shape[0], L + 1), n_items, dtype=np.int64)
    for r in range(X.shape[0]):  # set-up only, not timed
        lo, hi = X.indptr[r], X.indptr[r + 1]
        seq = X.indices[lo:hi][np.lexsort((X.indices[lo:hi], X.data[lo:hi]))][-(L + 1):]
        out[r, :seq.size] = seq
    return torch.as_tensor(out, device=device)


def plain_epochs(seqs, n_items, device, epochs):
    model = PlainSASRec(n_items).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.98))
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast(
        "cpu", enabled=False)

    def epoch():
        total = torch.zeros((), device=device)
        for idx in torch.split(torch.randperm(seqs.shape[0], device=device), BATCH):
            s = seqs[idx]
            target = s[:, 1:]
            with amp:
                logits = model(torch.where(target != n_items, s[:, :-1], n_items))
            loss = F.cross_entropy(logits.float().reshape(-1, n_items), target.reshape(-1).masked_fill(
                target.reshape(-1) == n_items, -100), ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        return float(total)

    return seconds_per_epoch(epoch, epochs)  # one warm-up epoch first


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--users", type=int, default=ML1M_SHAPE[0])
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    X = synthetic_matrix(*ML1M_SHAPE, kind="implicit", random_state=0)
    rng = np.random.default_rng(0)
    X.data = rng.random(X.nnz) + 1.0  # random order keys
    X = X[: args.users]
    est = dict(n_factors=D, max_seq_len=L, n_layers=BLOCKS, dropout=0.2, batch_size=BATCH, learning_rate=LR,
               early_stopping=False, n_iter_no_change=10**6, device=device, random_state=0)
    rec = {}
    SequenceTransformer(**est, max_iter=1).fit(X)  # warm-up (kernels, allocator)
    with timed(rec, "one"):
        SequenceTransformer(**est, max_iter=1).fit(X)
    with timed(rec, "many"):
        SequenceTransformer(**est, max_iter=1 + args.epochs).fit(X)
    ours = (rec["many"] - rec["one"]) / args.epochs
    plain = plain_epochs(plain_sequences(X, device), X.shape[1], device, args.epochs)
    print("| setting | epoch time | ratio to plain |")
    print("|---|---|---|")
    print(f"| SequenceTransformer (estimator, full softmax) | {ours:.3f} s | {ours / plain:.2f} |")
    print(f"| plain hand-written SASRec loop, same size | {plain:.3f} s | 1.00 |")
    print(f"| SequenceTransformer fit, 1 epoch incl. set-up | {rec['one']:.3f} s | |")
    print()
    print(f"{X.shape[0]} sequences, {X.shape[1]} items, {X.nnz} interactions, max_seq_len={L}, d={D}, "
          f"{BLOCKS} blocks, batch {BATCH}, {args.epochs} timed epochs")
    print(environment(str(device)))


if __name__ == "__main__":
    main()
