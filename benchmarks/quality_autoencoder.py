"""Protocol P2 (strong generalization) on MovieLens-1M for AutoencoderRecommender, beside EASE.

Data: ``ml-1m/ratings_ge4_complete.dat``, ratings >= 4 as positives, users with >= 5 of them;
10 % test users and 10 % validation users (seeded, :func:`benchmarks._common.p2_split`); each
held-out row is split 80/20 (fold in the 80 %, rank the 20 %). Models train on the training
users' whole rows. Every hyper-parameter — epochs included — is chosen by NDCG@100 on the
validation users; the chosen configuration of each family is evaluated once on the test users.

Configurations of the one estimator:

- ``EASE (closed form)``: ``hidden_layer_sizes=()``, ``loss="mse"``, ``solver="closed_form"``,
  grid over ``alpha`` and ``dropout`` (dropout adds its exact expected penalty
  ``p/(1-p)·diag(XᵀX)`` to the ridge; ``dropout=0`` is EASE itself), and over DAN's
  ``user_norm`` and ``item_norm`` (both 0 by default). ``--alphas`` are given on the scale of
  the unweighted Gram matrix: with ``user_norm=b`` the estimator gets ``alpha·Σ n_u^(1-b) / Σ n_u``,
  the weighted Gram's trace over the plain one, so one grid serves every ``b``;
- ``Mult-DAE``: ``(600, 200)``, tanh, dropout 0.5, multinomial loss;
- ``Mult-VAE``: the same with ``variational=True`` and KL annealing;
- ``recoder``: ``(600, 200)``, logistic loss, mini-batch negative sampling (optional).

Gradient models train in chunks of epochs with ``warm_start=True``; after each chunk the
validation users are scored and the best state is kept (epochs chosen on validation only).
A reference EASE written directly in numpy (Steck 2019, :class:`benchmarks.peers.EASE`) is scored
on the same split.

Usage::

    python -m benchmarks.quality_autoencoder [--data-home DIR] [--device auto|cpu|cuda]
        [--epochs N] [--chunk N] [--skip-deep | --skip-closed-form] [--deep dae,vae]
        [--with-recoder] [--alphas A,B,..] [--dropouts P,Q,..] [--user-norms B,..] [--item-norms A,..]
        [--learning-rate LR] [--batch-size B]
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import time

import numpy as np

from benchmarks._common import default_data_home, environment, load_ml1m_positives, p2_split
from benchmarks.peers import EASE
from skrec.autoencoder import AutoencoderRecommender
from skrec.model_selection import evaluate

METRICS = ("recall@20", "recall@50", "ndcg@100")


def score(model, hist, held):
    r = evaluate(model, hist, held, METRICS)
    return {m: r[m] for m in METRICS}


def tune_closed_form(split, device, grid):
    """Best closed-form fit on the validation users over ``(alpha, dropout, user_norm, item_norm)``."""
    best = None
    n_u = np.diff(split.train.indptr).astype(np.float64)
    for alpha, dropout, user_norm, item_norm in grid:
        scale = (n_u ** (1 - user_norm)).sum() / n_u.sum()  # weighted Gram trace / plain trace
        params = dict(alpha=alpha * scale, dropout=dropout, user_norm=user_norm, item_norm=item_norm)
        model = AutoencoderRecommender((), loss="mse", normalize=False, solver="closed_form", device=device,
                                       **params).fit(split.train)
        val = score(model, split.val_hist, split.val_held)["ndcg@100"]
        print(f"  EASE config alpha={alpha:g} (x{scale:.4f}) dropout={dropout:g} user_norm={user_norm:g} "
              f"item_norm={item_norm:g}: validation NDCG@100 {val:.4f}", flush=True)
        if best is None or val > best[0]:
            best = (val, dict(params, grid_alpha=alpha), model)
    return best


def train_by_chunks(params, split, device, epochs, chunk, patience=3):
    """Warm-started chunks of epochs; keep the state with the best validation NDCG@100."""
    model = AutoencoderRecommender(**params, max_iter=chunk, warm_start=True, device=device, random_state=0)
    best, bad, t0 = None, 0, time.perf_counter()
    while len(getattr(model, "history_", [])) < epochs:
        model.fit(split.train)
        val = score(model, split.val_hist, split.val_held)["ndcg@100"]
        print(f"  epoch {model.n_iter_}: loss {model.history_[-1]['loss']:.2f}, validation NDCG@100 {val:.4f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        if best is None or val > best[0]:
            best, bad = (val, model.n_iter_, pickle.dumps(model)), 0
        else:
            bad += 1
            if bad >= patience:
                break
    return best[0], best[1], pickle.loads(best[2]), time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=100, help="most epochs for the gradient models")
    parser.add_argument("--chunk", type=int, default=5, help="epochs between validation checks")
    parser.add_argument("--skip-deep", action="store_true", help="closed-form configurations only")
    parser.add_argument("--skip-closed-form", action="store_true", help="gradient configurations only")
    parser.add_argument("--alphas", default="200,300,500,800", help="closed-form alpha grid")
    parser.add_argument("--dropouts", default="0,0.25,0.5,0.67,0.75", help="closed-form dropout grid")
    parser.add_argument("--user-norms", default="0", help="closed-form user_norm grid (DAN)")
    parser.add_argument("--item-norms", default="0", help="closed-form item_norm grid (DAN)")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--with-recoder", action="store_true")
    parser.add_argument("--deep", default="dae,vae", help="gradient families to train: dae, vae ('' for none)")
    args = parser.parse_args(argv)
    X = load_ml1m_positives(args.data_home or default_data_home())
    split = p2_split(X)
    print(f"ML-1M positives {X.shape}, {X.nnz} interactions; train {split.train.shape[0]} users, "
          f"validation {split.val_hist.shape[0]}, test {split.test_hist.shape[0]}", flush=True)
    rows = []

    if not args.skip_closed_form:
        rows += closed_form_rows(split, args)
    if not args.skip_deep:
        rows += deep_rows(split, args)
    print()
    print(environment(args.device))
    print()
    print("| model | configuration (chosen on validation users) | validation NDCG@100 | test Recall@20 | "
          "test Recall@50 | test NDCG@100 | training time |")
    print("|---|---|---|---|---|---|---|")
    for name, desc, val, test, seconds in rows:
        print(f"| {name} | {desc} | {val:.4f} | {test['recall@20']:.4f} | {test['recall@50']:.4f} | "
              f"{test['ndcg@100']:.4f} | {seconds or '–'} |")


def closed_form_rows(split, args):
    """Reference EASE (numpy) and the estimator's closed-form configuration, tuned on validation."""
    rows, best = [], None
    for lam in (300.0, 500.0, 800.0, 1200.0):
        ref = EASE(lam=lam).fit(split.train)
        val = score(ref, split.val_hist, split.val_held)["ndcg@100"]
        if best is None or val > best[0]:
            best = (val, lam, ref)
    print(f"reference EASE: lambda {best[1]} (validation NDCG@100 {best[0]:.4f})", flush=True)
    rows.append(("EASE, plain numpy (reference)", f"lambda={best[1]:g}", best[0],
                 score(best[2], split.test_hist, split.test_held), None))

    # The closed-form configuration of the estimator.
    axes = (args.alphas, args.dropouts, args.user_norms, args.item_norms)
    grid = list(itertools.product(*([float(v) for v in axis.split(",")] for axis in axes)))
    t0 = time.perf_counter()
    val, params, model = tune_closed_form(split, args.device, grid)
    fit_s = time.perf_counter() - t0
    rows.append(("AutoencoderRecommender: SDense/EASE closed form",
                 f"alpha={params['alpha']:.4g} (grid {params['grid_alpha']:g}), dropout={params['dropout']:g}, "
                 f"user_norm={params['user_norm']:g}, item_norm={params['item_norm']:g}", val,
                 score(model, split.test_hist, split.test_held), f"{fit_s:.0f} s for {len(grid)} fits"))
    print(rows[-1], flush=True)
    return rows


def deep_rows(split, args):
    """Mult-DAE / Mult-VAE (/ recoder), epochs chosen on the validation users."""
    common = dict(hidden_layer_sizes=(600, 200), dropout=0.5, alpha=0.0, learning_rate=args.learning_rate,
                  batch_size=args.batch_size)
    steps = args.epochs * -(-split.train.shape[0] // args.batch_size)
    families = args.deep.split(",")
    deep = []
    if "dae" in families:
        deep.append(("Mult-DAE", dict(common)))
    if "vae" in families:
        deep.append(("Mult-VAE", dict(common, variational=True, beta=0.2, anneal_steps=max(1, steps // 2))))
    if args.with_recoder:  # the same network with and without mini-batch negative sampling
        deep.append(("recoder (logistic, every item)", dict(common, loss="logistic")))
        deep.append(("recoder (logistic, negative sampling)",
                     dict(common, loss="logistic", negative_sampling=True)))
    rows = []
    for name, params in deep:
        print(f"{name}: {params}", flush=True)
        val, n_epochs, model, seconds = train_by_chunks(params, split, args.device, args.epochs, args.chunk)
        desc = ", ".join(f"{k}={v}" for k, v in params.items()) + f", epochs={n_epochs}"
        rows.append((f"AutoencoderRecommender: {name}", desc, val,
                     score(model, split.test_hist, split.test_held), f"{seconds:.0f} s"))
        print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    main()
