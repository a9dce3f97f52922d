"""``python -m benchmarks study NAME``: the per-model studies of :data:`benchmarks.params.STUDIES`.

A study is one model's (or a few models') measurement on one dataset under one or more
protocols of DESIGN.md §4, with the comparisons it needs beside it. Every study runs the
same way:

1. the protocol's split comes from :func:`benchmarks.suite.protocol_split` (the one split
   of the suite);
2. each entry's grid is searched with :func:`benchmarks.tune.search` (``GridSearchCV`` over
   one predefined split of the validation data only; ``tune_per_fold`` studies search P1
   again on 10 % of each fold's training ratings); an entry without a grid is a fixed
   configuration and is not searched;
3. the chosen configuration is fitted on each test fold once and scored there once
   (``skrec.model_selection.evaluate``, the suite's metrics);
4. the records are written by :func:`benchmarks.report.write_study` (``results.md`` and
   ``results.json``, with the command, date, device and versions).

The epoch policies of the old per-issue scripts are options of an entry (see
:data:`benchmarks.params.STUDIES`): ``"refit_best_iteration"`` (the validation fit stops
early; the test fit trains that many epochs without stopping) and :class:`Chunks`
(warm-started chunks of epochs, the validation data scored after each, the best state
kept: :class:`ChunkedFit`). Settings that depend on the data are computed by the named
:data:`ADAPTERS`.
"""

from __future__ import annotations

import argparse
import ast
import pickle
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import ParameterGrid

from skrec.metrics import get_scorer
from skrec.model_selection import evaluate, train_test_split_interactions

from benchmarks import peers, report
from benchmarks._common import environment_info, timed
from benchmarks.params import STUDIES
from benchmarks.suite import (CATALOGUE, DATASETS, METRICS, SELECT, DataUnavailable, PeakMemory, load_splits, model_inputs,
                              skrec_runtime)
from benchmarks.tune import search

__all__ = ["ADAPTERS", "Chunks", "ChunkedFit", "Entry", "Study", "candidates", "constructor_params",
           "make_estimator", "resolve", "run_study", "main"]


# ----------------------------------------------------------------------------- policies
@dataclass(frozen=True)
class Chunks:
    """Train in warm-started chunks of ``chunk`` epochs, up to ``max_epochs``; after each chunk
    score the validation data and keep the best state; stop after ``patience`` chunks
    without improvement."""

    chunk: int = 5
    max_epochs: int = 100
    patience: int = 3


_POLICIES = (None, "refit_best_iteration")


class ChunkedFit(BaseEstimator):
    """Fit ``estimator`` in warm-started chunks of epochs, keeping its best validation state.

    Parameters
    ----------
    estimator : skrec estimator
        Trained with ``warm_start=True`` and ``max_iter=chunk`` per call of its ``fit``.
    chunk : int, default=5
        Epochs between two validation checks.
    max_epochs : int, default=100
        Most epochs trained (a chunk started below it is finished).
    patience : int, default=3
        Chunks without a better validation score before training stops.
    validation : (hist, held) or None, default=None
        Histories scored and their targets. ``None`` trains ``max_epochs`` epochs in the same
        chunks and keeps the last state (the test fit of a chosen epoch count).
    scoring : callable or None, default=None
        ``scorer(estimator, hist, held)``, higher is better; needed with ``validation``.
    verbose : int, default=0
        Print one line per chunk when positive.

    Attributes
    ----------
    estimator_ : skrec estimator
        The kept state; its ``n_iter_`` is the chosen number of epochs.
    curve_ : list of (int, float)
        Epochs trained and validation score after each chunk (empty without validation).
    """

    def __init__(self, estimator, chunk=5, max_epochs=100, patience=3, validation=None, scoring=None, verbose=0):
        self.estimator = estimator
        self.chunk = chunk
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation = validation
        self.scoring = scoring
        self.verbose = verbose

    def fit(self, X, y=None):
        """Train by chunks on ``X`` (``y`` is not used).

        Returns
        -------
        self : ChunkedFit
        """
        model = clone(self.estimator).set_params(max_iter=self.chunk, warm_start=True)
        self.curve_, best, bad, t0 = [], None, 0, time.perf_counter()
        while len(getattr(model, "history_", None) or ()) < self.max_epochs:
            model.fit(X)
            if self.validation is None:
                continue
            score = float(self.scoring(model, *self.validation))
            self.curve_.append((model.n_iter_, score))
            if self.verbose:
                print(f"  epoch {model.n_iter_}: loss {model.history_[-1]['loss']:.4g}, validation {score:.4f} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
            if best is None or score > best[0]:
                best, bad = (score, pickle.dumps(model)), 0
            else:
                bad += 1
                if bad >= self.patience:
                    break
        self.estimator_ = model if best is None else pickle.loads(best[1])
        return self

    def recommend(self, X, k=10, *, exclude_seen=True):
        """The kept state's ``recommend``."""
        return self.estimator_.recommend(X, k=k, exclude_seen=exclude_seen)

    def predict_at(self, X, y):
        """The kept state's ``predict_at``."""
        return self.estimator_.predict_at(X, y)


# ----------------------------------------------------------------------------- adapters
def _alpha_on_unweighted_gram(params, fit, max_epochs):
    """``alpha`` given on the unweighted Gram's scale: with ``user_norm=b`` the rows weigh
    ``n_u ** -b``, so the estimator gets ``alpha * sum(n_u ** (1 - b)) / sum(n_u)`` (the
    weighted Gram's trace over the plain one) and one grid serves every ``b``."""
    n_u = np.diff(fit.indptr).astype(np.float64)
    scale = (n_u ** (1.0 - params.get("user_norm", 0.0))).sum() / n_u.sum()
    return dict(params, alpha=params["alpha"] * scale)


def _anneal_over_half_the_steps(params, fit, max_epochs):
    """Mult-VAE's KL weight annealed over half the optimizer steps of ``max_epochs`` epochs."""
    steps = max_epochs * -(-fit.shape[0] // params["batch_size"])
    return dict(params, anneal_steps=max(1, steps // 2))


ADAPTERS = {
    "alpha_on_unweighted_gram": _alpha_on_unweighted_gram,
    "anneal_over_half_the_steps": _anneal_over_half_the_steps,
}


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Entry:
    """One row of a study: a catalogue model, its fixed arguments, its grid and policies."""

    label: str
    model: str
    params: dict = field(default_factory=dict)
    grid: dict | None = None
    epochs: object = None  # None, "refit_best_iteration" or a Chunks
    adapt: str | None = None
    protocols: tuple = ()

    @property
    def max_epochs(self):
        """The epoch budget (``Chunks.max_epochs``, else ``max_iter``), ``None`` without one."""
        if isinstance(self.epochs, Chunks):
            return self.epochs.max_epochs
        return self.params.get("max_iter")


@dataclass(frozen=True)
class Study:
    """A named study of :data:`benchmarks.params.STUDIES`, resolved and checked."""

    name: str
    about: str
    dataset: str
    protocols: tuple
    entries: tuple
    tune_per_fold: bool = False
    was: str = ""
    writeup: str = ""


def _accepted(model):
    """The constructor parameters of catalogue model ``model``."""
    return set(CATALOGUE[model].make().get_params(deep=False))


def _entry(name, label, spec, protocols):
    unknown = sorted(set(spec) - {"model", "params", "grid", "epochs", "adapt", "protocols"})
    if unknown:
        raise ValueError(f"STUDIES[{name!r}][{label!r}]: unknown keys {unknown}")
    if spec["model"] not in CATALOGUE:
        raise ValueError(f"STUDIES[{name!r}][{label!r}]: model {spec['model']!r} is not in CATALOGUE")
    epochs = spec.get("epochs")
    if isinstance(epochs, dict):
        epochs = Chunks(**epochs)
    elif epochs not in _POLICIES:
        raise ValueError(f"STUDIES[{name!r}][{label!r}]: epochs must be one of {_POLICIES} or a dict of "
                         f"Chunks' fields, got {epochs!r}")
    adapt = spec.get("adapt")
    if adapt is not None and adapt not in ADAPTERS:
        raise ValueError(f"STUDIES[{name!r}][{label!r}]: adapt must be one of {sorted(ADAPTERS)}, got {adapt!r}")
    grid = spec.get("grid")
    if grid is None and epochs is not None:
        raise ValueError(f"STUDIES[{name!r}][{label!r}]: the epoch policy {epochs!r} chooses epochs on "
                         "validation data: give a grid ({} for the one configuration)")
    entry = Entry(label, spec["model"], dict(spec.get("params", {})), None if grid is None else dict(grid),
                  epochs, adapt, tuple(spec.get("protocols", protocols)))
    wrong = sorted(set(entry.protocols) - set(protocols))
    if wrong:
        raise ValueError(f"STUDIES[{name!r}][{label!r}]: protocols {wrong} are not the study's {protocols}")
    bad = sorted((set(entry.params) | set(entry.grid or ())) - _accepted(entry.model))
    if bad:
        raise ValueError(f"STUDIES[{name!r}][{label!r}]: {entry.model} takes no parameters {bad}")
    return entry


def _override(entry, key, value):
    """``entry`` with ``key`` set to ``value`` (a list: a grid axis)."""
    params, grid = dict(entry.params), None if entry.grid is None else dict(entry.grid)
    if isinstance(value, list):
        grid = dict(grid or {}, **{key: value})
        params.pop(key, None)
    elif grid is not None and key in grid:
        grid[key] = [value]
    else:
        params[key] = value
    return replace(entry, params=params, grid=grid)


def _with_max_epochs(entry, n):
    if isinstance(entry.epochs, Chunks):
        return replace(entry, epochs=replace(entry.epochs, max_epochs=n))
    return _override(entry, "max_iter", n)


def resolve(name, *, entries=None, protocols=None, overrides=None, max_epochs=None):
    """The study ``name`` of :data:`~benchmarks.params.STUDIES`, checked, with the overrides.

    Parameters
    ----------
    name : str
        A key of ``STUDIES``.
    entries : list of str, optional
        The entry labels to keep (default: all).
    protocols : list of str, optional
        The study's protocols to keep (default: all).
    overrides : dict, optional
        ``{parameter: value}`` set on every kept entry whose model takes the parameter; a
        list value becomes a grid axis (the entry is then searched), any other value
        replaces the fixed argument or the axis of that name.
    max_epochs : int, optional
        The epoch budget of every kept entry that has one (a :class:`Chunks` policy's
        ``max_epochs``, else its ``max_iter``).

    Returns
    -------
    Study
    """
    if name not in STUDIES:
        raise ValueError(f"study: expected one of {sorted(STUDIES)}, got {name!r}")
    raw = STUDIES[name]
    unknown = sorted(set(raw) - {"about", "dataset", "protocols", "entries", "tune_per_fold", "was", "writeup"})
    if unknown:
        raise ValueError(f"STUDIES[{name!r}]: unknown keys {unknown}")
    wanted, dataset, protocols = protocols, raw["dataset"], tuple(raw["protocols"])
    if dataset not in DATASETS or not set(protocols) <= set(DATASETS[dataset]):
        raise ValueError(f"STUDIES[{name!r}]: dataset {dataset!r} with protocols {protocols} is not one of "
                         f"the suite's {DATASETS}")
    found = [_entry(name, label, spec, protocols) for label, spec in raw["entries"].items()]
    if wanted:
        if not set(wanted) <= set(protocols):
            raise ValueError(f"protocols: {name} has {protocols}, got {list(wanted)}")
        protocols = tuple(p for p in protocols if p in wanted)
        found = [replace(e, protocols=tuple(p for p in e.protocols if p in wanted)) for e in found]
        found = [e for e in found if e.protocols]
    if entries:
        missing = sorted(set(entries) - {e.label for e in found})
        if missing:
            raise ValueError(f"entries: {name} has {[e.label for e in found]}, got {missing}")
        found = [e for e in found if e.label in entries]
    for key, value in (overrides or {}).items():
        takers = [i for i, e in enumerate(found) if key in _accepted(e.model)]
        if not takers:
            raise ValueError(f"--set {key}: no entry of {name} takes it")
        for i in takers:
            found[i] = _override(found[i], key, value)
    if max_epochs is not None:
        budgeted = [i for i, e in enumerate(found) if e.max_epochs is not None]
        if not budgeted:
            raise ValueError(f"--max-epochs: no entry of {name} has an epoch budget")
        for i in budgeted:
            found[i] = _with_max_epochs(found[i], max_epochs)
    return Study(name, raw["about"], dataset, protocols, tuple(found), bool(raw.get("tune_per_fold", False)),
                 raw.get("was", ""), raw.get("writeup", ""))


# ----------------------------------------------------------------------------- building
def candidates(entry):
    """The grid points of ``entry`` in ``ParameterGrid`` order (``[{}]`` without a grid)."""
    return list(ParameterGrid(entry.grid)) if entry.grid else [{}]


def constructor_params(entry, point, fit, *, device="auto", random_state=0):
    """The constructor arguments of ``entry`` at grid ``point`` for a fit on ``fit``.

    The fixed arguments, then the point, then the entry's adapter (data-dependent settings),
    then ``device`` and ``random_state`` for skrec's estimators.
    """
    params = {**entry.params, **point}
    if entry.adapt:
        params = ADAPTERS[entry.adapt](params, fit, entry.max_epochs)
    if CATALOGUE[entry.model].family == "skrec":
        params.update(skrec_runtime(entry.model, device, random_state))
    return params


def make_estimator(entry, params, *, epochs=None, validation=None, scoring=None):
    """``entry``'s estimator from ``params``, wrapped in :class:`ChunkedFit` under that policy.

    ``epochs`` replaces the policy's ``max_epochs`` (the test fit of a chosen epoch count).
    """
    estimator = CATALOGUE[entry.model].make(**params)
    if not isinstance(entry.epochs, Chunks):
        return estimator
    return ChunkedFit(estimator, chunk=entry.epochs.chunk, max_epochs=epochs or entry.epochs.max_epochs,
                      patience=entry.epochs.patience, validation=validation, scoring=scoring,
                      verbose=int(validation is not None))


def _innermost(estimator):
    while isinstance(estimator, ChunkedFit):
        estimator = estimator.estimator_
    return estimator


# ----------------------------------------------------------------------------- running
def _fold_tune(protocol, split, fold, part, per_fold):
    """The tuning triple of test fold ``fold``: the split's, or (P1, per fold) 10 % of its ratings."""
    if not per_fold or protocol != "P1" or fold == 0:
        return split.tune
    fit, held = train_test_split_interactions(part[0], 0.1, random_state=0)
    return fit, fit, held


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def run_entry(study, entry, protocol, split, *, device="auto", random_state=0, log=print):
    """Search ``entry`` on the validation data, fit the choice on each test fold, score it once.

    Returns
    -------
    dict
        One record: the test metrics (means over the folds, ``per_fold`` with several), the
        choice (``chosen``, ``validation``, ``grid_scores``; lists with per-fold tuning),
        ``n_iter``, the seconds of the search (``tune_s``), the fits and the scoring, the
        peak memory, the device and the test fit's parameters.
    """
    spec = CATALOGUE[entry.model]
    record = dict(study=study.name, dataset=study.dataset, protocol=protocol, model=entry.label,
                  estimator=entry.model, family=spec.family, select=SELECT[protocol])
    if spec.needs and not peers.available(spec.needs):
        return dict(record, status=f"missing: pip install -e \".[bench]\" ({spec.needs})")
    scorer = get_scorer(SELECT[protocol])
    scores, choices, fit_s, eval_s, tune_s, found = [], [], 0.0, 0.0, 0.0, None
    with PeakMemory() as mem:
        for fold, (label, *part) in enumerate(split.tests):
            fit, hist, held = model_inputs(entry.model, part, split.order)
            point, extra = {}, {}
            if entry.grid is not None:
                if found is None or (study.tune_per_fold and protocol == "P1"):
                    t_fit, t_hist, t_held = model_inputs(entry.model, _fold_tune(protocol, split, fold, part,
                                                                                study.tune_per_fold), split.order)
                    points = candidates(entry)
                    found = search([make_estimator(entry, constructor_params(entry, p, t_fit, device=device,
                                                                             random_state=random_state),
                                                   validation=(t_hist, t_held), scoring=scorer) for p in points],
                                   t_fit, t_hist, t_held, same_users=split.same_users, scoring=scorer)
                    found.points = points
                    tune_s += found.seconds
                    for p, s in zip(points, found.scores):
                        log(f"  {protocol} {entry.label} {p}: validation {SELECT[protocol]} {s:.4f}")
                i = found.index
                point = found.points[i]
                if entry.epochs == "refit_best_iteration" and found.best_iteration[i]:
                    extra = dict(max_iter=found.best_iteration[i], early_stopping=False)
                choices.append(dict(fold=label, chosen={**point, **extra}, validation=found.scores[i],
                                    epochs=found.n_iter[i],
                                    grid_scores=[dict(params=p, score=s) for p, s in zip(found.points, found.scores)]))
            params = constructor_params(entry, {**point, **extra}, fit, device=device, random_state=random_state)
            est = make_estimator(entry, params, epochs=found.n_iter[found.index] if found else None)
            seconds = {}
            with timed(seconds, "fit"):
                est.fit(fit)
            model = _innermost(est)
            with timed(seconds, "eval"):
                scores.append(evaluate(model, hist, held, METRICS[protocol]))
            fit_s += seconds["fit"]
            eval_s += seconds["eval"]
    best_score = getattr(model, "best_score_", None)
    if entry.adapt:  # what the adapter made of the (last) chosen point
        given = {**entry.params, **point, **extra}
        made = ADAPTERS[entry.adapt](dict(given), fit, entry.max_epochs)
        record["adapted"] = {k: v for k, v in made.items() if k not in given or given[k] != v}
    record.update(status="ok", n_folds=len(split.tests), fit_s=fit_s, predict_s=eval_s, tune_s=tune_s,
                  n_searched=len(found.points) if found else 0, peak_rss_mib=mem.rss_mib, peak_rss_scope=mem.how,
                  cuda_peak_mib=mem.cuda_mib, device=str(getattr(model, "device_", "cpu")),
                  n_iter=getattr(model, "n_iter_", None), best_iteration=getattr(model, "best_iteration_", None),
                  own_validation=None if best_score is None else float(best_score),
                  params={k: v for k, v in model.get_params(deep=False).items() if not callable(v)})
    if choices:
        per_fold_choice = study.tune_per_fold and len(choices) > 1
        keep = choices if per_fold_choice else choices[0]
        record.update(chosen=[c["chosen"] for c in choices] if per_fold_choice else keep["chosen"],
                      validation=[c["validation"] for c in choices] if per_fold_choice else keep["validation"],
                      grid_scores=[c["grid_scores"] for c in choices] if per_fold_choice else keep["grid_scores"])
        if isinstance(entry.epochs, Chunks):  # the epochs are the chunks' choice, not the model's own
            record.update(chosen_epochs=choices[0]["epochs"], best_iteration=None)
    for metric in METRICS[protocol]:
        record[metric] = float(np.mean([s[metric] for s in scores]))
    record["n_rows_evaluated"] = int(sum(s.get("n_rows_evaluated", 0) for s in scores))
    if len(scores) > 1:
        record["per_fold"] = {m: [float(s[m]) for s in scores] for m in METRICS[protocol]}
        record["folds"] = [t[0] for t in split.tests]
    return {k: _plain(v) for k, v in record.items()}


def run_study(study, *, device="auto", data_home=None, folds=None, random_state=0, log=print):
    """Every (protocol, entry) pair of ``study``; returns the records.

    An error in one entry is recorded (``status="error: ..."``) and the study goes on.
    """
    records = []
    splits = load_splits(study.dataset, study.protocols, data_home, folds)  # missing data: before any fit
    for protocol in study.protocols:
        split = splits[protocol]
        for entry in study.entries:
            if protocol not in entry.protocols:
                continue
            log(f"{study.name} {protocol} {entry.label}: {entry.model}")
            try:
                rec = run_entry(study, entry, protocol, split, device=device, random_state=random_state, log=log)
            except Exception as exc:  # recorded in the table, and the study goes on
                rec = dict(study=study.name, dataset=study.dataset, protocol=protocol, model=entry.label,
                           estimator=entry.model, family=CATALOGUE[entry.model].family,
                           status=f"error: {type(exc).__name__}: {exc}")
            records.append(rec)
            shown = ", ".join(f"{m} {rec[m]:.4f}" for m in METRICS[protocol] if m in rec)
            log(f"{protocol} {entry.label} test: {shown or rec['status']}"
                + (f" (chosen {rec['chosen']})" if "chosen" in rec else ""))
    return records


# ----------------------------------------------------------------------------- command line
def _value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a string


def _overrides(pairs, parser):
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            parser.error(f"--set: expected KEY=VALUE, got {pair!r}")
        out[key.strip()] = _value(value.strip())
    return out


def listing():
    """One line per study: its name, dataset and protocols, entries and what it replaces."""
    lines = []
    for name in STUDIES:
        s = resolve(name)
        lines.append(f"{name}: {s.about}")
        lines.append(f"    {s.dataset} {','.join(s.protocols)}; entries: {', '.join(e.label for e in s.entries)}"
                     + (f"; replaces `{s.was}`" if s.was else ""))
    return "\n".join(lines)


def main(argv=None):
    """``python -m benchmarks study``: list the studies or run one; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks study", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one per-model study of benchmarks.params.STUDIES: search each entry's grid on the "
                    "validation data (GridSearchCV), fit the choice on the test split once, and write "
                    "results.md and results.json.",
        epilog="Examples:\n  python -m benchmarks study --list\n"
               "  python -m benchmarks study synthetic-smoke --device cpu\n"
               "  python -m benchmarks study sequence-ml1m --max-epochs 85 --set dropout=0.4\n"
               "  python -m benchmarks study autoencoder-ml1m --entries Mult-DAE --max-epochs 30\n"
               "  python -m benchmarks study bpr-ml1m --set 'n_factors=[64,128]'")
    parser.add_argument("name", nargs="?", help="a study (see --list)")
    parser.add_argument("--list", action="store_true", help="list the studies and exit")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--out", default=None, help="default: benchmark-output/study-NAME-<device>")
    parser.add_argument("--entries", default=None, help="comma-separated entry labels to run (default: all)")
    parser.add_argument("--protocols", default=None, help="comma-separated subset of the study's protocols")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides",
                        help="constructor argument of every entry that takes it (Python literal; a list "
                             "is a grid axis); repeatable")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="epoch budget of the entries that have one (max_iter, or the chunked policy's)")
    parser.add_argument("--folds", default=None, help="ML-100k P1 folds (default u1,...,u5)")
    args = parser.parse_args(argv)
    if args.list:
        print(listing())
        return 0
    if not args.name:
        parser.error("a study name is needed (or --list)")
    try:
        study = resolve(args.name, entries=[t.strip() for t in args.entries.split(",")] if args.entries else None,
                        protocols=[t.strip() for t in args.protocols.split(",")] if args.protocols else None,
                        overrides=_overrides(args.overrides, parser), max_epochs=args.max_epochs)
    except ValueError as exc:
        parser.error(str(exc))
    folds = [t.strip() for t in args.folds.split(",")] if args.folds else None
    try:
        records = run_study(study, device=args.device, data_home=args.data_home, folds=folds,
                            log=lambda m: print(m, flush=True))
    except DataUnavailable as exc:
        print(f"python -m benchmarks study: {exc}", file=sys.stderr)
        return 2
    info = environment_info(args.device)
    device = next((r["device"] for r in records if "device" in r), str(info["device_type"])).split(":")[0]
    out = Path(args.out or f"benchmark-output/study-{study.name}-{device}")
    command = "python -m benchmarks study " + shlex.join(argv)
    report.write_study(records, out, info, command, study)
    print()
    print(report.study_markdown(records, info, command, study))
    print(f"\nwritten to {out}/: results.md, results.json")
    return 1 if any(r.get("status", "").startswith("error") for r in records) else 0
