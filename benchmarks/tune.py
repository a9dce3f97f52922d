"""``python -m benchmarks tune``: the searches behind :data:`benchmarks.params.PARAMS`.

Each model's grid (``GRIDS[protocol][name]``) is searched with scikit-learn's
``GridSearchCV`` on the protocol's validation data only, with one predefined split:

- P2 (unseen users): the search's training rows are the training users' whole rows and its
  test rows the validation users' 80 % histories, scored against their 20 %;
- P1, P3, P4 (the same users): the rows are fitted on their training part and scored
  against their validation part (P1: 10 % of the first fold's training ratings; P3: each
  user's second-to-last item; P4: 20 % of each user's training part).

The test targets are never seen. The result is printed as a ``PARAMS`` block to paste into
:mod:`benchmarks.params`, with every grid point's validation score. :func:`search` is the
one search, shared with ``python -m benchmarks study`` (:mod:`benchmarks.studies`).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import GridSearchCV, ParameterGrid
from sklearn.utils import Bunch

from skrec.metrics import get_scorer

from benchmarks import peers
from benchmarks.params import GRIDS
from benchmarks.suite import CATALOGUE, SELECT, build, load_splits, model_inputs

__all__ = ["FitOnHistory", "search", "search_space", "tune"]


class FitOnHistory(BaseEstimator):
    """Fit ``estimator`` on ``X`` alone (never on ``y``), and serve its ``recommend``/``predict_at``.

    skrec's estimators train on ``X + y`` when given both, which is right when the search's
    training rows are whole users (P2) but would leak the validation targets when the
    scored rows are the fitted rows (P1, P3, P4).
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y=None):
        self.estimator_ = clone(self.estimator).fit(X)
        return self

    def recommend(self, X, k=10, *, exclude_seen=True):
        return self.estimator_.recommend(X, k=k, exclude_seen=exclude_seen)

    def predict_at(self, X, y):
        return self.estimator_.predict_at(X, y)


def search_space(fit, hist, held, same_users):
    """``(X, y, cv)`` for ``GridSearchCV``: one predefined (train rows, test rows) split."""
    if same_users:
        rows = np.arange(hist.shape[0])
        return hist, held, [(rows, rows)]
    X = sp.vstack([fit, hist], format="csr")
    y = sp.vstack([sp.csr_matrix(fit.shape), held], format="csr")
    return X, y, [(np.arange(fit.shape[0]), np.arange(fit.shape[0], X.shape[0]))]


class _Fitted:
    """A "scorer" that reads a fitted attribute (``n_iter_``, ``best_iteration_``) of the model
    inside the wrappers (``0.0`` when it is unset), so ``GridSearchCV`` reports it per candidate."""

    def __init__(self, attribute):
        self.attribute = attribute

    def __call__(self, estimator, X, y=None):
        while hasattr(estimator, "estimator_"):
            estimator = estimator.estimator_
        value = getattr(estimator, self.attribute, None)
        return float(value) if value is not None else 0.0


def search(candidates, fit, hist, held, *, same_users, scoring):
    """Score each estimator of ``candidates`` on one validation split with ``GridSearchCV``.

    Parameters
    ----------
    candidates : list of estimators
        Unfitted; each is fitted on ``fit`` alone (wrapped in :class:`FitOnHistory`).
    fit, hist, held : sparse matrices
        The protocol's tuning triple: training rows, the histories scored and their
        validation targets (``protocol_split(...).tune``).
    same_users : bool
        Whether ``hist`` are the rows of ``fit`` (P1, P3, P4) or other users folded in (P2).
    scoring : callable
        ``scorer(estimator, X, y)``, higher is better.

    Returns
    -------
    Bunch
        ``index`` (of the best candidate; the first of equal scores), ``scores`` (one per
        candidate), ``n_iter`` and ``best_iteration`` (the fitted models' ``n_iter_`` and
        ``best_iteration_``, ``None`` where unset) and ``seconds`` (the search's wall time).
    """
    candidates = list(candidates)
    X, y, cv = search_space(fit, hist, held, same_users)
    grid = GridSearchCV(FitOnHistory(candidates[0]), {"estimator": candidates}, cv=cv, refit=False, n_jobs=1,
                        scoring={"score": scoring, "n_iter": _Fitted("n_iter_"),
                                 "best_iteration": _Fitted("best_iteration_")}, error_score="raise")
    t0 = time.perf_counter()
    grid.fit(X, y)
    results = grid.cv_results_
    scores = [float(v) for v in results["mean_test_score"]]
    index = int(np.argmax(scores))

    def read(key):
        return [int(v) or None for v in results[f"mean_test_{key}"]]

    return Bunch(index=index, scores=scores, n_iter=read("n_iter"), best_iteration=read("best_iteration"),
                 seconds=time.perf_counter() - t0)


def tune(dataset, protocol, models=None, *, device="auto", data_home=None, log=print):
    """Search ``GRIDS[protocol]`` on ``dataset``'s validation data, model by model.

    Returns
    -------
    dict
        ``{model: (best_params, best_score, per_point)}``, ``per_point`` being the list of
        ``(params, score)`` of every grid point.
    """
    split = load_splits(dataset, [protocol], data_home)[protocol]
    scorer = get_scorer(SELECT[protocol])
    out = {}
    for name, grid in GRIDS[protocol].items():
        if models and name not in models:
            continue
        if CATALOGUE[name].needs and not peers.available(CATALOGUE[name].needs):
            log(f"{name}: skipped ({CATALOGUE[name].needs} is not installed)")
            continue
        fit, hist, held = model_inputs(name, split.tune, split.order)
        base = build(name, dataset, protocol, device=device)
        points = list(ParameterGrid(grid))
        found = search([clone(base).set_params(**p) for p in points], fit, hist, held,
                       same_users=split.same_users, scoring=scorer)
        for params, score in zip(points, found.scores):
            log(f"  {protocol} {name} {params}: {SELECT[protocol]} {score:.4f}")
        best = points[found.index]
        log(f"{protocol} {name}: best {best} ({SELECT[protocol]} {found.scores[found.index]:.4f}, "
            f"{found.seconds:.0f} s)")
        out[name] = (best, found.scores[found.index], list(zip(points, found.scores)))
    return out
