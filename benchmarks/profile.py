"""``python -m benchmarks profile``: where each estimator's fit and recommend spend their time.

Each model is fitted on MovieLens-100k (ratings for the regressors, every rating >= 4 for the
rankers and the sequence model) under ``torch.profiler`` on one CPU thread, then asked for
the top 100 of every training row. Prints the wall time per epoch and per call, and the
operators with the most self time, as Markdown (the tables of ``docs/performance.md``).

Usage::

    python -m benchmarks profile [--models BPRRanker,MFRegressor,..] [--epochs 5] [--rows 12]
        [--data-home DIR]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from skrec import EASE, ALSRanker, AutoencoderRecommender, BPRRanker, MFRegressor, SequenceTransformer

from benchmarks._common import default_data_home, environment

# name -> (data kind, constructor given the epochs)
MODELS = {
    "BPRRanker": ("implicit", lambda n: BPRRanker(max_iter=n)),
    "MFRegressor": ("explicit", lambda n: MFRegressor(solver="gradient", max_iter=n, early_stopping=False)),
    "MFRegressor (Gibbs)": ("explicit", lambda n: MFRegressor(max_iter=n)),
    "AutoencoderRecommender": ("implicit", lambda n: AutoencoderRecommender(max_iter=n, early_stopping=False)),
    "EASE": ("implicit", lambda n: EASE()),
    "ALSRanker": ("implicit", lambda n: ALSRanker(max_iter=n)),
    "SequenceTransformer": ("order", lambda n: SequenceTransformer(max_iter=n, early_stopping=False)),
}


def _table(prof, total, rows):
    lines = ["| operator | self CPU s | share |", "|---|---:|---:|"]
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    for e in events:
        lines.append(f"| `{e.key}` | {e.self_cpu_time_total / 1e6:.3f} | {e.self_cpu_time_total / 1e6 / total:.0%} |")
    return lines


def main(argv=None):
    from skrec.datasets import load_movielens

    parser = argparse.ArgumentParser(prog="python -m benchmarks profile", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--data-home", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ml = load_movielens("100k", data_home=args.data_home or default_data_home())
    ratings = ml.ratings
    positives = ratings.multiply(ratings >= 4).tocsr()
    order = ml.timestamps.multiply(ratings >= 4).tocsr()
    positives.data[:] = 1.0
    data = {"explicit": ratings, "implicit": positives, "order": order}
    out = [f"# python -m benchmarks profile {' '.join(argv or [])}".rstrip(), "", environment("cpu"), "",
           "One thread, MovieLens-100k; self time of each operator (children excluded).", ""]
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        kind, make = MODELS[name]
        est = make(args.epochs).set_params(device="cpu")
        if "random_state" in est.get_params():
            est.set_params(random_state=0)
        X = data[kind]
        started = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            est.fit(X)
        fit_s = time.perf_counter() - started
        out += [f"## {name}: fit {fit_s:.2f} s, {est.n_iter_} epochs, {fit_s / est.n_iter_:.3f} s per epoch", ""]
        out += _table(prof, fit_s, args.rows) + [""]
        started = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            est.recommend(X, 100)
        rec_s = time.perf_counter() - started
        out += [f"### {name}: recommend(top 100, {X.shape[0]} rows) {rec_s:.2f} s", ""]
        out += _table(prof, rec_s, max(4, args.rows // 2)) + [""]
    text = "\n".join(out)
    print(text)
    return 0
