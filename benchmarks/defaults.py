"""``python -m benchmarks defaults``: each skrec estimator's constructor defaults beside the
suite's validation-chosen configuration, cell by cell.

A cell is a (dataset, protocol) pair of the suite. For every skrec estimator of the cell
the same test split is scored twice — once with ``Estimator()`` (plus ``device`` and
``random_state``), once with the suite's configuration (``benchmarks.params``: ``FIXED``
and ``PARAMS``, chosen on validation data) — and the table shows the ratio of the default's
headline metric to the configured one (for RMSE the inverse, so that above 1 is better), whether
the default is within 1 % of it, and whether the default beats the simpler model's default on
the same cell (``BaselineBiases`` for ratings, ``Popularity`` for rankings).

Usage::

    python -m benchmarks defaults [--cells latest-small:P1,ml100k:P2,..] [--models NAME,..]
        [--device auto|cpu|cuda] [--data-home DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from benchmarks import suite
from benchmarks._common import environment, environment_info

__all__ = ["CELLS", "compare", "markdown", "main"]

# The visible cells of the suite (the sequence model only where sequences are the protocol).
CELLS = ("latest-small:P1", "latest-small:P2", "latest-small:P3", "latest-small:P4", "ml100k:P1",
         "ml100k:P2", "ml100k:P3", "ml100k:P4", "ml1m:P2", "ml1m:P4", "beauty:P3")
SIMPLER = {"P1": "BaselineBiases", "P2": "Popularity", "P3": "Popularity", "P4": "Popularity"}


def _headline(protocol):
    return suite.METRICS[protocol][0] if protocol == "P1" else suite.METRICS[protocol][-1]


def _gain(protocol, default, tuned):
    """How the default compares, above 1 = better (RMSE is inverted)."""
    return tuned / default if protocol == "P1" else default / tuned


def compare(cells=CELLS, models=None, *, device="auto", data_home=None, log=print, jsonl=None):
    """One record per (cell, skrec estimator): its default and configured scores and the
    simpler model's default score on the same split; ``jsonl``: a file each record is
    appended to as soon as it is measured."""
    out = []
    for cell in cells:
        dataset, protocol = cell.split(":")
        names = [n for n, spec in suite.CATALOGUE.items()
                 if spec.family == "skrec" and protocol in spec.protocols and (models is None or n in models)]
        simpler = SIMPLER[protocol]
        # P1 on latest-small: all five of DESIGN.md's rating folds (the default run scores one)
        folds = tuple(f"k{k}" for k in range(1, 6)) if dataset == "latest-small" else None
        split = suite.load_splits(dataset, [protocol], data_home, folds)[protocol]
        metric = _headline(protocol)
        base = suite.run_one(simpler if simpler in suite.CATALOGUE else "Popularity", dataset, protocol, split,
                             device=device, defaults=True)
        for name in names:
            default = suite.run_one(name, dataset, protocol, split, device=device, defaults=True)
            same = (suite.build(name, dataset, protocol, device=device, defaults=True).get_params()
                    == suite.build(name, dataset, protocol, device=device).get_params())
            # the same configuration (and seed) gives the same fit: scored once
            tuned = default if same else suite.run_one(name, dataset, protocol, split, device=device)
            rec = dict(dataset=dataset, protocol=protocol, model=name, metric=metric, simpler=simpler, same=same,
                       simpler_default=base.get(metric), default=default.get(metric), tuned=tuned.get(metric),
                       default_fit_s=default.get("fit_s"), tuned_fit_s=tuned.get("fit_s"),
                       default_params=default.get("params"), tuned_params=tuned.get("params"),
                       status=default["status"] if default["status"] != "ok" else tuned["status"])
            if rec["status"] == "ok":
                rec["gain"] = _gain(protocol, rec["default"], rec["tuned"])
                rec["within_1pct"] = rec["gain"] >= 0.99
                rec["beats_simpler"] = _gain(protocol, rec["default"], rec["simpler_default"]) >= 1.0
            out.append(rec)
            log(f"{cell} {name}: default {rec['default']} vs configured {rec['tuned']} ({rec['status']})")
            if jsonl is not None:  # one line per record as it lands: a long run keeps what it measured
                with open(jsonl, "a") as fh:
                    fh.write(json.dumps(rec, default=str) + "\n")
    return out


def markdown(records, env=""):
    """The defaults table."""
    lines = ["| cell | model | metric | default | configured | default / configured | within 1 % | "
             "simpler model's default | beats it | fit s (default / configured) |",
             "|---|---|---|---:|---:|---:|---|---:|---|---:|"]
    for r in records:
        if r["status"] != "ok":
            lines.append(f"| {r['dataset']} {r['protocol']} | {r['model']} | {r['metric']} | – | – | – | – | – | – | "
                         f"{r['status']} |")
            continue
        lines.append(f"| {r['dataset']} {r['protocol']} | {r['model']} | {r['metric']} | {r['default']:.4f} | "
                     f"{r['tuned']:.4f} | {r['gain']:.3f} | {'yes' if r['within_1pct'] else 'no'} | "
                     f"{r['simpler']} {r['simpler_default']:.4f} | {'yes' if r['beats_simpler'] else 'NO'} | "
                     + (f"{r['default_fit_s']:.1f} (the same configuration) |" if r["same"] else
                        f"{r['default_fit_s']:.1f} / {r['tuned_fit_s']:.1f} |"))
    return "\n".join(lines + ["", "RMSE: default / configured is configured RMSE over default RMSE (above 1 is "
                                  "better)." + (f"\n\n{env}" if env else "")])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks defaults", description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--models", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    bad = [c for c in cells if ":" not in c or c.split(":")[0] not in suite.DATASETS
           or c.split(":")[1] not in suite.DATASETS[c.split(":")[0]]]
    if bad:
        parser.error(f"--cells: expected DATASET:PROTOCOL pairs of the suite, got {bad}")
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    try:
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        records = compare(cells, models, device=args.device, data_home=args.data_home,
                          log=lambda m: print(m, file=sys.stderr, flush=True),
                          jsonl=Path(args.out) / "defaults.jsonl" if args.out else None)
    except suite.DataUnavailable as exc:
        print(f"python -m benchmarks defaults: {exc}", file=sys.stderr)
        return 2
    env = environment(args.device)
    command = "python -m benchmarks defaults " + shlex.join(argv if argv is not None else sys.argv[2:])
    text = f"# Constructor defaults beside the suite's configurations\n\n`{command.strip()}`\n\n" + markdown(records, env)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "defaults.md").write_text(text + "\n")
        (out / "defaults.json").write_text(json.dumps({"command": command.strip(), "environment": environment_info(
            args.device), "records": records}, indent=1, default=str) + "\n")
    return 0
