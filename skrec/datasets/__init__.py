"""Data sets: MovieLens loaders, file readers, the id encoder and synthetic generators.

Every loader returns a :class:`sklearn.utils.Bunch` whose matrices follow skrec's data
contract: a CSR ``(n_users, n_items)`` matrix, a row per user, a column per item, with the
external ids of the rows/columns in ``user_ids`` / ``item_ids``.
"""

from ._base import get_data_home
from ._encoder import InteractionEncoder, encode_frame, encode_interactions
from ._movielens import load_movielens
from ._readers import read_interactions, read_sequences
from ._synthetic import make_interactions

__all__ = [
    "InteractionEncoder",
    "encode_frame",
    "encode_interactions",
    "get_data_home",
    "load_movielens",
    "make_interactions",
    "read_interactions",
    "read_sequences",
]
