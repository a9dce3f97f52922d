"""``python -m benchmarks tune``: the searches behind :data:`benchmarks.params.PARAMS`.

Each model's grid (``GRIDS[protocol][name]``) is searched with scikit-learn's
``GridSearchCV`` on the protocol's validation data only, with one predefined split:

- P2 (unseen users): the search's training rows are the training users' whole rows and its
  test rows the validation users' 80 % histories, scored against their 20 %;
- P1, P3, P4 (the same users): the rows are fitted on their training part and scored
  against their validation part (P1: 10 % of the first fold's training ratings; P3: each
  user's second-to-last item; P4: 20 % of each user's training part).

The test targets are never seen. The result is printed as a ``PARAMS`` block to paste into
:mod:`benchmarks.params`, with every grid point's validation score.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import GridSearchCV

from skrec.metrics import get_scorer

from benchmarks import peers
from benchmarks.params import GRIDS
from benchmarks.suite import CATALOGUE, SELECT, build, model_inputs, protocol_split

__all__ = ["FitOnHistory", "search_space", "tune"]


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


def _unwrapped(params):
    """Grid parameters without the ``FitOnHistory`` prefix (and its placeholder key)."""
    return {k.removeprefix("estimator__"): v for k, v in params.items() if k != "estimator"}


def search_space(fit, hist, held, same_users):
    """``(X, y, cv)`` for ``GridSearchCV``: one predefined (train rows, test rows) split."""
    if same_users:
        rows = np.arange(hist.shape[0])
        return hist, held, [(rows, rows)]
    X = sp.vstack([fit, hist], format="csr")
    y = sp.vstack([sp.csr_matrix(fit.shape), held], format="csr")
    return X, y, [(np.arange(fit.shape[0]), np.arange(fit.shape[0], X.shape[0]))]


def tune(dataset, protocol, models=None, *, device="auto", data_home=None, log=print):
    """Run the searches; returns ``{model: (best_params, best_score, cv_results_)}``."""
    split = protocol_split(dataset, protocol, data_home)
    scorer = get_scorer(SELECT[protocol])
    out = {}
    for name, grid in GRIDS[protocol].items():
        if models and name not in models:
            continue
        if CATALOGUE[name].needs and not peers.available(CATALOGUE[name].needs):
            log(f"{name}: skipped ({CATALOGUE[name].needs} is not installed)")
            continue
        fit, hist, held = model_inputs(name, split.tune, split.order)
        X, y, cv = search_space(fit, hist, held, split.same_users)
        base = FitOnHistory(build(name, dataset, protocol, device=device))
        search = GridSearchCV(base, {f"estimator__{k}": v for k, v in grid.items()} or {"estimator": [base.estimator]},
                              scoring=scorer, cv=cv, refit=False, n_jobs=1, error_score="raise")
        t0 = time.perf_counter()
        search.fit(X, y)
        best = _unwrapped(search.best_params_)
        for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
            log(f"  {protocol} {name} {_unwrapped(params)}: {SELECT[protocol]} {score:.4f}")
        log(f"{protocol} {name}: best {best} ({SELECT[protocol]} {search.best_score_:.4f}, "
            f"{time.perf_counter() - t0:.0f} s)")
        out[name] = (best, float(search.best_score_), search.cv_results_)
    return out
