"""FactorMixin: what every model with item vectors offers (factor arrays, ``similar_items``)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .._torch import DeviceCSR, topk_items
from ..utils.validation import check_k, check_param, raise_invalid

__all__ = ["FactorMixin", "sum_of_squares"]


class FactorMixin:
    """Factor arrays and item-item similarity for models with learned item vectors.

    A model mixes this in before its estimator base and names its module's tensors in
    ``_factor_names``: ``{"user_factors_": "...", "item_factors_": "...", "item_bias_": ...}``
    (attribute paths on ``module_``; an entry may be absent). The arrays are copies on the
    host; ``similar_items`` ranks on the device.

    Examples
    --------
    >>> from skrec import BPRRanker
    >>> issubclass(BPRRanker, FactorMixin)
    True
    """

    _factor_names: dict = {}

    def _factor(self, name):
        check_is_fitted(self, "module_")
        value = self.module_
        for part in self._factor_names[name].split("."):
            value = getattr(value, part)
        value = value.detach()
        return value[:, 0] if name == "item_bias_" and value.dim() == 2 else value

    @property
    def user_factors_(self):
        """Vectors learned for the training rows, ``(n_users_, n_factors)``."""
        return self._factor("user_factors_").cpu().numpy().copy()

    @property
    def item_factors_(self):
        """Learned item vectors, ``(n_items_, n_factors)``."""
        return self._factor("item_factors_").cpu().numpy().copy()

    @property
    def item_bias_(self):
        """Learned item biases, ``(n_items_,)``."""
        return self._factor("item_bias_").cpu().numpy().copy()

    def similar_items(self, items, k=10, *, metric="cosine"):
        """The ``k`` items most similar to each of ``items`` by the item factors.

        Parameters
        ----------
        items : int or array-like of int
            Query item indices in ``[0, n_items_)``; repeats are allowed.
        k : int, default=10
            Neighbours per query, ``1 <= k <= n_items_ - 1``.
        metric : {"cosine", "dot"}, default="cosine"
            Cosine similarity of the item factors, or their dot product.

        Returns
        -------
        ids : ndarray of int64, shape (n_queries, k)
            Best first, ties broken by the lower index. The query item itself is never
            returned (unlike implicit's ``similar_items``, which lists it first).
        scores : ndarray of float32, shape (n_queries, k)

        Examples
        --------
        >>> from skrec import BPRRanker
        >>> from skrec.datasets import make_interactions
        >>> X = make_interactions(60, 30, n_clusters=3, density=0.2, random_state=0).X
        >>> model = BPRRanker(n_factors=8, max_iter=5, batch_size=256, random_state=0).fit(X)
        >>> ids, scores = model.similar_items(4, k=3)
        >>> ids.shape, bool((ids != 4).all())
        ((1, 3), True)
        """
        check_is_fitted(self, "n_items_")
        check_param("metric", metric, "str", options=("cosine", "dot"))
        query = check_item_queries(items, self.n_items_)
        if self.n_items_ < 2:
            raise_invalid("k", "at most n_items_ - 1, which is 0 for this model", k)
        k = check_k(k, self.n_items_ - 1)
        V = self._factor("item_factors_").float()
        if metric == "cosine":
            V = V / V.norm(dim=1, keepdim=True).clamp(min=1e-12)
        return rank_neighbours(lambda q: V[q] @ V.T, query, k, self.n_items_, self.device_,
                               self._rows_per_batch())


def check_item_queries(items, n_items):
    """Validated 1-D int64 array of item indices in ``[0, n_items)``.

    Examples
    --------
    >>> check_item_queries(3, 5).tolist()
    [3]
    """
    arr = np.asarray(items)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise_invalid("items", "an item index or a non-empty 1-D array of item indices", items)
    if not np.issubdtype(arr.dtype, np.integer):
        raise_invalid("items", "integer item indices", f"<dtype {arr.dtype}>", TypeError)
    if arr.min() < 0 or arr.max() >= n_items:
        raise_invalid("items", f"item indices in [0, {n_items})", f"<values from {arr.min()} to {arr.max()}>")
    return arr.astype(np.int64)


def rank_neighbours(similarity, query, k, n_items, device, step):
    """Top-``k`` of ``similarity(q)`` (``[b, n_items]``) for query items, the query excluded.

    Examples
    --------
    >>> S = torch.tensor([[1.0, 0.5, 0.2], [0.5, 1.0, 0.9], [0.2, 0.9, 1.0]])
    >>> rank_neighbours(lambda q: S[q], np.array([0]), 1, 3, torch.device("cpu"), 8)[0].tolist()
    [[1]]
    """
    q_all = torch.as_tensor(query, device=device)
    ids = np.empty((query.size, k), dtype=np.int64)
    top = np.empty((query.size, k), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, query.size, step):
            q = q_all[start:start + step]
            n = q.numel()
            scores = similarity(q).float()  # [b, n_items]
            i, s = topk_items(scores, k, exclude=DeviceCSR.one_per_row(q, n_items))
            ids[start:start + n] = i.cpu().numpy()
            top[start:start + n] = s.cpu().numpy()
    return ids, top


def sum_of_squares(*tensors):
    """``Σ x²`` over every element of every tensor, as one 0-d tensor (a ``dot`` per tensor,
    no squared copy): the L2 penalties of the hand-written objectives.

    Examples
    --------
    >>> float(sum_of_squares(torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])))
    14.0
    """
    return sum(torch.dot(t.reshape(-1), t.reshape(-1)) for t in tensors)
