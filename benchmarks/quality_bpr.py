"""BPRRanker quality on MovieLens-1M positives: protocols P2 and P4 (DESIGN.md §4).

Data: ``ml-1m/ratings_ge4_complete.dat`` binarized (ratings >= 4), users with >= 5 positives
(:func:`benchmarks._common.load_ml1m_positives`).

- P2 strong generalization: fit on the training users; every validation/test user is
  folded in from 80 % of their row and ranked against the other 20 % (Recall@20,
  Recall@50, NDCG@100).
- P4 per-user 80/20 holdout: Recall@20, NDCG@20.

Hyper-parameters are chosen on validation data only (P2: ``val_hist/val_held``; P4:
``fit/val_held``), by the first metric's companion NDCG, then the chosen configuration is
refitted on the training part and evaluated once on the test part.

Usage::

    python -m benchmarks.quality_bpr [--data-home DIR] [--device auto|cpu|cuda]
        [--protocols p2,p4] [--alpha 0.001,0.01] [--factors 64] [--negatives 1]
        [--fold-in gradient] [--max-iter 30] [--n-iter-no-change 5]

Each comma-separated option is one axis of the grid. Without validation data inside ``fit``,
training stops when the training loss has not improved for ``--n-iter-no-change`` epochs
(the loss of freshly sampled negatives is noisy: a large value trains ``--max-iter`` epochs).
"""

from __future__ import annotations

import argparse
import time

from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from benchmarks._common import default_data_home, environment, load_ml1m_positives, p2_split, p4_split
from skrec.factorization import BPRRanker
from skrec.model_selection import evaluate

METRICS = {"p2": ("recall@20", "recall@50", "ndcg@100"), "p4": ("recall@20", "ndcg@20")}
SELECT = {"p2": "ndcg@100", "p4": "ndcg@20"}


def run_protocol(name, X, base, grid, log=print):
    if name == "p2":
        s = p2_split(X)
        fit_tune, hist_tune, held_tune = s.train, s.val_hist, s.val_held
        fit_final, hist_test, held_test = s.train, s.test_hist, s.test_held
    else:
        s = p4_split(X)
        fit_tune, hist_tune, held_tune = s.fit, s.fit, s.val_held
        fit_final, hist_test, held_test = s.train, s.train, s.test_held
    best = None
    tuned = {}
    for params in ParameterGrid(grid):
        t0 = time.perf_counter()
        model = clone(base).set_params(**params).fit(fit_tune)
        tuned[repr(params)] = (model, time.perf_counter() - t0)
        val = evaluate(model, hist_tune, held_tune, METRICS[name])
        log(f"{name} validation {params}: " + ", ".join(f"{k} {val[k]:.4f}" for k in METRICS[name])
            + f" ({time.perf_counter() - t0:.0f} s)")
        if best is None or val[SELECT[name]] > best[0]:
            best = (val[SELECT[name]], params)
    if fit_final is fit_tune:  # P2 tunes and tests on the same training users: no refit needed
        model, fit_s = tuned[repr(best[1])]
    else:
        t0 = time.perf_counter()
        model = clone(base).set_params(**best[1]).fit(fit_final)
        fit_s = time.perf_counter() - t0
    test = evaluate(model, hist_test, held_test, METRICS[name])
    return best[1], test, fit_s, model.n_iter_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--protocols", default="p2,p4")
    parser.add_argument("--alpha", default="0.001,0.01", help="comma-separated grid of alpha")
    parser.add_argument("--fold-in", default="gradient", help="comma-separated: gradient,ridge")
    parser.add_argument("--factors", default="64", help="comma-separated grid of n_factors")
    parser.add_argument("--negatives", default="1", help="comma-separated grid of n_negatives")
    parser.add_argument("--max-iter", type=int, default=30)
    parser.add_argument("--n-iter-no-change", type=int, default=5)
    args = parser.parse_args(argv)
    X = load_ml1m_positives(args.data_home or default_data_home())
    base = BPRRanker(max_iter=args.max_iter, n_iter_no_change=args.n_iter_no_change, tol=0.0,
                     random_state=0, device=args.device)
    grid = {"alpha": [float(a) for a in args.alpha.split(",")], "fold_in": args.fold_in.split(","),
            "n_factors": [int(a) for a in args.factors.split(",")],
            "n_negatives": [int(a) for a in args.negatives.split(",")]}
    print(f"MovieLens-1M positives: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} interactions; "
          f"grid {grid}", flush=True)
    rows = []
    for name in args.protocols.split(","):
        params, test, fit_s, n_iter = run_protocol(name, X, base, grid, log=lambda m: print(m, flush=True))
        rows.append((name, params, test, fit_s, n_iter))
        print(f"{name} test (chosen {params}): " + ", ".join(f"{k} {test[k]:.4f}" for k in METRICS[name]),
              flush=True)
    print()
    print("| protocol | metrics (test) | chosen on validation | fit s | epochs |")
    print("|---|---|---|---:|---:|")
    for name, params, test, fit_s, n_iter in rows:
        metrics = ", ".join(f"{k} **{test[k]:.4f}**" for k in METRICS[name])
        print(f"| {name.upper()} | {metrics} | {params} | {fit_s:.0f} | {n_iter} |")
    print()
    print(environment(args.device))


if __name__ == "__main__":
    main()
