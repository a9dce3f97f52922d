"""skrec: scikit-learn-compatible recommender systems on PyTorch.

Estimators fit on a scipy sparse user x item matrix (a row is one user's history) and
offer ``predict``, ``recommend``, ``score`` and ``transform``; they compose with
``Pipeline``, ``clone``, ``GridSearchCV`` and ``joblib``.
"""

from .base import BaseRecommender, TorchRecommender, all_estimators
from .autoencoder import EASE, AutoencoderRecommender
from .baseline import BaselineBiases, Popularity
from .compose import ResidualRegressor
from .factorization import ALSRanker, BPRRanker, MFRegressor
from .neighbors import ItemKNN
from .sequence import SequenceTransformer
from ._persistence import load, save

__version__ = "0.1.0"

__all__ = [
    "BaseRecommender",
    "TorchRecommender",
    "BaselineBiases",
    "Popularity",
    "MFRegressor",
    "BPRRanker",
    "ALSRanker",
    "AutoencoderRecommender",
    "EASE",
    "SequenceTransformer",
    "ItemKNN",
    "ResidualRegressor",
    "all_estimators",
    "save",
    "load",
    "__version__",
]
