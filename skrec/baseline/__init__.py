"""Baseline predictors."""

from ._biases import BaselineBiases, BiasModule

__all__ = ["BaselineBiases", "BiasModule"]
