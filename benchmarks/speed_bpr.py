"""BPR training speed: seconds per epoch on a synthetic ML-10M-shaped matrix.

Measured side by side in one run, on the same data and device:

- ``skrec BPRRanker`` with dense embeddings and Adam (the default), and with sparse
  embeddings and ``SparseAdam`` (``optimizer="sparse_adam"``), both with exact uniform
  negatives that exclude the user's positives;
- a plain device-resident loop: the same factors, one ``randperm`` per epoch, uniform
  negatives without rejection, Adam — the reference of DESIGN.md §5 (48 ms on one H100);
- implicit's CPU ``BayesianPersonalizedRanking`` (``factors=n_factors - 1``: implicit
  adds its item bias as one more factor), when implicit is installed and the device is
  the CPU (implicit is optional and never a dependency of skrec).

An epoch is one pass over the interactions (implicit: as many sampled triples). skrec's
time is the whole ``fit`` divided by its epochs (setup included), after a warm-up fit.

Usage::

    python -m benchmarks.speed_bpr [--device auto|cpu|cuda] [--shape ml10m|ml1m]
        [--epochs 3] [--batch-size 1048576] [--factors 64] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks._common import ML1M_SHAPE, ML10M_SHAPE, environment, synthetic_matrix, timed
from skrec._torch import resolve_device
from skrec.factorization import BPRRanker


def plain_loop(X, device, epochs, batch_size, d, lr=0.01, alpha=0.01, seed=0):
    """A minimal device-resident BPR loop (no validation, no rejection, no framework)."""
    g = torch.Generator(device=device).manual_seed(seed)
    coo = X.tocoo()
    users = torch.as_tensor(coo.row.astype(np.int64), device=device)
    items = torch.as_tensor(coo.col.astype(np.int64), device=device)
    U = torch.nn.Parameter(0.1 * torch.randn(X.shape[0], d, generator=g, device=device))
    V = torch.nn.Parameter(0.1 * torch.randn(X.shape[1], d, generator=g, device=device))
    b = torch.nn.Parameter(torch.zeros(X.shape[1], device=device))
    opt = torch.optim.Adam([U, V, b], lr=lr)
    n = users.numel()
    for _ in range(epochs):
        total = torch.zeros((), device=device)
        for idx in torch.split(torch.randperm(n, generator=g, device=device), batch_size):
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
        float(total)  # one read per epoch


def time_skrec(X, device, epochs, batch_size, d, optimizer):
    params = dict(n_factors=d, batch_size=batch_size, optimizer=optimizer, device=device, random_state=0,
                  tol=0.0, n_iter_no_change=10**6)
    BPRRanker(**params, max_iter=1).fit(X)  # warm-up (allocator, kernels)
    rec = {}
    with timed(rec, "s"):
        BPRRanker(**params, max_iter=epochs).fit(X)
    return rec["s"] / epochs


def time_plain(X, device, epochs, batch_size, d):
    plain_loop(X, device, 1, batch_size, d)
    rec = {}
    with timed(rec, "s"):
        plain_loop(X, device, epochs, batch_size, d)
    return rec["s"] / epochs


def time_implicit(X, epochs, d, threads):
    try:
        from implicit.cpu.bpr import BayesianPersonalizedRanking
    except ImportError:
        print("implicit not installed: its BPR is not measured")
        return None
    Xc = X.tocsr().astype(np.float32)
    model = BayesianPersonalizedRanking(factors=d - 1, iterations=epochs, num_threads=threads,
                                        random_state=0)
    t0 = time.perf_counter()
    model.fit(Xc, show_progress=False)
    return (time.perf_counter() - t0) / epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--shape", choices=("ml10m", "ml1m"), default="ml10m")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2**20)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    shape = ML10M_SHAPE if args.shape == "ml10m" else ML1M_SHAPE
    X = synthetic_matrix(*shape, kind="implicit")
    print(f"synthetic {args.shape}: {X.shape[0]} x {X.shape[1]}, {X.nnz} interactions; batch {args.batch_size}, "
          f"d {args.factors}, {args.epochs} epochs, device {device}", flush=True)
    rows = []
    plain = time_plain(X, device, args.epochs, args.batch_size, args.factors)
    rows.append(("plain device-resident loop (Adam, no rejection)", plain))
    print(f"plain loop: {plain * 1e3:.0f} ms/epoch", flush=True)
    for label, opt in (("skrec BPRRanker, dense + Adam", "adam"),
                       ("skrec BPRRanker, sparse embeddings + SparseAdam", "sparse_adam")):
        t = time_skrec(X, device, args.epochs, args.batch_size, args.factors, opt)
        rows.append((label, t))
        print(f"{label}: {t * 1e3:.0f} ms/epoch", flush=True)
    if device.type == "cpu":
        t = time_implicit(X, args.epochs, args.factors, args.threads)
        if t is not None:
            rows.append((f"implicit {__import__('implicit').__version__} BPR (CPU, {args.threads} threads)", t))
            print(f"implicit: {t * 1e3:.0f} ms/epoch", flush=True)
    else:
        print("implicit's BPR is measured on the CPU runs only")
    print()
    print("| trainer | ms / epoch | M interactions / s | time vs plain loop |")
    print("|---|---:|---:|---:|")
    for label, t in rows:
        print(f"| {label} | {t * 1e3:.0f} | {X.nnz / t / 1e6:.2f} | {t / plain:.2f}x |")
    print()
    print(environment(str(device)))


if __name__ == "__main__":
    main()
