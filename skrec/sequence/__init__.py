"""Sequence models: next-item recommendation from each user's ordered history."""

from ._module import SequenceModule
from ._transformer import SequenceTransformer

__all__ = ["SequenceTransformer", "SequenceModule"]
