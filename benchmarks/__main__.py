"""``python -m benchmarks``: skrec's estimators beside the peers users would pick.

Usage::

    python -m benchmarks [--dataset latest-small|ml100k|ml1m|beauty|synthetic] [--protocols P1,P2,..]
        [--models NAME,..] [--folds k1,..|u1,..] [--seeds 0,1,..] [--device auto|cpu|cuda] [--out DIR] [--data-home DIR]
    python -m benchmarks tune --dataset D --protocol P [--models NAME,..] [--device ...]
    python -m benchmarks study --list
    python -m benchmarks study NAME [--device ...] [--entries LABEL,..] [--protocols P,..]
        [--set KEY=VALUE ..] [--max-epochs N] [--folds u1,..] [--out DIR] [--data-home DIR]
    python -m benchmarks defaults [--cells latest-small:P1,ml100k:P2,..] [--models NAME,..] [--out DIR]
    python -m benchmarks speed [--shapes ml1m,ml10m] [--scales 1,4,16] [--models NAME,..]
        [--yardstick NAME[,NAME]] [--epochs 2] [--users N] [--device ...] [--out DIR]
    python -m benchmarks profile [--models NAME,..] [--epochs 5]
    python -m benchmarks scaling [--parts search,scoring] [--workers 2] [--users 1000000] [--out FILE]

The default runs every estimator and every installed reference under P1-P4 on MovieLens
latest-small, which ships with skrec, so it needs no download and no network (3.5 minutes
on a 2-core CPU, 4.5 with implicit and Surprise installed; P1 on the first of DESIGN.md's
five rating folds, ``--folds k1,k2,k3,k4,k5`` for all five). It writes ``results.md``, ``results.json``, ``results.csv``
and the plots to ``--out`` (default ``benchmark-output/<dataset>-<device>``) and prints the
Markdown table. Models whose optional package is missing (``pip install -e ".[bench]"``
adds implicit and scikit-surprise) appear as missing rows. The exit status is 1 when any
model failed (its row says why).

``--dataset ml100k``, ``ml1m`` and ``beauty`` read ``$SKREC_DATA`` (else a ``shared/data``
folder beside the repository, else ``~/.cache/skrec``) and download what is missing, with a
checksum and a progress bar. When a set is missing and cannot be downloaded, one line names
the fix and the exit status is 2.

``tune`` searches the suite's grids (``benchmarks.params.GRIDS``) on validation data and
prints a ``PARAMS`` block. ``study NAME`` runs one per-model study of
``benchmarks.params.STUDIES`` (its grid searched on validation data, the choice scored once
on the test split; ``results.md`` and ``results.json`` under ``--out``). ``speed`` times
every estimator's epoch at growing sizes beside the plain-PyTorch loops of
``benchmarks.yardsticks``. ``profile`` prints where each estimator's fit and recommend spend their time
(``torch.profiler``, one thread). ``scaling`` runs a grid search and a batch scoring on a local Dask
cluster beside the same work in one process.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from benchmarks._common import environment


def _names(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def quality(argv):
    from benchmarks import report, suite

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0],
                                     epilog="commands:" + __doc__[__doc__.index("Usage::") + 7:].replace("``", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="latest-small", choices=sorted(suite.DATASETS))
    parser.add_argument("--protocols", default=None,
                        help="comma-separated subset of P1,P2,P3,P4,P5 (default P1-P4; P5: the global time split)")
    parser.add_argument("--models", default=None, help="comma-separated model names (default: all)")
    parser.add_argument("--folds", default=None, help="P1 folds (ML-100k: u1,...,u5; latest-small: k1,...,k5)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds: every randomised model is fitted once per seed and "
                             "each metric reported as mean ± standard deviation (default: seed 0 alone)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in _names(args.seeds)] if args.seeds else None
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    try:
        records = suite.run(args.dataset, _names(args.protocols), _names(args.models), device=args.device,
                            data_home=args.data_home, folds=_names(args.folds), seeds=seeds,
                            progress=not args.no_progress)
    except suite.DataUnavailable as exc:
        print(f"python -m benchmarks: {exc}", file=sys.stderr)
        return 2
    env = environment(args.device)
    out = Path(args.out or f"benchmark-output/{args.dataset}-{records[0].get('device', 'cpu').split(':')[0]}"
               if records else args.out or "benchmark-output")
    command = "python -m benchmarks " + shlex.join(argv)
    written = report.write(records, out, env, command.strip())
    print()
    print(report.markdown(records, env))
    print(f"\nwritten to {out}/: results.md, results.json, results.csv"
          + "".join(f", {p.name}" for p in written))
    return 1 if any(r.get("status", "").startswith("error") for r in records) else 0


def tune(argv):
    from benchmarks import suite
    from benchmarks.tune import tune as run_tune

    parser = argparse.ArgumentParser(prog="python -m benchmarks tune")
    parser.add_argument("--dataset", default="ml100k", choices=sorted(suite.DATASETS))
    parser.add_argument("--protocol", required=True, choices=("P1", "P2", "P3", "P4", "P5"))
    parser.add_argument("--models", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-home", default=None)
    args = parser.parse_args(argv)
    try:
        found = run_tune(args.dataset, args.protocol, _names(args.models), device=args.device,
                         data_home=args.data_home, log=lambda m: print(m, flush=True))
    except suite.DataUnavailable as exc:
        print(f"python -m benchmarks tune: {exc}", file=sys.stderr)
        return 2
    print(f"\n# python -m benchmarks tune {shlex.join(argv)}  ({environment(args.device)})")
    print(f"PARAMS[{args.dataset!r}][{args.protocol!r}] = {{")
    for name, (best, score, _) in found.items():
        print(f"    {name!r}: {best!r},  # validation {suite.SELECT[args.protocol]} {score:.4f}")
    print("}")
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "tune":
        return tune(argv[1:])
    if argv and argv[0] == "study":
        from benchmarks.studies import main as study_main

        return study_main(argv[1:])
    if argv and argv[0] == "defaults":
        from benchmarks.defaults import main as defaults_main

        return defaults_main(argv[1:])
    if argv and argv[0] == "speed":
        from benchmarks.speed import main as speed_main

        return speed_main(argv[1:])
    if argv and argv[0] == "profile":
        from benchmarks.profile import main as profile_main

        return profile_main(argv[1:])
    if argv and argv[0] == "scaling":
        from benchmarks.scaling import main as scaling_main

        return scaling_main(argv[1:])
    return quality(argv)


if __name__ == "__main__":
    sys.exit(main())
