"""``python -m benchmarks speed``: epoch time and throughput of every estimator, at growing sizes.

On synthetic matrices of MovieLens-1M's shape (6,040 × 3,706, 1 M interactions) and
MovieLens-10M's (69,878 × 10,681, 7.6 M), each scaled by 1×, 4× and 16× in users (independent
blocks of the base shape stacked, so the interactions grow by the same factor at the same
per-user density), every gradient-trained estimator is fitted for
``--epochs`` epochs and its epoch time read from ``history_[...]["time"]`` (training steps
only, taken at the one device sync per epoch). Throughput is interactions per second. The
``growth`` column divides the epoch time by the 1× epoch time of the same model: linear
scaling gives 4 and 16. The yardsticks (``--yardstick``, :data:`benchmarks.yardsticks.YARDSTICKS`),
in the same run at 1×, are plain-PyTorch loops on the same data and device, timed after a
warm-up pass; each pass runs at most ``--yardstick-batches`` batches and is scaled to an
epoch. The default yardstick is the textbook per-sample ``Dataset`` + ``DataLoader`` loop over the MF problem
(``dataloader-mf``). ``--peers`` also times, on the same matrices in the same run, the peer
each model is compared with (:data:`PEERS`: implicit's BPR and ALS, Surprise's SVD, the numpy
EASE, at the same number of factors; BPR with one negative per positive, as implicit's); a
peer's epoch is the difference between a fit of ``n + 1`` epochs and one of 1 epoch, divided by
``n = max(--epochs, 5)`` (its set-up excluded, as
skrec's epoch time excludes it), and the ``skrec ÷ peer`` column divides the skrec model's
epoch time by it. A closed-form model's epoch is its whole solve.

Usage::

    python -m benchmarks speed [--shapes ml1m,ml10m] [--scales 1,4,16] [--models NAME,..] [--peers]
        [--yardstick dataloader-mf[,plain-mf,..]] [--yardstick-batches 300] [--epochs 2] [--users N]
        [--recommend] [--device auto|cpu|cuda] [--out DIR]

``--models`` takes the names of :data:`SPEED_MODELS` (the default set) and of
:data:`SPEED_VARIANTS` (other settings of the same estimators, on request); ``--users N``
keeps the first N users of every matrix (quick CPU runs). ``--recommend`` also fits a default
``ALSRanker`` on each shape at 1× and times ``recommend(X, k=100)`` for every row beside the same
fold-in and scores followed by a bare ``torch.topk`` (:func:`recommend_times`), with the fit's
time beside it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from skrec import EASE, ALSRanker, AutoencoderRecommender, BaselineBiases, BPRRanker, MFRegressor, SequenceTransformer

from benchmarks import peers
from benchmarks._common import (ML1M_SHAPE, ML10M_SHAPE, environment, environment_info, resolve_device,
                               synthetic_matrix)
from benchmarks.suite import PeakMemory
from benchmarks.yardsticks import YARDSTICKS

__all__ = ["SPEED_MODELS", "SPEED_VARIANTS", "epoch_time", "recommend_times", "scaled_matrix", "main"]

SHAPES = {"ml1m": ML1M_SHAPE, "ml10m": ML10M_SHAPE}
# name -> (data kind, constructor); the settings of DESIGN.md §5's reference figures
SPEED_MODELS = {
    "BaselineBiases": ("explicit", lambda: BaselineBiases(solver="gradient", batch_size=2**20)),
    "MFRegressor": ("explicit", lambda: MFRegressor(n_factors=64, solver="gradient", batch_size=2**20)),
    "BPRRanker": ("implicit", lambda: BPRRanker(n_factors=64, n_negatives=1, batch_size=2**20)),
    "AutoencoderRecommender": ("implicit", lambda: AutoencoderRecommender((600, 200), batch_size=500)),
    "SequenceTransformer": ("implicit", lambda: SequenceTransformer(n_factors=64, n_layers=2, max_seq_len=200,
                                                                     batch_size=128, early_stopping=False)),
    "ALSRanker": ("implicit", lambda: ALSRanker(n_factors=64)),
    "EASE": ("implicit", lambda: EASE()),
}
# skrec model -> (the peer users would otherwise pick, the package it needs, its factory given the
# epochs), at the same factors
PEERS = {
    "BPRRanker": ("implicit BPR", "implicit", lambda epochs: peers.ImplicitBPR(factors=64, iterations=epochs)),
    "ALSRanker": ("implicit ALS", "implicit", lambda epochs: peers.ImplicitALS(factors=64, iterations=epochs)),
    "MFRegressor": ("Surprise SVD", "surprise", lambda epochs: peers.SurpriseRating("SVD", {"n_factors": 64,
                                                                                            "n_epochs": epochs})),
    "EASE": ("numpy EASE", None, lambda epochs: peers.EASE()),
}
PEERS["MFRegressor (default batch)"] = PEERS["MFRegressor"]
PEERS["BPRRanker (default batch)"] = PEERS["BPRRanker"]
# Other settings of the same estimators, measured only when --models names them.
SPEED_VARIANTS = {
    # The batches users get by default (the speed models use DESIGN.md's GPU settings): on a
    # CPU, batches that fit the cache beat 2**20.
    "MFRegressor (default batch)": ("explicit", lambda: MFRegressor(n_factors=64, solver="gradient")),
    # The default solver: one epoch is one Gibbs sweep at 16 factors (200 sweeps per fit).
    "MFRegressor (Gibbs)": ("explicit", lambda: MFRegressor()),
    "BPRRanker (default batch)": ("implicit", lambda: BPRRanker(n_factors=64, n_negatives=1)),
    "BPRRanker (sparse_adam)": ("implicit", lambda: BPRRanker(n_factors=64, n_negatives=1, batch_size=2**20,
                                                              optimizer="sparse_adam")),
    "AutoencoderRecommender (negative sampling)": ("implicit", lambda: AutoencoderRecommender(
        (600, 200), batch_size=500, negative_sampling=True)),
    "AutoencoderRecommender (batch 100)": ("implicit", lambda: AutoencoderRecommender((600, 200), batch_size=100)),
    "AutoencoderRecommender (batch 100 + negative sampling)": ("implicit", lambda: AutoencoderRecommender(
        (600, 200), batch_size=100, negative_sampling=True)),
}


def scaled_matrix(n_users, n_items, nnz, scale, kind):
    """``scale`` independently drawn blocks of ``n_users`` rows stacked: ``scale`` × the
    interactions at the same per-user density (one large draw would saturate the popular
    items and need ever more redraws)."""
    return sp.vstack([synthetic_matrix(n_users, n_items, nnz, kind=kind, random_state=seed)
                      for seed in range(scale)], format="csr")


def epoch_time(estimator, X, epochs, device):
    """Fit ``epochs`` epochs without early stopping; ``(median epoch seconds, fit seconds)``.

    A closed-form model (no ``max_iter``) has one epoch: its solve."""
    params = dict(max_iter=epochs, early_stopping=False, device=device, random_state=0)
    estimator.set_params(**{k: v for k, v in params.items() if k in estimator.get_params()})
    t0 = time.perf_counter()
    estimator.fit(X)
    fit_s = time.perf_counter() - t0
    return float(np.median([h["time"] for h in estimator.history_])), fit_s


def peer_epoch_time(make, X, epochs):
    """``(epoch seconds, fit seconds)`` of a peer: the difference between a fit of ``n + 1``
    epochs and one of 1 epoch (each the faster of two), divided by ``n = max(epochs, 5)`` (its set-up excluded, as
    skrec's epoch time excludes it; at least 5 epochs so that the difference stands above the
    set-up's noise); a closed form's epoch is its whole fit."""
    epochs = max(epochs, 5)

    def timed(n):  # the faster of two fits: one slow outlier would make the difference meaningless
        best = None
        for _ in range(2):
            model = make(n)
            t0 = time.perf_counter()
            model.fit(X)
            seconds = time.perf_counter() - t0
            best = seconds if best is None else min(best, seconds)
        return model, best

    one = timed(1)[1]
    model, fit_s = timed(epochs + 1)
    iterative = getattr(model, "iterations", None) or (getattr(model, "params", None) or {}).get("n_epochs")
    return (max(fit_s - one, 1e-9) / epochs if iterative else fit_s), fit_s


def recommend_times(estimator, X, k=100):
    """``(recommend seconds, plain seconds)`` for top-``k`` of every row of ``X``.

    The plain loop runs the same row batches through the model's own fold-in and scoring
    (``_score_batch``) and a bare ``torch.topk``, with no masking of seen items, no tie rule
    and no copy to the host: what ``recommend`` costs beyond the scores themselves."""
    import torch

    t0 = time.perf_counter()
    estimator.recommend(X, k=k)
    ours = time.perf_counter() - t0
    checked = estimator._validate_rows(X)
    t0 = time.perf_counter()
    with torch.no_grad():
        for _, batch in estimator._row_batches(checked):
            torch.topk(estimator._score_batch(batch), k, dim=1)
    if estimator.device_.type == "cuda":
        torch.cuda.synchronize(estimator.device_)
    return ours, time.perf_counter() - t0


def main(argv=None):
    """``python -m benchmarks speed``; returns the exit status (0)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks speed", description=__doc__.splitlines()[0],
                                     epilog=f"yardsticks: {', '.join(YARDSTICKS)}; variants: "
                                            f"{', '.join(SPEED_VARIANTS)}")
    parser.add_argument("--shapes", default="ml1m,ml10m")
    parser.add_argument("--scales", default="1,4,16")
    parser.add_argument("--models", default=",".join(SPEED_MODELS), help="comma-separated (default: SPEED_MODELS)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--yardstick", default="dataloader-mf", help="comma-separated names of benchmarks.yardsticks "
                                                               "(at the 1x scale; '' for none)")
    parser.add_argument("--yardstick-batches", type=int, default=300,
                        help="most batches per timed pass of a yardstick (scaled to an epoch)")
    parser.add_argument("--users", type=int, default=None, help="keep the first N users of every matrix")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--peers", action="store_true",
                        help="also time each model's peer (implicit BPR/ALS, Surprise SVD, numpy EASE) in the same run")
    parser.add_argument("--recommend", action="store_true",
                        help="also time recommend(X, k=100) for every user of each shape at 1x beside a plain "
                             "torch.topk over the same scores, after a full default fit (ALSRanker)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    known = {**SPEED_MODELS, **SPEED_VARIANTS}
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(known))
    if unknown:
        parser.error(f"--models: expected names from {list(known)}, got {unknown}")
    sticks = [y.strip() for y in args.yardstick.split(",") if y.strip()]
    unknown = sorted(set(sticks) - set(YARDSTICKS))
    if unknown:
        parser.error(f"--yardstick: expected names from {list(YARDSTICKS)}, got {unknown}")
    rows = []
    for shape in args.shapes.split(","):
        n_users, n_items, nnz = SHAPES[shape]
        base = {}
        for scale in (int(s) for s in args.scales.split(",")):
            data = {kind: scaled_matrix(n_users, n_items, nnz, scale, kind)[: args.users]
                    for kind in ("explicit", "implicit")}
            size = (f"{shape} ×{scale} ({data['explicit'].shape[0]:,} × {n_items:,}, "
                    f"{data['explicit'].nnz / 1e6:.1f} M)")
            for name in models:
                kind, make = known[name]
                X = data[kind]
                est = make()
                with PeakMemory() as mem:
                    seconds, fit_s = epoch_time(est, X, args.epochs, args.device)
                base.setdefault(name, seconds)
                rows.append(dict(size=size, model=name, epoch_s=seconds, fit_s=fit_s, rate=X.nnz / seconds,
                                 growth=seconds / base[name], device=str(est.device_), peak_mib=mem.peak_mib()))
                print(f"{size} {name}: {seconds * 1e3:.0f} ms/epoch, {X.nnz / seconds / 1e6:.2f} M int/s, "
                      f"growth {rows[-1]['growth']:.1f}", flush=True)
                if args.peers and name in PEERS and (PEERS[name][1] is None or peers.available(PEERS[name][1])):
                    label, _, make_peer = PEERS[name]
                    with PeakMemory() as mem:
                        peer_s, peer_fit = peer_epoch_time(make_peer, X, args.epochs)
                    base.setdefault(label, peer_s)
                    rows.append(dict(size=size, model=label, epoch_s=peer_s, fit_s=peer_fit, rate=X.nnz / peer_s,
                                     growth=peer_s / base[label], device="cpu", peer_of=name,
                                     ratio=seconds / peer_s, peak_mib=mem.peak_mib()))
                    print(f"{size} {label}: {peer_s * 1e3:.0f} ms/epoch; {name} takes {seconds / peer_s:.2f}x",
                          flush=True)
            if scale != 1:
                continue
            if args.recommend:
                X = data["implicit"]
                est = ALSRanker(device=args.device, random_state=0)
                t0 = time.perf_counter()
                est.fit(X)
                fit_s = time.perf_counter() - t0
                ours, plain = recommend_times(est, X)
                rows.append(dict(size=size, model="ALSRanker recommend top-100, every row", epoch_s=ours, fit_s=fit_s,
                                 rate=X.shape[0] / ours, growth=None, device=str(est.device_), recommend=True,
                                 plain_s=plain))
                print(f"{size} ALSRanker: fit {fit_s:.1f} s; recommend(k=100) {ours:.2f} s, fold-in + scores + "
                      f"torch.topk {plain:.2f} s ({ours / plain:.2f}x)", flush=True)
            device = rows[-1]["device"] if rows else str(resolve_device(args.device))
            for stick in sticks:
                yardstick = YARDSTICKS[stick]
                X = data[yardstick.kind]
                seconds = yardstick.run(X, device, epochs=args.epochs, n_batches=args.yardstick_batches)
                rows.append(dict(size=size, model=yardstick.label, yardstick=stick, epoch_s=seconds, fit_s=None,
                                 rate=X.nnz / seconds, growth=None, device=device))
                print(f"{size} {yardstick.label}: {seconds * 1e3:.0f} ms/epoch, {X.nnz / seconds / 1e6:.3f} M int/s",
                      flush=True)
    info = environment_info(args.device)
    env = environment(info=info)
    command = "python -m benchmarks speed " + shlex.join(argv if argv is not None else [])
    lines = [f"Command: `{command.strip()}`", "", env, "",
             "| data | model | epoch time | skrec ÷ peer | M interactions / s | growth vs ×1 | fit (incl. set-up) "
             "| peak MiB | device |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in (r for r in rows if not r.get("recommend")):
        lines.append(f"| {r['size']} | {r['model']} | {r['epoch_s'] * 1e3:,.0f} ms | "
                     + (f"{r['ratio']:.2f}x" if "ratio" in r else "") + f" | {r['rate'] / 1e6:.3f} | "
                     + (f"{r['growth']:.1f}" if r["growth"] is not None else "–") + " | "
                     + (f"{r['fit_s']:.1f} s" if r["fit_s"] is not None else "yardstick") + " | "
                     + (f"{r['peak_mib']:,.0f}" if r.get("peak_mib") is not None else "–") + f" | {r['device']} |")
    scored = [r for r in rows if r.get("recommend")]
    if scored:
        lines += ["", "| data | what | recommend | fold-in + scores + torch.topk | ratio | full fit | device |",
                  "|---|---|---:|---:|---:|---:|---|"]
        lines += [f"| {r['size']} | {r['model']} | {r['epoch_s']:.2f} s | {r['plain_s']:.2f} s | "
                  f"{r['epoch_s'] / r['plain_s']:.2f}x | {r['fit_s']:.1f} s | {r['device']} |" for r in scored]
    table = "\n".join(lines)
    print()
    print(table)
    out = Path(args.out or "benchmark-output/speed")
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.md").write_text(table + "\n")
    (out / "speed.json").write_text(json.dumps({"command": command, "date": info["date"], "device": info["device"],
                                                   "versions": info["versions"], "environment": env, "rows": rows},
                                                  indent=1))
    print(f"\nwritten to {out}/: speed.md, speed.json")
    return 0
