"""MFRegressor epoch time on a synthetic ML-10M-shaped matrix, beside two yardsticks.

In one run, on the same data and device:

1. ``MFRegressor`` — the full estimator (validation, device transfer, the shared loop);
   the epoch time is ``(fit(k + 1 epochs) - fit(1 epoch)) / k``, so setup is not counted
   in it (it is reported separately).
2. A plain device-resident loop — the same biased MF written as a bare PyTorch loop (Adam,
   the same batch size), the best a hand-written loop does.
3. The seed-style loop (seed 003) — a ``Dataset`` whose ``__getitem__`` returns one
   (user, item, rating) triple, batched by a ``DataLoader`` (batch 64); timed over a fixed
   number of batches and reported in interactions/s.

Usage::

    python -m benchmarks.speed_mf [--device auto|cpu|cuda] [--epochs 3] [--batch-size 1048576]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks._common import ML10M_SHAPE, environment, synthetic_matrix, timed
from skrec import MFRegressor


def plain_loop(X, n_factors, batch_size, epochs, device, lr=0.005, alpha=0.05):
    """A bare device-resident biased-MF loop; returns seconds per epoch (after a warm-up epoch)."""
    coo = X.tocoo()
    users = torch.as_tensor(coo.row.astype(np.int64), device=device)
    items = torch.as_tensor(coo.col.astype(np.int64), device=device)
    values = torch.as_tensor(coo.data, dtype=torch.float32, device=device)
    g = torch.Generator(device=device).manual_seed(0)
    P = torch.nn.Parameter(0.1 * torch.randn(X.shape[0], n_factors, device=device, generator=g))
    Q = torch.nn.Parameter(0.1 * torch.randn(X.shape[1], n_factors, device=device, generator=g))
    bu = torch.nn.Parameter(torch.zeros(X.shape[0], device=device))
    bi = torch.nn.Parameter(torch.zeros(X.shape[1], device=device))
    mu = values.mean()
    opt = torch.optim.Adam([P, Q, bu, bi], lr=lr)
    times = []
    for _ in range(epochs + 1):
        rec = {}
        with timed(rec, "s"):
            total = torch.zeros((), device=device)
            for idx in torch.randperm(values.shape[0], device=device, generator=g).split(batch_size):
                u, i = users[idx], items[idx]
                pu, qi = P[u], Q[i]
                err = values[idx] - (mu + bu[u] + bi[i] + (pu * qi).sum(-1))
                loss = (err * err).mean() + alpha * ((pu * pu).sum(-1) + (qi * qi).sum(-1)
                                                     + bu[u] ** 2 + bi[i] ** 2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total = total + loss.detach()
            float(total)
        times.append(rec["s"])
    return float(np.median(times[1:]))


def seed_style_loop(X, n_factors, device, n_batches=300, batch_size=64):
    """Seed 003's per-sample Dataset + DataLoader; returns interactions per second."""
    from torch.utils.data import DataLoader, Dataset

    class Interactions(Dataset):
        def __init__(self, M):
            coo = M.tocoo()
            self.row = torch.as_tensor(coo.row.astype(np.int64))
            self.col = torch.as_tensor(coo.col.astype(np.int64))
            self.data = torch.as_tensor(coo.data, dtype=torch.float32)

        def __len__(self):
            return self.row.shape[0]

        def __getitem__(self, index):
            return self.row[index], self.col[index], self.data[index]

    P = torch.nn.Embedding(X.shape[0], n_factors).to(device)
    Q = torch.nn.Embedding(X.shape[1], n_factors).to(device)
    opt = torch.optim.Adam(list(P.parameters()) + list(Q.parameters()), lr=1e-3)
    loader = DataLoader(Interactions(X), batch_size=batch_size, shuffle=True)
    seen = 0
    rec = {}
    with timed(rec, "s"):
        for step, (u, i, r) in enumerate(loader):
            u, i, r = u.to(device), i.to(device), r.to(device)
            loss = ((P(u) * Q(i)).sum(-1) - r).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += u.shape[0]
            if step + 1 >= n_batches:
                break
    return seen / rec["s"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2**20)
    parser.add_argument("--n-factors", type=int, default=64)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    X = synthetic_matrix(*ML10M_SHAPE, kind="explicit", random_state=0)
    print(f"synthetic ML-10M shape: {X.shape[0]:,} x {X.shape[1]:,}, {X.nnz:,} ratings; "
          f"n_factors={args.n_factors}, batch {args.batch_size:,}, device {device}", flush=True)
    est = MFRegressor(n_factors=args.n_factors, batch_size=args.batch_size, learning_rate=0.005,
                      device=device, random_state=0)
    fits = []
    for max_iter in (1, 1, args.epochs + 1):  # the first fit also warms the device up
        rec = {}
        with timed(rec, "s"):
            est.set_params(max_iter=max_iter).fit(X)
        fits.append(rec["s"])
    one = min(fits[:2])
    est_epoch = (fits[2] - one) / args.epochs
    plain_epoch = plain_loop(X, args.n_factors, args.batch_size, args.epochs, device)
    seed_rate = seed_style_loop(X, args.n_factors, device)
    rows = [
        ("MFRegressor (estimator)", est_epoch, X.nnz / est_epoch),
        ("plain device-resident loop", plain_epoch, X.nnz / plain_epoch),
        ("seed-style per-sample DataLoader (batch 64)", X.nnz / seed_rate, seed_rate),
    ]
    print()
    print(environment(str(device)))
    print("| loop | epoch time | interactions/s | epoch time vs plain loop |")
    print("|---|---|---|---|")
    for name, epoch, rate in rows:
        print(f"| {name} | {epoch * 1000:,.0f} ms | {rate / 1e6:,.3f} M | {epoch / plain_epoch:.2f}x |")
    print(f"\nMFRegressor fit with 1 epoch, setup included (validation, copy to the device, module): "
          f"{one:.2f} s; MFRegressor is {X.nnz / est_epoch / seed_rate:,.0f}x the seed-style loop's throughput.")


if __name__ == "__main__":
    main()
