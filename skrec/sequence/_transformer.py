"""SequenceTransformer: next-item recommendation with a SASRec / BERT4Rec-style transformer."""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._torch import DeviceCSR
from ..base import TorchRecommender, register
from ..model_selection import holdout_split
from ..utils.validation import check_heldout, check_interactions, raise_invalid
from ._module import N_GAP_BUCKETS, SequenceModule, bce_loss, full_softmax_loss, sampled_softmax_loss
from ._sequences import build_sequences, time_gap_buckets

__all__ = ["SequenceTransformer"]


@dataclass
class _Heldout:
    """Validation rows: their training history and the held-out next item (one per row)."""

    history: sp.csr_matrix
    target: sp.csr_matrix


@register
class SequenceTransformer(TorchRecommender):
    """Next-item recommender: a transformer over each user's history in time order.

    Each row of ``X`` is one user's history; its stored values are **order keys**
    (timestamps or positions, larger = later; equal keys are ordered by item index, the
    larger index being the later item). The row becomes the user's item sequence, truncated
    to its last ``max_seq_len`` items, and the model predicts the next item.
    ``objective="causal"`` trains next-item prediction at every position (SASRec);
    ``objective="masked"`` trains a cloze task (BERT4Rec: 15 % of the items masked, 80 % of
    those replaced by a mask token, 10 % by a random item, 10 % kept) and appends a mask
    token at inference.

    Parameters
    ----------
    n_factors : int, default=64
        Model width ``d`` (item, position and hidden vectors).
    objective : {"causal", "masked"}, default="causal"
    loss : {"ce", "sampled", "bce"}, default="ce"
        ``"ce"``: softmax cross-entropy over all items (the strongest in recent
        replicability studies). ``"sampled"``: softmax over the target and ``n_negatives``
        uniform items shared by the batch (large catalogues). ``"bce"``: binary
        cross-entropy against one uniform negative per position (the original SASRec).
    n_negatives : int, default=256
        Negatives of ``loss="sampled"``.
    max_seq_len : int, default=50
        Longest sequence seen by the model (the latest items of a longer history are kept).
        In masked mode the appended mask token takes one place.
    n_layers : int, default=2
        Transformer blocks, SASRec's: queries from the layer-normalised stream, keys and
        values from the stream itself, and the stream normalised again before a ReLU
        feed-forward layer.
    n_heads : int, default=1
        Attention heads; must divide ``n_factors``.
    ff_dim : int, optional
        Hidden width of the feed-forward layers; ``n_factors`` when omitted (as SASRec).
    dropout : float, default=0.2
        Dropout on the embeddings, the attention weights and the feed-forward layers.
    tied_embeddings : bool, default=True
        Score items with the input item embeddings (SASRec); ``False`` learns a separate
        output table.
    time_features : bool, default=False
        Add an embedding of the log-bucketed gap between an item's key and the previous
        one — meaningful when the keys are timestamps.
    mask_prob : float, default=0.15
        Masked objective: fraction of the items masked (a sequence with none masked gets its
        last item masked, the position asked at inference).
    rating_weight : float, default=1.0
        Weight of the squared error of the rating head when ``fit`` receives ``ratings``.
    alpha : float, default=0.0
        L2 penalty (weight decay of the optimizer).
    learning_rate : float, default=1e-3
    batch_size : int, default=128
        Sequences per batch.
    max_iter : int, default=200
        Epochs (one pass over the training sequences each).
    early_stopping : bool, default=True
        Hold out the last item of each row (protocol P3's validation target), monitor
        NDCG@10 of the next-item ranking (full ranking, history excluded) after each epoch,
        stop after ``n_iter_no_change`` epochs without improvement and restore the best.
    validation_fraction : float in (0, 1], default=1.0
        Fraction of the rows (with at least two items) whose last item is held out for
        validation.
    n_iter_no_change : int, default=10
    tol : float, default=0.0
        Minimum improvement of the monitored value.
    optimizer : {"adam", "adamw", "adagrad", "sgd", "sparse_adam"}, default="adam"
    lr_schedule : {None, "cosine", "triangular"}, default=None
    lr_cycle : int, default=2
    mixed_precision : bool, default=True
        bfloat16 autocast of the forward pass on CUDA (ignored on the CPU).
    checkpoint_every : int, default=0
    checkpoint_path : str, optional
    warm_start : bool, default=False
    device : str, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds initialisation, batch order, dropout, masking and negatives (one
        ``torch.Generator``; the global RNG is never used).
    verbose : int, default=0

    Attributes
    ----------
    module_ : SequenceModule
        The trained network.
    n_users_, n_items_ : int
    n_iter_ : int
    history_ : list of dict
        Per epoch: ``loss``, ``lr`` and ``val_loss`` (minus the validation NDCG@10).
    best_iteration_ : int or None
    best_score_ : float or None
        Best validation NDCG@10 with early stopping.
    device_ : torch.device

    Notes
    -----
    Sequences are built on the device once per ``fit`` (two stable sorts order the entries
    by ``(row, key, item)``, index arithmetic truncates and pads), with right padding: in
    causal attention a real position then never sees a padded one and every attention row
    keeps its diagonal, so no key-padding mask is needed and no row is ever fully masked
    (a fully masked row returns NaN from some CUDA kernels). Position ids count back from
    the latest item, so results do not depend on the padding of a batch.

    The causal objective minimises, over every position ``t`` of every training sequence,
    ``-log softmax(h_t E^T)_{i_{t+1}}`` (``E`` the item table).
    With ``ratings``, a second head predicts the rating of the next item,
    ``r̂ = (W h_t)·e_i + c_i + μ``, trained by squared error (weight ``rating_weight``); the
    ratings are targets only, not inputs. Every dropout mask is drawn from the estimator's
    generator, so training materialises the attention weights (the fused kernels only read
    the global RNG); inference goes through ``scaled_dot_product_attention``. The network
    follows Kang & McAuley's reference code: input item vectors scaled by ``sqrt(d)``,
    Xavier-normal embeddings, no output bias, Adam with ``betas=(0.9, 0.98)``.

    References
    ----------
    Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.
    Sun et al., "BERT4Rec", CIKM 2019.
    Klenitskiy & Vasilev, "Turning Dross Into Gold Loss: is BERT4Rec really better than
    SASRec?", RecSys 2023.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skrec.sequence import SequenceTransformer
    >>> rows = np.repeat(np.arange(20), 4)
    >>> items = (rows % 5 + np.tile(np.arange(4), 20)) % 8   # each user walks i, i+1, i+2, …
    >>> X = sp.csr_matrix((np.tile([1.0, 2, 3, 4], 20), (rows, items)), shape=(20, 8))
    >>> model = SequenceTransformer(n_factors=16, max_seq_len=5, max_iter=10, learning_rate=0.05,
    ...                             dropout=0.0, early_stopping=False, random_state=0).fit(X)
    >>> ids, _ = model.recommend(X[:4], k=1)   # histories 0-3, 1-4, 2-5, 3-6
    >>> ids.ravel().tolist()
    [4, 5, 6, 7]
    """

    _adam_betas = (0.9, 0.98)  # SASRec's
    _param_specs = dict(
        TorchRecommender._param_specs,
        n_factors=dict(kind="int", low=1),
        objective=dict(kind="str", options=("causal", "masked")),
        loss=dict(kind="str", options=("ce", "sampled", "bce")),
        n_negatives=dict(kind="int", low=1),
        max_seq_len=dict(kind="int", low=2),
        n_layers=dict(kind="int", low=1),
        n_heads=dict(kind="int", low=1),
        ff_dim=dict(kind="int", low=1, allow_none=True),
        dropout=dict(kind="float", low=0, high=1, high_inclusive=False),
        tied_embeddings=dict(kind="bool"),
        time_features=dict(kind="bool"),
        mask_prob=dict(kind="float", low=0, high=1, low_inclusive=False, high_inclusive=False),
        rating_weight=dict(kind="float", low=0),
        alpha=dict(kind="float", low=0),
        mixed_precision=dict(kind="bool"),
        validation_fraction=dict(kind="float", low=0, high=1, low_inclusive=False),
    )

    def __init__(self, n_factors=64, *, objective="causal", loss="ce", n_negatives=256, max_seq_len=50,
                 n_layers=2, n_heads=1, ff_dim=None, dropout=0.2, tied_embeddings=True, time_features=False,
                 mask_prob=0.15, rating_weight=1.0, alpha=0.0, learning_rate=1e-3, batch_size=128, max_iter=200,
                 early_stopping=True, validation_fraction=1.0, n_iter_no_change=10, tol=0.0, optimizer="adam",
                 lr_schedule=None, lr_cycle=2, mixed_precision=True, checkpoint_every=0, checkpoint_path=None,
                 warm_start=False, device="auto", random_state=None, verbose=0):
        self.n_factors = n_factors
        self.objective = objective
        self.loss = loss
        self.n_negatives = n_negatives
        self.max_seq_len = max_seq_len
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.ff_dim = ff_dim
        self.dropout = dropout
        self.tied_embeddings = tied_embeddings
        self.time_features = time_features
        self.mask_prob = mask_prob
        self.rating_weight = rating_weight
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.lr_cycle = lr_cycle
        self.mixed_precision = mixed_precision
        self.checkpoint_every = checkpoint_every
        self.checkpoint_path = checkpoint_path
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def _test_instances(cls):
        small = dict(n_factors=8, max_seq_len=6, n_layers=1, batch_size=16, learning_rate=0.01)
        return [
            cls(**small, max_iter=4, early_stopping=False, n_heads=2),
            cls(**small, objective="masked", loss="sampled", n_negatives=8, max_iter=4, n_iter_no_change=2,
                time_features=True, tied_embeddings=False),
        ]

    # ------------------------------------------------------------ parameters
    def _check_params(self):
        super()._check_params()
        if self.n_factors % self.n_heads:
            raise_invalid("n_heads", f"a divisor of n_factors={self.n_factors}", self.n_heads)

    def _weight_decay(self):
        return self.alpha

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, *, ratings=None):
        """Fit on the order keys ``X`` (and ``y``), optionally with the users' ratings.

        Parameters
        ----------
        X : sparse matrix or array-like of shape (n_users, n_items)
            Order keys (timestamps or positions; larger = later) of each user's items.
            A key of 0 is not stored, so it is not an interaction: use keys > 0.
        y : sparse matrix of the same shape, optional
            Held-out order keys of the same rows; the model trains on ``X + y``.
        ratings : sparse matrix of the same shape, optional
            The rating of every interaction, stored at exactly the positions of ``X`` (or of
            ``X + y``). Enables the rating head (:meth:`predict_rating`).

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from skrec.sequence import SequenceTransformer
        >>> X = sp.csr_matrix(np.array([[1.0, 2, 3, 0], [0, 1, 2, 3]]))
        >>> R = sp.csr_matrix(np.array([[5.0, 4, 3, 0], [0, 2, 5, 4]]))
        >>> m = SequenceTransformer(n_factors=8, max_iter=2, early_stopping=False,
        ...                         random_state=0).fit(X, ratings=R)
        >>> m.predict_rating(X).shape
        (2, 4)
        """
        self._pending_ratings = None
        if ratings is not None:
            self._check_params()
            full = check_interactions(X, "X")
            if y is not None:
                full = check_interactions(full + check_heldout(y, full), "X")
            R = check_interactions(ratings, "ratings")
            if R.shape != full.shape or R.nnz != full.nnz or not (
                    np.array_equal(R.indptr, full.indptr) and np.array_equal(R.indices, full.indices)):
                raise_invalid("ratings", "a matrix with a stored rating at exactly the interactions of "
                              "X (or X + y)", f"<shape {R.shape} with {R.nnz} stored ratings for "
                              f"{full.nnz} interactions of shape {full.shape}>")
            self._pending_ratings = R
        try:
            return super().fit(X, y)
        finally:
            del self._pending_ratings

    def _fit(self, X, warm):
        ratings = getattr(self, "_pending_ratings", None)
        if warm and (ratings is not None) != self._spec["has_ratings"]:
            raise_invalid("ratings", "given in every fit or in none (warm_start=True)",
                          "<a change from the previous fit>")
        if warm:  # the network keeps its structure; only the autocast switch may change
            self._spec = dict(self._spec, mixed_precision=self.mixed_precision)
        else:
            self._spec = {"objective": self.objective, "max_seq_len": self.max_seq_len,
                          "time_features": self.time_features, "has_ratings": ratings is not None,
                          "mixed_precision": self.mixed_precision}
        self._ratings = ratings  # read by _training_data; dropped after the fit
        try:
            return super()._fit(X, warm)
        finally:
            self._ratings = None

    def _validation_split(self, X, seed):
        counts = np.diff(X.indptr)
        chosen = counts >= 2
        if self.validation_fraction < 1:
            chosen &= np.random.default_rng(seed).random(X.shape[0]) < self.validation_fraction
        if not chosen.any():
            raise_invalid("X", "a matrix with rows of at least 2 interactions, whose last one is held out "
                          "for validation (early_stopping=True)", f"<no such row among {X.shape[0]}>")
        _, last = holdout_split(X, 1, strategy="last")
        held = sp.diags(chosen.astype(np.float64)) @ last
        held.eliminate_zeros()
        X_train = (X - held).tocsr()
        X_train.eliminate_zeros()
        rows = np.flatnonzero(chosen)
        return X_train, _Heldout(X_train[rows], held.tocsr()[rows])

    def _build_module(self, X, generator):
        s = self._spec
        width = self.ff_dim or self.n_factors
        module = SequenceModule(X.shape[1], s["max_seq_len"], self.n_factors, self.n_layers, self.n_heads,
                                width, self.dropout, causal=s["objective"] == "causal",
                                tied=self.tied_embeddings, time_features=s["time_features"],
                                rating_head=s["has_ratings"])
        _init_parameters(module, generator)
        if s["has_ratings"]:
            module.rating_mean.fill_(float(self._ratings.data.mean()))
        return module

    def _csr_to_device(self, X):
        return DeviceCSR.from_scipy(X, self.device_, dtype=torch.float64)  # exact Unix timestamps

    def _training_data(self, X):
        if isinstance(X, _Heldout):
            target = X.target.tocsr()
            held = np.full(X.history.shape[0], -1, dtype=np.int64)
            held[np.repeat(np.arange(target.shape[0]), np.diff(target.indptr))] = target.indices
            return {"history": self._csr_to_device(X.history), "held": torch.as_tensor(held, device=self.device_)}
        s = self._spec
        width = s["max_seq_len"] + (s["objective"] == "causal")  # inputs + the next item
        D = self._csr_to_device(X)
        extra = None
        if self._ratings is not None:
            extra = torch.as_tensor(_values_at(self._ratings, X), dtype=torch.float32, device=self.device_)
        items, keys, lengths, ratings = build_sequences(D.indptr, D.indices, D.values, width,
                                                        pad=self.n_items_, extra=extra)
        keep = np.flatnonzero(np.minimum(np.diff(X.indptr), width) >= 2)
        if keep.size == 0:
            raise_invalid("X", "a matrix with at least one row of 2 or more interactions to learn from",
                          "<none>")
        keep_t = torch.as_tensor(keep, device=self.device_)
        data = {"items": items[keep_t], "lengths": lengths[keep_t], "n": int(keep.size),
                "host_lengths": np.minimum(np.diff(X.indptr), width)[keep]}
        data["gaps"] = time_gap_buckets(keys[keep_t], data["lengths"], N_GAP_BUCKETS) if s["time_features"] else None
        data["ratings"] = ratings[keep_t] if ratings is not None else None
        return data

    def _n_samples(self, data):
        return data["n"]

    def _autocast(self):
        if self.device_.type == "cuda" and self._spec["mixed_precision"]:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _loss(self, data, idx, generator):
        m, s = self.module_, self._spec
        items, lengths = data["items"][idx], data["lengths"][idx]
        gaps, ratings = data["gaps"], data["ratings"]
        gaps = gaps[idx] if gaps is not None else None
        ratings = ratings[idx] if ratings is not None else None
        compact = self.device_.type == "cpu"  # host reads are free on the CPU: skip the padding
        if compact:
            w = int(lengths.max())
            items = items[:, :w]
            gaps = gaps[:, :w] if gaps is not None else None
            ratings = ratings[:, :w] if ratings is not None else None
        pad = m.pad
        with self._autocast():
            if s["objective"] == "causal":
                target = items[:, 1:]  # [B, L]
                valid = target != pad
                tokens = torch.where(valid, items[:, :-1], pad)
                h = m.encode(tokens, lengths - 1, gaps[:, :-1] if gaps is not None else None, generator)
                rating_target = ratings[:, 1:] if ratings is not None else None
            else:
                tokens, target, valid, gaps = self._mask_tokens(items, lengths, gaps, generator)
                h = m.encode(tokens, lengths, gaps, generator)
                rating_target = ratings
            h = h.reshape(-1, h.shape[-1])  # [B * L, d]
            target, valid = target.reshape(-1), valid.reshape(-1)
            if rating_target is not None:
                rating_target = rating_target.reshape(-1)
            if compact:
                h, target = h[valid], target[valid]
                rating_target = rating_target[valid] if rating_target is not None else None
                valid = torch.ones_like(target, dtype=torch.bool)
            target_or_ignore = torch.where(valid, target, -100)
            if self.loss == "ce":
                loss = full_softmax_loss(m, h, target_or_ignore)
            elif self.loss == "sampled":
                loss = sampled_softmax_loss(m, h, target_or_ignore, self.n_negatives, generator)
            else:
                loss = bce_loss(m, h, target_or_ignore, generator)
            if rating_target is not None and self.rating_weight > 0:
                err = (m.rating(h, torch.where(valid, target, 0)).float() - rating_target) ** 2
                loss = loss + self.rating_weight * (err * valid).sum() / valid.sum().clamp(min=1)
        return loss

    def _mask_tokens(self, items, lengths, gaps, generator):
        """BERT4Rec cloze: which positions are masked, and the corrupted input."""
        m = self.module_
        B, L = items.shape
        real = torch.arange(L, device=items.device) < lengths.unsqueeze(1)
        masked = (torch.rand((B, L), generator=generator, device=items.device) < self.mask_prob) & real
        last = torch.arange(L, device=items.device) == (lengths - 1).unsqueeze(1)
        masked = masked | (last & ~masked.any(1, keepdim=True))  # at least one per sequence
        r = torch.rand((B, L), generator=generator, device=items.device)
        random_items = torch.randint(m.n_items, (B, L), generator=generator, device=items.device)
        tokens = torch.where(masked & (r < 0.8), m.mask, torch.where(masked & (r < 0.9), random_items, items))
        if gaps is not None:
            gaps = torch.where(masked, N_GAP_BUCKETS, gaps)  # the gap of a hidden item is unknown
        return tokens, items, masked, gaps

    def _validation_loss(self, data, generator):
        """Minus NDCG@10 of the held-out next item (full ranking, history excluded)."""
        hist, held = data["history"], data["held"]
        total = torch.zeros((), device=self.device_)
        step = max(1, self._inference_elements // self.n_items_)
        for start in range(0, hist.n_rows, step):
            batch = hist.slice_rows(start, min(start + step, hist.n_rows))
            target = held[start:start + batch.n_rows]
            scores = self._score_batch(batch).float()
            scores[batch.row_ids(), batch.indices] = float("-inf")
            t = scores.gather(1, target.clamp(min=0).unsqueeze(1))
            ids = torch.arange(scores.shape[1], device=scores.device)
            rank = (scores > t).sum(1) + ((scores == t) & (ids < target.unsqueeze(1))).sum(1)
            gain = torch.where((rank < 10) & (target >= 0), 1.0 / torch.log2(rank.float() + 2), 0.0)
            total = total + gain.sum()
        return -total / max(hist.n_rows, 1)

    # ------------------------------------------------------------- inference
    def _row_batches(self, X):
        data = self._csr_to_device(X)
        step = max(1, self._inference_elements // self.n_items_)
        for start in range(0, X.shape[0], step):
            yield start, data.slice_rows(start, min(start + step, X.shape[0]))

    def _last_hidden(self, batch):
        """Hidden state ``[B, d]`` that predicts the next item of each history row."""
        m, s = self.module_, self._spec
        L = s["max_seq_len"]
        masked = s["objective"] == "masked"
        longest = int(np.diff(batch.indptr_host).max()) if batch.n_rows else 0
        width = max(1, min(longest, L - masked))
        items, keys, lengths, _ = build_sequences(batch.indptr, batch.indices, batch.values, width, pad=m.pad)
        gaps = time_gap_buckets(keys, lengths, N_GAP_BUCKETS) if s["time_features"] else None
        if masked:  # append the mask token whose prediction is the next item
            items = torch.cat([items, torch.full_like(items[:, :1], m.pad)], dim=1)
            at_end = torch.arange(width + 1, device=items.device) == lengths.unsqueeze(1)
            items = torch.where(at_end, m.mask, items)
            if gaps is not None:
                gaps = torch.where(at_end, N_GAP_BUCKETS, torch.cat([gaps, torch.zeros_like(gaps[:, :1])], 1))
            lengths = lengths + 1
        else:
            lengths = lengths.clamp(min=1)  # an empty history reads one padding token
        with self._autocast():
            h = m.encode(items, lengths, gaps)
        return h[torch.arange(h.shape[0], device=h.device), lengths - 1].float()  # [B, d]

    def _score_batch(self, batch):
        with self._autocast():
            return self.module_.scores(self._last_hidden(batch)).float()

    def _transform_batch(self, batch):
        return self._last_hidden(batch)

    def predict_rating(self, X):
        """Predicted rating of every item as the next one of each history (rating head).

        Available when ``fit`` received ``ratings``.

        Parameters
        ----------
        X : sparse matrix of shape (n_rows, n_items_)
            Order keys of each history.

        Returns
        -------
        ndarray of float32, shape (n_rows, n_items_)

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from skrec.sequence import SequenceTransformer
        >>> X = sp.csr_matrix(np.array([[1.0, 2, 3, 0], [0, 1, 2, 3]]))
        >>> R = sp.csr_matrix(np.array([[5.0, 4, 3, 0], [0, 2, 5, 4]]))
        >>> m = SequenceTransformer(n_factors=8, max_iter=2, early_stopping=False,
        ...                         random_state=0).fit(X, ratings=R)
        >>> bool(np.isfinite(m.predict_rating(X)).all())
        True
        """
        X = self._validate_rows(X)
        if not self._spec["has_ratings"]:
            raise ValueError("predict_rating needs a model fitted with ratings; got a model fitted "
                             "without ratings (pass ratings= to fit).")
        out = np.empty(X.shape, dtype=np.float32)
        with torch.no_grad():
            for start, batch in self._row_batches(X):
                h = self._last_hidden(batch)
                out[start:start + batch.n_rows] = self.module_.rating(h).float().cpu().numpy()
        return out

    def score(self, X, y=None):
        """NDCG@10 of the next item (protocol P3): full ranking, history excluded.

        Parameters
        ----------
        X : sparse matrix of shape (n_rows, n_items_)
            Order keys of each history.
        y : sparse matrix of the same shape, optional
            The held-out next item(s) of each row. When omitted, each row's last item by
            order is held out and the rest is the history.

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from skrec.sequence import SequenceTransformer
        >>> X = sp.csr_matrix(np.array([[1.0, 2, 3, 0], [0, 1, 2, 3]]))
        >>> m = SequenceTransformer(n_factors=8, max_iter=2, early_stopping=False, random_state=0).fit(X)
        >>> 0.0 <= m.score(X) <= 1.0
        True
        """
        if y is None:
            X, y = holdout_split(self._validate_rows(X), 1, strategy="last")
        return super().score(X, y)


def _values_at(M, X):
    """Values of ``M`` at the stored positions of ``X`` (a sub-pattern of ``M``), in ``X``'s order."""
    n = M.shape[1]
    keys_m = np.repeat(np.arange(M.shape[0], dtype=np.int64), np.diff(M.indptr)) * n + M.indices
    keys_x = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr)) * n + X.indices
    return M.data[np.searchsorted(keys_m, keys_x)]


def _init_parameters(module, generator):
    """Initialise every parameter from ``generator`` (never the global RNG)."""
    dev = generator.device
    with torch.no_grad():
        for name, p in module.named_parameters():
            if isinstance(_owner(module, name), nn.LayerNorm):
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            elif p.dim() == 2 and isinstance(_owner(module, name), nn.Linear):
                bound = math.sqrt(6.0 / (p.shape[0] + p.shape[1]))  # Xavier uniform
                p.copy_((torch.rand(p.shape, generator=generator, device=dev) * 2 - 1) * bound)
            else:  # embedding tables: Xavier normal (SASRec)
                p.copy_(torch.randn(p.shape, generator=generator, device=dev) * math.sqrt(2.0 / sum(p.shape)))
        module.item_emb.weight[module.pad].zero_()


def _owner(module, name):
    return module.get_submodule(name.rpartition(".")[0]) if "." in name else module
