"""Epoch time of AutoencoderRecommender on an ML-1M-shaped matrix, against a plain loop.

Mult-DAE (600, 200), tanh, dropout 0.5, multinomial loss, Adam, batch 500 rows, on a synthetic
implicit matrix of MovieLens-1M's shape (6,040 × 3,706, ~1 M interactions). Measured side by
side in one run:

- ``plain loop``: a hand-written PyTorch loop of the same network (dense matrix on the
  device, ``randperm`` batches, the loss read once per epoch) — the reference;
- ``estimator (dense rows)``: the estimator's default path for a matrix this size;
- ``estimator (CSR gather)``: batches gathered from the device-resident CSR instead;
- ``estimator, negative sampling``: recoder's mini-batch sampling (batch items only, and
  with 500 extra uniform negatives), on the default batch and on batches of 100 rows (fewer
  items per batch, where sampling saves most).

Each estimator figure is the wall time of a warm ``fit`` of ``--epochs`` epochs divided by
the epoch count (data transfer and densification included), after a one-epoch warm-up.

Usage::

    python -m benchmarks.speed_autoencoder [--device auto|cpu|cuda] [--epochs N]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks._common import ML1M_SHAPE, environment, seconds_per_epoch, synthetic_matrix, timed
from skrec.autoencoder import AutoencoderRecommender

BASE = dict(hidden_layer_sizes=(600, 200), dropout=0.5, loss="multinomial", alpha=0.0, learning_rate=1e-3,
            batch_size=500, random_state=0)


def plain_loop(X, device, epochs, batch_size=500, hidden=(600, 200), p=0.5):
    """The reference: Mult-DAE written directly in PyTorch, the matrix dense on the device."""
    gen = torch.Generator(device=device).manual_seed(0)
    dense = torch.as_tensor(X.toarray(), dtype=torch.float32, device=device)
    sizes = (X.shape[1],) + hidden
    dims = list(zip(sizes[:-1], sizes[1:])) + list(zip(sizes[::-1][:-1], sizes[::-1][1:]))
    weights = [torch.nn.Parameter(torch.randn(o, i, device=device, generator=gen) * (2 / (i + o)) ** 0.5)
               for i, o in dims]
    biases = [torch.nn.Parameter(torch.zeros(o, device=device)) for _, o in dims]
    opt = torch.optim.Adam(weights + biases, lr=1e-3)

    def epoch():
        total = torch.zeros((), device=device)
        for idx in torch.split(torch.randperm(dense.shape[0], generator=gen, device=device), batch_size):
            x = dense[idx]
            h = F.normalize(x, dim=1)
            h = h * (torch.rand(h.shape, generator=gen, device=device) >= p) / (1 - p)
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

    return seconds_per_epoch(epoch, epochs)  # one warm-up epoch first


def estimator_epoch(X, device, epochs, dense_limit=None, **params):
    model = AutoencoderRecommender(**{**BASE, **params}, max_iter=1, device=device, warm_start=True)
    if dense_limit is not None:
        model._dense_limit = dense_limit
    model.fit(X)  # warm-up epoch (module built, kernels loaded)
    model.set_params(max_iter=epochs)
    rec = {}
    with timed(rec, "s"):
        model.fit(X)
    return rec["s"] / epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs (default: 3 on CPU, 20 on CUDA)")
    args = parser.parse_args(argv)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    epochs = args.epochs or (20 if device.startswith("cuda") else 3)
    X = synthetic_matrix(*ML1M_SHAPE, kind="implicit", random_state=0)
    print(f"matrix {X.shape[0]} x {X.shape[1]}, {X.nnz} interactions; {epochs} timed epochs on {device}",
          flush=True)
    rows = []
    ref = plain_loop(X, device, epochs)
    rows.append(("plain loop (reference)", ref))
    print(f"plain loop: {ref * 1e3:.1f} ms/epoch", flush=True)
    cases = [
        ("estimator (dense rows)", dict()),
        ("estimator (CSR gather)", dict(dense_limit=0)),
        ("estimator, negative sampling (batch items)", dict(negative_sampling=True)),
        ("estimator, negative sampling (+500 uniform)", dict(negative_sampling=True, n_negatives=500)),
        ("estimator, batch 100", dict(batch_size=100)),
        ("estimator, batch 100, negative sampling", dict(batch_size=100, negative_sampling=True)),
    ]
    for name, params in cases:
        s = estimator_epoch(X, device, epochs, **params)
        rows.append((name, s))
        print(f"{name}: {s * 1e3:.1f} ms/epoch", flush=True)
    print()
    print(environment(device))
    print()
    print("| configuration | ms / epoch | vs plain loop |")
    print("|---|---|---|")
    for name, s in rows:
        print(f"| {name} | {s * 1e3:.1f} | {s / ref:.2f}× |")
    b100 = dict(rows)["estimator, batch 100"]
    print()
    rng = np.random.default_rng(0)
    for b in (500, 100):
        sizes = [np.unique(X[rng.choice(X.shape[0], b, replace=False)].indices).size for _ in range(20)]
        print(f"batch {b}: a batch holds {np.mean(sizes) / X.shape[1]:.0%} of the items on average "
              "(what negative sampling scores)")
    t = dict(rows)
    full, sampled = t["estimator (dense rows)"], t["estimator, negative sampling (batch items)"]
    print(f"negative sampling speed-up: {full / sampled:.2f}× "
          f"at batch 500, {b100 / t['estimator, batch 100, negative sampling']:.2f}× at batch 100")


if __name__ == "__main__":
    main()
