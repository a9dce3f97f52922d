"""Popularity: the smoothed most-popular ranker every personalised model must beat."""

from __future__ import annotations

import torch
from torch import nn

from .._torch.training import Trainer
from ..base import TorchRecommender, register, store_params

__all__ = ["Popularity"]


class _PopularityTrainer(Trainer):
    """One closed-form solve: ``b_i = log((c_i + damping) / Σ_j (c_j + damping))``."""

    max_epochs = 1

    def __init__(self, X, device, damping):
        self.module = nn.Module()
        self.module.register_buffer("item_bias", torch.zeros(X.shape[1], device=device))
        self.counts = torch.as_tensor(X.getnnz(axis=0), dtype=torch.float32, device=device)
        self.damping = damping

    def train_epoch(self):
        smoothed = (self.counts + self.damping).clamp(min=1e-12)
        self.module.item_bias.copy_(torch.log(smoothed / smoothed.sum()))
        # The multinomial log-loss of the training interactions under that distribution.
        return float(-(self.counts * self.module.item_bias).sum() / self.counts.sum().clamp(min=1))


@register
class Popularity(TorchRecommender):
    """Rank items by how many training users hold them, the same list for every row.

    The scores are log-probabilities of an additively smoothed multinomial over items (the
    maximum-likelihood item bias of a softmax model); items a row holds are excluded by
    ``recommend`` as usual.

    Parameters
    ----------
    damping : float, default=1.0
        Pseudo-count added to every item's count (Laplace smoothing): unseen items rank by
        index after the seen ones, and rare items are not over-trusted.
    device : str, default="auto"

    Attributes
    ----------
    item_bias_ : ndarray of shape (n_items_,)
        Log of each item's smoothed share of the interactions.
    n_users_, n_items_, n_iter_, history_, device_

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1]], dtype=float))
    >>> Popularity().fit(X).recommend(X, k=1)[0].ravel().tolist()
    [2, 1, 1]
    """

    _param_specs = {"damping": dict(kind="float", low=0)}

    def __init__(self, *, damping=1.0, device="auto"):
        store_params(self, locals())

    @classmethod
    def _test_instances(cls):
        return [cls(), cls(damping=0.0)]

    def _make_trainer(self, X, *, generator, seed, warm, previous=None):
        return _PopularityTrainer(X, self.device_, float(self.damping))

    def _score_batch(self, batch):
        return self.module_.item_bias.unsqueeze(0).expand(batch.n_rows, -1)

    @property
    def item_bias_(self):
        """Log of each item's smoothed share of the interactions."""
        return self.module_.item_bias.detach().cpu().numpy().copy()
