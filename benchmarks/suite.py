"""The quality suite: every skrec estimator beside the references, per protocol of DESIGN.md §4.

``python -m benchmarks`` runs it on MovieLens-100k; see :mod:`benchmarks.__main__` for the
flags. The pieces, usable on their own:

- :data:`CATALOGUE` — each model's name, protocols, optional dependency and constructor;
- :func:`protocol_split` — a dataset under a protocol: the tuning triple (fit, history,
  held-out) and the test triples (one per fold);
- :func:`run` — fit, score and time every (protocol, model) pair, returning one record each;
- :mod:`benchmarks.report` turns the records into tables, files and plots.

The hyper-parameters come from :mod:`benchmarks.params` (chosen on validation data by
``python -m benchmarks tune``); the test targets are only ever scored once per model.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import Bunch
from tqdm.auto import tqdm

from skrec import EASE, ALSRanker, AutoencoderRecommender, BaselineBiases, BPRRanker, ItemKNN, MFRegressor, SequenceTransformer
from skrec.datasets import load_movielens, make_interactions
from skrec.model_selection import evaluate, time_split, train_test_split_interactions
from sklearn.model_selection import KFold

from benchmarks import peers
from benchmarks._common import (default_data_home, load_beauty_order, load_ml1m_order, p2_split, p3_split,
                               p4_split, positives_with_time, timed)
from benchmarks.params import FIXED, PARAMS

__all__ = ["CATALOGUE", "DATASETS", "DEFAULT_PROTOCOLS", "TIME_CUT", "DataUnavailable", "load_splits", "METRICS", "combine_seeds", "seeded", "SELECT", "Spec", "protocol_split", "build", "run", "skrec_runtime"]

METRICS = {
    "P1": ("rmse", "mae"),
    "P2": ("recall@20", "recall@50", "ndcg@100"),
    "P3": ("hit_rate@10", "ndcg@10"),
    "P4": ("recall@20", "ndcg@20"),
    "P5": ("recall@20", "ndcg@20"),
}
SELECT = {"P1": "neg_rmse", "P2": "ndcg@100", "P3": "ndcg@10", "P4": "ndcg@20", "P5": "ndcg@20"}  # tuning target
DATASETS = {  # the protocols each dataset supports
    "latest-small": ("P1", "P2", "P3", "P4", "P5"),  # shipped with skrec: the offline default
    "ml100k": ("P1", "P2", "P3", "P4", "P5"),
    "ml1m": ("P2", "P3", "P4", "P5"),  # ratings 1-3 are partly missing here: no P1 on ML-1M
    "beauty": ("P3",),
    "synthetic": ("P1", "P2", "P3", "P4"),
}


@dataclass(frozen=True)
class Spec:
    """One row of the suite: who made it, where it runs, what it needs and how to build it."""

    family: str  # "skrec" (a torch estimator: takes device and random_state) or "reference"
    protocols: tuple
    make: object  # callable(**params) -> estimator
    needs: str | None = None  # optional package
    order_input: bool = False  # fitted on order keys (timestamps) rather than binary rows


# P5, the global time split, runs when asked for (--protocols P5): not in the default run.
DEFAULT_PROTOCOLS = ("P1", "P2", "P3", "P4")
TIME_CUT = 0.8  # P5: the interactions after the 80th percentile of the timestamps are held out
_RANKING = ("P2", "P3", "P4", "P5")
CATALOGUE = {
    "BaselineBiases": Spec("skrec", ("P1",), BaselineBiases),
    "MFRegressor": Spec("skrec", ("P1",), MFRegressor),
    "BPRRanker": Spec("skrec", _RANKING, BPRRanker),
    "ALSRanker": Spec("skrec", _RANKING, ALSRanker),
    "AutoencoderRecommender (Mult-DAE)": Spec("skrec", _RANKING, AutoencoderRecommender),
    "EASE (EDLAE+DAN)": Spec("skrec", _RANKING, EASE),
    "SequenceTransformer": Spec("skrec", ("P3", "P5"), SequenceTransformer, order_input=True),
    "ItemKNN": Spec("skrec", _RANKING, ItemKNN),
    "Popularity": Spec("reference", _RANKING, peers.Popularity),
    "EASE": Spec("reference", _RANKING, peers.EASE),
    "implicit ALS": Spec("reference", _RANKING, peers.ImplicitALS, needs="implicit"),
    "implicit BPR": Spec("reference", _RANKING, peers.ImplicitBPR, needs="implicit"),
    "implicit Cosine": Spec("reference", _RANKING, lambda **p: peers.ImplicitItemKNN("cosine", **p),
                            needs="implicit"),
    "implicit BM25": Spec("reference", _RANKING, lambda **p: peers.ImplicitItemKNN("bm25", **p), needs="implicit"),
    "Surprise BaselineOnly": Spec("reference", ("P1",), lambda **p: peers.SurpriseRating("BaselineOnly", **p),
                                  needs="surprise"),
    "Surprise SVD": Spec("reference", ("P1",), lambda **p: peers.SurpriseRating("SVD", **p), needs="surprise"),
    "Surprise SVD++": Spec("reference", ("P1",), lambda **p: peers.SurpriseRating("SVDpp", **p),
                           needs="surprise"),
}


def skrec_runtime(name, device, random_state):
    """``device`` (and ``random_state`` where the estimator draws anything) for a skrec row."""
    make = CATALOGUE[name].make
    accepted = make().get_params()
    return {k: v for k, v in (("device", device), ("random_state", random_state)) if k in accepted}


def build(name, dataset, protocol, *, device="auto", random_state=0, params=None, defaults=False):
    """The configured estimator ``name`` for ``dataset``/``protocol`` (``params`` override);
    ``defaults=True``: the constructor's defaults instead of the suite's configuration."""
    spec = CATALOGUE[name]
    kwargs = {} if defaults else dict(FIXED.get(name, {}))
    if not defaults:
        kwargs.update(PARAMS.get(dataset, {}).get(protocol, {}).get(name, {}))
    kwargs.update(params or {})
    if spec.family == "skrec":
        kwargs.update(skrec_runtime(name, device, random_state))
    if name == "implicit BPR":
        kwargs["same_users"] = protocol != "P2"
    est = spec.make(**kwargs)
    if spec.family == "reference" and "random_state" in est.get_params():
        est.set_params(random_state=random_state)  # a randomised peer draws from the same seed
    return est


def _binary(X):
    X = sp.csr_matrix(X, copy=True)
    X.data[:] = 1.0
    return X


def _p3_order(ratings, timestamps, min_user=5):
    """Order keys of the ratings >= 4, users with >= ``min_user`` of them (P3 data)."""
    keep = sp.csr_matrix(timestamps.multiply(ratings >= 4))
    keep.eliminate_zeros()
    return keep[np.flatnonzero(np.diff(keep.indptr) >= min_user)]


def _synthetic(kind):
    if kind == "P1":
        return make_interactions(1500, 800, kind="explicit", n_clusters=8, density=0.05, noise=0.5,
                                 random_state=0).X
    if kind == "P3":
        return make_interactions(1500, 600, kind="sequence", n_clusters=8, density=0.03, noise=0.2,
                                 random_state=0).X
    return make_interactions(2000, 1000, n_clusters=8, density=0.03, noise=0.3, random_state=0).X


def _latest_small():
    """The bundled MovieLens latest-small: ``(ratings, order)`` where ``order`` holds the
    timestamps of the ratings >= 4 of users with >= 5 of them, over the movies with at least
    one (the P2-P4 data, as the ML-1M files hold only rated movies)."""
    ml = load_movielens("latest-small")
    return ml.ratings, positives_with_time(ml.ratings, ml.timestamps, min_user=5).timestamps


def _kfold_ratings(X, n_splits=5, random_state=0):
    """DESIGN.md's P1 on a set without official folds: ``KFold(5, shuffle=True,
    random_state=0)`` over the ratings; ``[(label, train, test)]``."""
    X = sp.coo_matrix(X)
    out = []
    for k, (tr, te) in enumerate(KFold(n_splits, shuffle=True, random_state=random_state).split(X.data)):
        part = [sp.csr_matrix((X.data[i], (X.row[i], X.col[i])), shape=X.shape) for i in (tr, te)]
        out.append((f"k{k + 1}", *part))
    return out


def protocol_split(dataset, protocol, data_home=None, folds=None):
    """``dataset`` under ``protocol``: ``Bunch(tune, tests, same_users, order)``.

    ``tune`` is ``(fit, history, held)`` for model selection and ``tests`` a list of
    ``(label, fit, history, held)``; ``same_users`` tells whether the evaluated rows are the
    fitted rows (P1, P3, P4, P5) or unseen users folded in (P2); ``order`` whether the values
    are order keys (P3, P5: timestamps or positions) that non-sequential models see binarized.
    P5 is :func:`skrec.model_selection.time_split` at the 80th percentile of the
    timestamps: the users with a history before it are scored on what they did after it (the
    movies first seen after it left out).
    """
    if protocol not in DATASETS[dataset]:
        raise ValueError(f"protocol: {dataset} supports {DATASETS[dataset]}, got {protocol!r}")
    data_home = data_home or default_data_home()
    if dataset == "synthetic":
        X = _synthetic(protocol)
    elif dataset == "latest-small":
        ratings, X = _latest_small()
    elif dataset == "beauty":
        X = load_beauty_order(data_home).order
    elif dataset == "ml1m":
        X = load_ml1m_order(data_home).order  # timestamps of the ratings >= 4, users with >= 5
    else:
        ml = load_movielens("100k", data_home=data_home)
        X = _p3_order(ml.ratings, ml.timestamps)
    if protocol in ("P2", "P4") and dataset != "synthetic":
        X = _binary(X)
    if protocol == "P1":
        if dataset == "ml100k":
            folds = folds or ("u1", "u2", "u3", "u4", "u5")
            data = [load_movielens("100k", data_home=data_home, fold=f) for f in folds]
            tests = [(f, d.train, d.train, d.test) for f, d in zip(folds, data)]
        elif dataset == "latest-small":
            chosen = _kfold_ratings(ratings)
            if folds:
                labels = [label for label, *_ in chosen]
                unknown = sorted(set(folds) - set(labels))
                if unknown:
                    raise ValueError(f"folds: expected names from {labels}, got {unknown}")
            folds = folds or ("k1",)  # one fold keeps the default run within 5 minutes on 2 cores
            tests = [(label, train, train, test) for label, train, test in chosen if label in folds]
        else:
            train, test = train_test_split_interactions(X, 0.2, random_state=0)
            tests = [("80/20", train, train, test)]
        fit, held = train_test_split_interactions(tests[0][1], 0.1, random_state=0)
        return Bunch(tune=(fit, fit, held), tests=tests, same_users=True, order=False)
    if protocol == "P2":
        s = p2_split(X)
        return Bunch(tune=(s.train, s.val_hist, s.val_held), tests=[("test users", s.train, s.test_hist, s.test_held)],
                     same_users=False, order=False)
    if protocol == "P5":
        hist, held = time_split(X, X, quantile=TIME_CUT)  # order keys on both sides, as in P3
        fit, val_held = time_split(hist, hist, quantile=TIME_CUT)  # tuning: the same cut inside the history
        return Bunch(tune=(fit, fit, val_held), tests=[("time 80 %", hist, hist, held)], same_users=True, order=True)
    if protocol == "P3":
        s = p3_split(X)
        return Bunch(tune=(s.train, s.val_hist, s.val_held), tests=[("last item", s.test_hist, s.test_hist, s.test_held)],
                     same_users=True, order=True)
    s = p4_split(X)
    return Bunch(tune=(s.fit, s.fit, s.val_held), tests=[("80/20", s.train, s.train, s.test_held)],
                 same_users=True, order=False)


def model_inputs(name, split_part, order):
    """The matrices as ``name`` sees them: order keys for sequence models, else binary rows."""
    if not order or CATALOGUE[name].order_input:
        return split_part
    return tuple(_binary(M) for M in split_part)


class PeakMemory:
    """Peak resident memory of this process (MiB) over a block, and CUDA's peak allocation.

    On Linux the kernel's high-water mark is reset at the start (``/proc/self/clear_refs``);
    elsewhere the figure is the process's lifetime peak (``getrusage``), noted in ``how``.
    """

    def __enter__(self):
        self.how = "block"
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.how = "process lifetime"
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc):
        self.rss_mib = None
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.rss_mib = int(line.split()[1]) / 1024
        except OSError:
            pass
        if self.rss_mib is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.rss_mib = peak / (2**20 if sys.platform == "darwin" else 1024)
            self.how = "process lifetime"
        self.cuda_mib = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        return False

    def peak_mib(self):
        """The block's CUDA peak allocation where the GPU held anything, else its resident peak."""
        return self.cuda_mib if self.cuda_mib else self.rss_mib


def run_one(name, dataset, protocol, split, *, device="auto", random_state=0, defaults=False):
    """Fit ``name`` on each test fold of ``split`` and score it: one record (a dict);
    ``defaults=True`` fits the constructor's defaults (see :func:`build`)."""
    spec = CATALOGUE[name]
    record = dict(dataset=dataset, protocol=protocol, model=name, family=spec.family)
    if spec.needs and not peers.available(spec.needs):
        return dict(record, status=f"missing: pip install -e \".[bench]\" ({spec.needs})")
    scores, fit_s, eval_s, history = [], 0.0, 0.0, None
    with PeakMemory() as mem:
        for _, *part in split.tests:
            fit, hist, held = model_inputs(name, part, split.order)
            est = build(name, dataset, protocol, device=device, random_state=random_state, defaults=defaults)
            seconds = {}
            with timed(seconds, "fit"):
                est.fit(fit)
            with timed(seconds, "eval"):
                scores.append(evaluate(est, hist, held, METRICS[protocol]))
            fit_s += seconds["fit"]
            eval_s += seconds["eval"]
            history = getattr(est, "history_", None) or history
    record.update(status="ok", n_folds=len(split.tests), fit_s=fit_s, predict_s=eval_s,
                  peak_rss_mib=mem.rss_mib, peak_rss_scope=mem.how, cuda_peak_mib=mem.cuda_mib,
                  device=str(getattr(est, "device_", "cpu")),
                  params={k: v for k, v in est.get_params(deep=False).items() if not callable(v)},
                  history=[dict(h) for h in history] if history else None,
                  n_iter=getattr(est, "n_iter_", None))
    for metric in METRICS[protocol]:
        record[metric] = float(np.mean([s[metric] for s in scores]))
    if len(scores) > 1:
        record["per_fold"] = {m: [float(s[m]) for s in scores] for m in METRICS[protocol]}
    return record


_FOLDERS = {"ml100k": "ml-100k/", "ml1m": "ml-1m/", "beauty": "s3rec/Beauty.txt"}


class DataUnavailable(OSError):
    """A data set of the suite is missing and could not be downloaded; ``str()`` is one line
    that names the fix (what :mod:`benchmarks.__main__` prints before exiting with status 2)."""


def load_splits(dataset, protocols, data_home=None, folds=None):
    """``{protocol: protocol_split(...)}``; a missing data set raises :class:`DataUnavailable`."""
    try:
        return {p: protocol_split(dataset, p, data_home, folds) for p in protocols}
    except OSError as exc:
        home = data_home or default_data_home()
        raise DataUnavailable(
            f"the {dataset} data is not under {home} and could not be fetched ({_first_clause(exc)}). "
            f"Fix: run once with internet access, or set SKREC_DATA (or pass --data-home) to a folder that "
            f"holds {_FOLDERS.get(dataset, dataset)}; `python -m benchmarks` with no --dataset runs offline on the MovieLens latest-small "
            f"copy shipped with skrec.") from exc


def _first_clause(exc):
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {str(cause).split('. ')[0]}"


def seeded(name, dataset, protocol):
    """Whether ``name`` draws random numbers (a ``random_state`` parameter): a deterministic
    model is fitted once whatever the seeds."""
    return "random_state" in build(name, dataset, protocol, device="cpu").get_params()


def combine_seeds(records, seeds):
    """One record from one record per seed: each metric's mean, its sample standard deviation
    (``<metric>_sd``) and its values (``per_seed``); fit and predict seconds per seed on average,
    the largest peak memory. A failed seed's record stands for the row."""
    failed = [r for r in records if r.get("status") != "ok"]
    if failed or len(records) == 1:
        return failed[0] if failed else records[0]
    out = dict(records[0], seeds=list(seeds), per_seed={})
    for metric in METRICS[out["protocol"]]:
        values = [r[metric] for r in records]
        out[metric], out[f"{metric}_sd"] = float(np.mean(values)), float(np.std(values, ddof=1))
        out["per_seed"][metric] = values
    for key in ("fit_s", "predict_s"):
        out[key] = float(np.mean([r[key] for r in records]))
    out["peak_rss_mib"] = max(r["peak_rss_mib"] for r in records)
    return out


def run(dataset="latest-small", protocols=None, models=None, *, device="auto", data_home=None, folds=None,
        random_state=0, seeds=None, progress=True, log=print):
    """Every (protocol, model) pair of the catalogue on ``dataset``; returns the records.

    A model whose optional package is missing gets a record with ``status="missing: ..."``;
    an error while fitting one model is recorded (``status="error: ..."``) and the run goes
    on, so one failure never hides the other rows. ``seeds`` (a sequence of ints, in place of
    ``random_state``) fits every randomised model once per seed and reports each metric's mean
    and standard deviation over them (:func:`combine_seeds`).
    """
    seeds = tuple(seeds) if seeds else (random_state,)
    protocols = protocols or [p for p in DATASETS[dataset] if p in DEFAULT_PROTOCOLS]
    names = models or list(CATALOGUE)
    unknown = sorted(set(names) - set(CATALOGUE))
    if unknown:
        raise ValueError(f"models: expected names from {sorted(CATALOGUE)}, got {unknown}")
    pairs = [(p, n) for p in protocols for n in names if p in CATALOGUE[n].protocols]
    # every split first: missing data stops the run before any fit (OSError, see load_splits)
    splits = load_splits(dataset, sorted({p for p, _ in pairs}), data_home, folds)
    records = []
    bar = tqdm(pairs, desc=f"skrec benchmarks ({dataset})", disable=not progress, file=sys.stderr)
    for protocol, name in bar:
        bar.set_postfix_str(f"{protocol} {name}")
        per_seed = []
        for i, seed in enumerate(seeds):
            try:
                rec = run_one(name, dataset, protocol, splits[protocol], device=device, random_state=seed)
            except Exception as exc:  # recorded in the table, and the run goes on
                rec = dict(dataset=dataset, protocol=protocol, model=name, family=CATALOGUE[name].family,
                           status=f"error: {type(exc).__name__}: {exc}")
            per_seed.append(rec)
            # a failed or missing model, or a deterministic one, is not run again
            if rec.get("status") != "ok" or (i == 0 and len(seeds) > 1 and not seeded(name, dataset, protocol)):
                break
        rec = combine_seeds(per_seed, seeds)
        records.append(rec)
        shown = ", ".join(f"{m} {rec[m]:.4f}" for m in METRICS[protocol] if m in rec)
        log(f"{protocol} {name}: {shown or rec['status']}"
            + (f" (fit {rec['fit_s']:.1f} s)" if "fit_s" in rec else ""))
    return records
