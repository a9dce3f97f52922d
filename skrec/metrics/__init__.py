"""Evaluation metrics and ``GridSearchCV`` scorers.

Ranking metrics use binary relevance and the Mult-VAE definitions (recall and AP normalised
by ``min(k, |relevant|)``, NDCG with a log2 discount and the ideal DCG over
``min(k, |relevant|)`` hits); rows without a held-out item are skipped. Rating errors are
evaluated at the stored positions of a sparse target.
"""

from ._ranking import (
    average_precision_at_k,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)
from ._regression import mae, rmse
from ._scorer import RankingScorer, RegressionScorer, get_scorer, make_scorers

__all__ = [
    "RankingScorer",
    "RegressionScorer",
    "average_precision_at_k",
    "get_scorer",
    "hit_rate_at_k",
    "mae",
    "make_scorers",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "rmse",
]
