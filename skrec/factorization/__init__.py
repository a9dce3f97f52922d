"""Factorization models: explicit matrix factorization, BPR ranking and implicit ALS."""

from ._als import ALSRanker
from ._base import FactorMixin
from ._bpr import BPRRanker
from ._mf import MFRegressor

__all__ = ["FactorMixin", "MFRegressor", "BPRRanker", "ALSRanker"]
