"""``python -m benchmarks scaling``: search and batch scoring on a local Dask cluster.

Two measurements, each beside the same work done in one process, in the same run:

- ``search``: ``GridSearchCV`` over ``BPRRanker`` (8 points, 3 folds, NDCG@10) on the
  latest-small positives (every rating >= 4, a 20 % holdout of each row as the held-out side)
  with ``n_jobs=1``, then under ``joblib.parallel_config(backend="dask")`` on a
  ``LocalCluster`` of ``--workers`` single-threaded worker processes. Prints both wall times,
  their ratio and whether ``best_params_`` and every fold's score agree (to 1e-6).
- ``scoring``: a synthetic ``--users`` x ``--items`` implicit matrix (about 20 interactions a
  user), ``EASE`` fitted on it, then top-20 for every row by ``recommend`` in this process and
  by ``skrec.parallel.recommend_blocks`` on the cluster, the blocks written to disk first and
  loaded by the workers (``dask.delayed``), so they never pass through the driver. Prints the
  wall times, each worker's peak resident memory and whether the lists are identical.

Usage::

    python -m benchmarks scaling [--parts search,scoring] [--workers 2] [--users 1000000]
        [--items 2000] [--block-rows 100000] [--out FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import environment


def _peak_rss_mb():
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss`` it is not inherited
    from the process a worker was forked from)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cluster(n_workers):
    from distributed import Client, LocalCluster

    from skrec.parallel import TorchWorker

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    client.register_plugin(TorchWorker(1))
    return cluster, client


def search(n_workers, log):
    import joblib
    import torch
    from sklearn.model_selection import GridSearchCV, KFold

    from skrec import BPRRanker
    from skrec.datasets import load_movielens
    from skrec.metrics import get_scorer
    from skrec.model_selection import holdout_split

    ratings = load_movielens("latest-small").ratings
    positives = ratings.multiply(ratings >= 4).tocsr()
    positives.data[:] = 1.0
    X, y = holdout_split(positives, 0.2, random_state=0, as_heldout=True)
    grid = {"alpha": [0.001, 0.01], "learning_rate": [0.003, 0.01], "n_factors": [32, 64]}

    def make():
        return GridSearchCV(BPRRanker(n_negatives=4, max_iter=10, random_state=0, device="cpu"), grid,
                            cv=KFold(3, shuffle=True, random_state=0), scoring=get_scorer("ndcg@10"), error_score="raise")

    torch.set_num_threads(1)  # the same one thread per fit as in each worker
    started = time.perf_counter()
    local = make().fit(X, y)
    local_s = time.perf_counter() - started
    cluster, client = _cluster(n_workers)
    try:
        started = time.perf_counter()
        with joblib.parallel_config(backend="dask", scatter=[X, y]):
            remote = make().fit(X, y)
        remote_s = time.perf_counter() - started
    finally:
        client.close()
        cluster.close()
    keys = [k for k in local.cv_results_ if k.startswith(("split", "mean_test"))]
    gap = max(float(np.max(np.abs(local.cv_results_[k] - remote.cv_results_[k]))) for k in keys)
    row = {"fits": len(local.cv_results_["params"]) * 3 + 1, "n_jobs=1 s": local_s, "dask s": remote_s,
           "ratio": local_s / remote_s, "same best_params_": local.best_params_ == remote.best_params_,
           "max score gap": gap, "best_params_": remote.best_params_}
    log(f"search: {row}")
    return row


def scoring(n_workers, n_users, n_items, block_rows, log):
    import dask
    import scipy.sparse as sp
    import torch

    from skrec import EASE
    from skrec.datasets import make_interactions
    from skrec.parallel import recommend_blocks

    torch.set_num_threads(n_workers)  # this process may use the cores the workers would
    X = make_interactions(n_users, n_items, density=20 / n_items, random_state=0).X
    log(f"scoring: {X.shape[0]:,} x {X.shape[1]:,}, {X.nnz:,} interactions")
    model = EASE(device="cpu").fit(X)
    started = time.perf_counter()
    expected_ids, expected_scores = model.recommend(X, 20)
    local_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for start in range(0, X.shape[0], block_rows):
            paths.append(str(Path(tmp) / f"rows-{start}.npz"))
            sp.save_npz(paths[-1], X[start:start + block_rows])
        cluster, client = _cluster(n_workers)
        try:
            client.run(lambda: __import__("skrec"))  # imports outside the timing, as in a warm cluster
            started = time.perf_counter()
            blocks = [dask.delayed(sp.load_npz)(p) for p in paths]
            ids, scores = recommend_blocks(model, blocks, 20, client=client)
            remote_s = time.perf_counter() - started
            peaks = client.run(_peak_rss_mb)
        finally:
            client.close()
            cluster.close()
    row = {"users": X.shape[0], "items": X.shape[1], "interactions": X.nnz, "blocks": len(paths),
           "local recommend s": local_s, "recommend_blocks s": remote_s, "ratio": local_s / remote_s,
           "peak MB per worker": sorted(round(v) for v in peaks.values()), "driver peak MB": round(_peak_rss_mb()),
           "identical ids": bool(np.array_equal(ids, expected_ids)),
           "identical scores": bool(np.array_equal(scores, expected_scores))}
    log(f"scoring: {row}")
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="search,scoring")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--block-rows", type=int, default=100_000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    lines = [f"# python -m benchmarks scaling {' '.join(argv or [])}".rstrip(), "", f"{environment('cpu')}", ""]
    log = lambda message: print(message, flush=True)  # noqa: E731
    if "search" in parts:
        row = search(args.workers, log)
        lines += [f"## GridSearchCV, {row['fits']} fits: n_jobs=1 vs Dask ({args.workers} workers, 1 thread each)", "",
                  "| n_jobs=1 | Dask | speed-up | same best_params_ | max fold-score gap |", "|---:|---:|---:|---|---:|",
                  f"| {row['n_jobs=1 s']:.1f} s | {row['dask s']:.1f} s | {row['ratio']:.2f}x | "
                  f"{row['same best_params_']} | {row['max score gap']:.1e} |", ""]
    if "scoring" in parts:
        row = scoring(args.workers, args.users, args.items, args.block_rows, log)
        lines += [f"## Top-20 for {row['users']:,} users x {row['items']:,} items ({row['interactions']:,} "
                  f"interactions), EASE, {row['blocks']} blocks", "",
                  "| local recommend | recommend_blocks | speed-up | peak MB per worker | driver peak MB | "
                  "identical ids / scores |", "|---:|---:|---:|---|---:|---|",
                  f"| {row['local recommend s']:.1f} s | {row['recommend_blocks s']:.1f} s | {row['ratio']:.2f}x | "
                  f"{row['peak MB per worker']} | {row['driver peak MB']} | {row['identical ids']} / "
                  f"{row['identical scores']} |", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0
