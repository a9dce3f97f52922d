"""Protocol P1 (DESIGN.md §4) on MovieLens-100k: official folds u1-u5, RMSE and MAE.

For each fold, hyper-parameters are chosen on a validation split of that fold's base file
only (10 % of its ratings, seeded); the chosen configuration is refitted on the whole base
file and scored once on the test file. The test folds are never used for tuning.

Usage::

    python -m benchmarks.p1_movielens100k [--data-home DIR] [--device auto|cpu|cuda]

``DIR`` holds ``ml-100k/`` (default: $SKREC_DATA, then ../shared/data beside the repo).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks._common import default_data_home, environment

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from skrec import BaselineBiases, MFRegressor
from skrec.datasets import load_movielens
from skrec.metrics import mae, rmse
from skrec.model_selection import train_test_split_interactions

# Each entry: an estimator and the grid searched on the validation split of every fold.
MODELS = {
    "BaselineBiases": (
        BaselineBiases(),
        {"alpha": [(a_u, a_i) for a_u in (2.0, 3.0, 5.0, 8.0) for a_i in (1.0, 2.0, 3.0, 5.0)],
         "regularization": ["l2", "variance"]},
    ),
    # Epochs are chosen by early stopping inside the validation fit, then the model is refitted
    # on the whole base file for that many epochs.
    "MFRegressor": (
        MFRegressor(learning_rate=0.005, batch_size=1024, max_iter=200, early_stopping=True,
                    n_iter_no_change=5),
        {"n_factors": [64, 128], "alpha": [0.08, 0.1, 0.12]},
    ),
}


def tune(estimator, grid, X_base, seed=0):
    """Best parameters by RMSE on a 10 % validation split of the base ratings.

    For a model with early stopping, the chosen parameters include ``max_iter`` = the best
    epoch of its validation fit and ``early_stopping=False``, so that the final fit uses the
    whole base file.
    """
    X_fit, X_val = train_test_split_interactions(X_base, 0.1, random_state=seed)
    best = None
    for params in ParameterGrid(grid):
        est = clone(estimator).set_params(**params).fit(X_fit)
        score = est.score(X_fit, X_val)  # -RMSE on the validation ratings
        if best is None or score > best[0]:
            if getattr(est, "best_iteration_", None):
                params = dict(params, max_iter=est.best_iteration_, early_stopping=False)
            best = (score, params)
    return best[1], -best[0]


def run(data_home, device="auto", folds=("u1", "u2", "u3", "u4", "u5"), models=tuple(MODELS)):
    rows = []
    for name in models:
        estimator, grid = MODELS[name]
        estimator = clone(estimator).set_params(device=device, random_state=0)
        per_fold, fit_seconds, tune_seconds = [], 0.0, 0.0
        for fold in folds:
            data = load_movielens("100k", data_home=data_home, fold=fold, download=False)
            t0 = time.perf_counter()
            params, val_rmse = tune(estimator, grid, data.train)
            t1 = time.perf_counter()
            model = clone(estimator).set_params(**params).fit(data.train)
            pred = model.predict_at(data.train, data.test)
            t2 = time.perf_counter()
            tune_seconds += t1 - t0
            fit_seconds += t2 - t1
            per_fold.append((fold, rmse(data.test, pred), mae(data.test, pred), val_rmse, params))
            print(f"{name} {fold}: RMSE {per_fold[-1][1]:.4f}  MAE {per_fold[-1][2]:.4f}  "
                  f"(validation RMSE {val_rmse:.4f}, chosen {params})", flush=True)
        rows.append((name, per_fold, fit_seconds, tune_seconds, str(model.device_)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    data_home = Path(args.data_home) if args.data_home else default_data_home()
    rows = run(data_home, args.device, models=args.models)
    print()
    print(environment(args.device))
    print("| model | mean RMSE | mean MAE | per-fold RMSE | fit+predict, 5 folds | tuning, 5 folds | device |")
    print("|---|---|---|---|---|---|---|")
    for name, per_fold, fit_s, tune_s, device in rows:
        r = np.array([f[1] for f in per_fold])
        m = np.array([f[2] for f in per_fold])
        print(f"| {name} | {r.mean():.4f} | {m.mean():.4f} | {' '.join(f'{v:.4f}' for v in r)} | "
              f"{fit_s:.2f} s | {tune_s:.1f} s | {device} |")


if __name__ == "__main__":
    main()
