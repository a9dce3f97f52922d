"""Factorization models: explicit matrix factorization and BPR ranking."""

from ._base import FactorMixin
from ._bpr import BPRRanker
from ._mf import MFRegressor

__all__ = ["FactorMixin", "MFRegressor", "BPRRanker"]
