"""Baseline predictors: rating biases and popularity."""

from ._biases import BaselineBiases, BiasModule
from ._popularity import Popularity

__all__ = ["BaselineBiases", "BiasModule", "Popularity"]
