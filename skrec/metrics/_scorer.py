"""Scorers ``scorer(estimator, X, y) -> float`` (higher is better) for ``GridSearchCV``.

Plain picklable classes (no closures), so ``GridSearchCV(n_jobs=...)`` can ship them to
worker processes.
"""

from __future__ import annotations

from skrec.model_selection._heldout import unwrap_heldout
from skrec.utils.validation import check_param, raise_invalid
from ._names import canonical_ranking_name, expected_metric_names, parse_metric_name
from ._ranking import (
    average_precision_at_k,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from ._regression import mae, rmse

__all__ = ["RankingScorer", "RegressionScorer", "get_scorer", "make_scorers"]

_RANKING_FUNCS = {
    "recall": recall_at_k,
    "precision": precision_at_k,
    "ndcg": ndcg_at_k,
    "ap": average_precision_at_k,
    "hit_rate": hit_rate_at_k,
    "mrr": mrr_at_k,
}
_REGRESSION_FUNCS = {"rmse": rmse, "mae": mae}
_NEG_REGRESSION = {"neg_rmse": "rmse", "neg_mae": "mae"}
_VALID_SCORING = (expected_metric_names(tuple(_NEG_REGRESSION))
                  + ", or a callable scorer(estimator, X, y)")


def _final_step(estimator, X):
    """The recommender at the end of ``estimator`` and ``X`` as it reaches it.

    A :class:`~sklearn.pipeline.Pipeline` has no ``recommend``/``predict_at``: its
    transformers are applied to ``X`` and the last step is scored.
    """
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        return estimator[-1], (estimator[:-1].transform(X) if len(estimator) > 1 else X)
    return estimator, X


def _require_y(y):
    if y is None:
        raise_invalid("y", "a sparse matrix of held-out interactions of the rows of X "
                      "(a scorer needs targets to compare against)", y)


class RankingScorer:
    """Score an estimator by a top-k ranking metric of its recommendations.

    Calls ``ids, _ = estimator.recommend(X, k=k)`` (the user's history items are excluded
    by default) and compares the ids with the held-out interactions ``y``.

    Parameters
    ----------
    metric : str, default="ndcg"
        One of ``"recall"``, ``"precision"``, ``"ndcg"``, ``"ap"`` (alias
        ``"average_precision"``), ``"hit_rate"``, ``"mrr"``; case-insensitive, surrounding
        whitespace ignored. Stored as given.
    k : int, default=10
        Length of the recommendation list.

    Notes
    -----
    The value is the mean over the rows of ``y`` that hold at least one interaction; see
    :func:`~skrec.metrics.ranking_metrics` for the formulas. Higher is better, as
    ``GridSearchCV`` expects.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> class Fixed:
    ...     def recommend(self, X, k=10):
    ...         ids = np.tile(np.arange(k), (X.shape[0], 1))
    ...         return ids, np.zeros(ids.shape)
    >>> scorer = RankingScorer("hit_rate", k=2)
    >>> scorer
    RankingScorer(metric='hit_rate', k=2)
    >>> X = sp.csr_matrix((2, 4))
    >>> y = sp.csr_matrix(np.array([[0, 1.0, 0, 0], [0, 0, 0, 1.0]]))
    >>> scorer(Fixed(), X, y)  # row 0 hits item 1, row 1 misses
    0.5
    """

    def __init__(self, metric="ndcg", k=10):
        canonical_ranking_name(metric, arg="metric")
        self.metric = metric
        self.k = check_param("k", k, "int", low=1)

    def __call__(self, estimator, X, y=None):
        """Return the metric of ``estimator.recommend(X, k=k)`` against ``y``.

        Parameters
        ----------
        estimator : object
            A fitted recommender with a ``recommend(X, k=...)`` method.
        X : sparse matrix of shape (n_rows, n_items)
            Histories of the rows to score.
        y : sparse matrix of shape (n_rows, n_items) or :class:`~skrec.model_selection.HeldOut`
            Held-out interactions of the same rows.

        Returns
        -------
        float
        """
        _require_y(y)
        estimator, X = _final_step(estimator, X)
        y = unwrap_heldout(y, X)
        ids, _ = estimator.recommend(X, k=self.k)
        func = _RANKING_FUNCS[canonical_ranking_name(self.metric, arg="metric")]
        return func(y, ids, k=self.k)

    def __repr__(self):
        return f"{type(self).__name__}(metric={self.metric!r}, k={self.k!r})"


class RegressionScorer:
    """Score an estimator by minus a rating-prediction error at the positions of ``y``.

    Calls ``estimator.predict_at(X, y)`` (a CSR with ``y``'s sparsity pattern holding the
    predictions) and returns ``-metric(y, predictions)``.

    Parameters
    ----------
    metric : {"rmse", "mae"}, default="rmse"
        The error to negate.

    Notes
    -----
    Negated so that higher is better, as ``GridSearchCV`` expects (sklearn's
    ``neg_root_mean_squared_error`` convention).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> class Constant:
    ...     def predict_at(self, X, y):
    ...         out = sp.csr_matrix(y, dtype=float, copy=True)
    ...         out.data[:] = 3.0
    ...         return out
    >>> y = sp.csr_matrix(np.array([[4.0, 0], [0, 1.0]]))
    >>> RegressionScorer("mae")(Constant(), sp.csr_matrix((2, 2)), y)  # -(1 + 2) / 2
    -1.5
    """

    def __init__(self, metric="rmse"):
        self.metric = check_param("metric", metric, "str", options=tuple(_REGRESSION_FUNCS))

    def __call__(self, estimator, X, y=None):
        """Return ``-metric(y, estimator.predict_at(X, y))``.

        Parameters
        ----------
        estimator : object
            A fitted regressor with a ``predict_at(X, y)`` method.
        X : sparse matrix of shape (n_rows, n_items)
            Histories of the rows to score.
        y : sparse matrix of shape (n_rows, n_items) or :class:`~skrec.model_selection.HeldOut`
            True ratings at the positions to evaluate.

        Returns
        -------
        float
        """
        _require_y(y)
        estimator, X = _final_step(estimator, X)
        y = unwrap_heldout(y, X)
        return -_REGRESSION_FUNCS[self.metric](y, estimator.predict_at(X, y))

    def __repr__(self):
        return f"{type(self).__name__}(metric={self.metric!r})"


def _from_string(name, argname):
    metric, k = parse_metric_name(name, arg=argname, extra=tuple(_NEG_REGRESSION),
                                  expected=_VALID_SCORING, canonical=False)
    if k is None:
        return RegressionScorer(_NEG_REGRESSION[metric])
    return RankingScorer(metric, k)


def get_scorer(scoring):
    """Return a scorer from its name, or a callable unchanged.

    Parameters
    ----------
    scoring : str or callable
        ``"<name>@<k>"`` with ``<name>`` one of ``recall``, ``precision``, ``ndcg``, ``ap``,
        ``average_precision``, ``hit_rate``, ``mrr`` (e.g. ``"ndcg@10"``), or ``"neg_rmse"``,
        ``"neg_mae"``; case-insensitive, whitespace around the name and the ``@``
        ignored. A callable ``scorer(estimator, X, y)`` is returned as is.

    Returns
    -------
    callable
        A :class:`RankingScorer`, a :class:`RegressionScorer` or ``scoring`` itself.

    Notes
    -----
    Every scorer returns a float where higher is better.

    Examples
    --------
    >>> get_scorer("recall@20")
    RankingScorer(metric='recall', k=20)
    >>> get_scorer(" NDCG@10 ")
    RankingScorer(metric='ndcg', k=10)
    >>> get_scorer("neg_rmse")
    RegressionScorer(metric='rmse')
    """
    if callable(scoring):
        return scoring
    if not isinstance(scoring, str):
        raise_invalid("scoring", _VALID_SCORING, scoring, TypeError)
    return _from_string(scoring, "scoring")


def make_scorers(names):
    """Map each scorer name to its scorer, for multi-metric ``GridSearchCV``.

    Parameters
    ----------
    names : str or sequence of str
        Scorer names accepted by :func:`get_scorer`.

    Returns
    -------
    dict
        ``{name: scorer}``, in the given order.

    Notes
    -----
    Use as ``GridSearchCV(est, grid, scoring=make_scorers(["ndcg@10", "recall@20"]),
    refit="ndcg@10")``.

    Examples
    --------
    >>> make_scorers(["ndcg@10", "neg_mae"])
    {'ndcg@10': RankingScorer(metric='ndcg', k=10), 'neg_mae': RegressionScorer(metric='mae')}
    """
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise_invalid("names", "a non-empty list of scorer names (str)", names, TypeError)
    if not names:
        raise_invalid("names", "a non-empty list of scorer names (str)", names)
    return {name: _from_string(name, "names") for name in names}
