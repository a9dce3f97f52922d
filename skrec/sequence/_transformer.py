"""SequenceTransformer: next-item recommendation with a SASRec / BERT4Rec-style transformer."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._torch import DeviceCSR, GradientTrainer
# module-level names of this module: the tests patch them here
from .._torch.device import (autocast_bf16 as _autocast, check_mixed_precision as _check_mixed_precision,
                             no_autocast as _no_autocast)
from .._torch.ranking import ndcg_on_device
from ..base import TorchRecommender, register, store_params
from ..losses import bce_loss, linear_cross_entropy, sampled_softmax_loss
from ..model_selection import holdout_split
from ..model_selection._heldout import unwrap_heldout
from ..utils.validation import check_heldout, check_interactions, raise_invalid
from ._module import N_GAP_BUCKETS, SequenceModule
from ._sequences import build_sequences, time_gap_buckets

__all__ = ["SequenceTransformer", "ADAM_BETAS"]

#: Adam's moment decay rates for the transformer, as in SASRec's reference code.
ADAM_BETAS = (0.9, 0.98)

#: Most logits (positions x items) one piece of the full-softmax loss holds on a GPU.
CE_ELEMENTS = 2**27

#: The same on the CPU: pieces whose logits stay in cache (2 MiB of float32; 2**18 to 2**21
#: measured within 12 % of each other at the ML-1M shape, 2**19 the fastest).
CPU_CE_ELEMENTS = 2**19


def inference_rows(n_items, max_seq_len, d, ff_dim, budget=2**24):
    """History rows per inference batch, so that no tensor of a batch exceeds ``budget`` elements.

    A batch of ``B`` rows holds ``[B, n_items]`` scores and, in each block, activations up to
    ``[B, max_seq_len, max(2 d, ff_dim)]`` (keys and values ``2 d``, the feed-forward layer
    ``ff_dim``).

    Parameters
    ----------
    n_items : int
    max_seq_len : int
    d : int
        Model width.
    ff_dim : int
        Hidden width of the feed-forward layers.
    budget : int, default=2**24
        Elements one tensor of a batch may hold.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> inference_rows(500, 200, 64, 64)   # activations, not scores, bound the batch
    655
    >>> inference_rows(100_000, 50, 64, 64)
    167
    """
    return max(1, budget // max(n_items, max_seq_len * max(2 * d, ff_dim), 1))


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
        replicability studies). ``"sampled"``: softmax over the target and
        ``n_shared_negatives`` uniform items shared by the batch (large catalogues). ``"bce"``: binary
        cross-entropy against one uniform negative per position (the original SASRec).
    n_shared_negatives : int, default=256
        Negatives of ``loss="sampled"``, drawn once per batch and shared by its positions.
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
    tied : bool, default=True
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
    weight_decay : float, default=0.0
        The optimizer's weight decay (decoupled for ``optimizer="adamw"``).
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
    n_iter_no_change : int, default=20
        Epochs without improvement before stopping. SASRec-style recipes use 10; on the
        leave-last-out validation targets of MovieLens-100k and Amazon Beauty, NDCG@10 sat
        on plateaus longer than that before it climbed again, so the default waits 20.
    tol : float, default=0.0
        Minimum improvement of the monitored value.
    optimizer : {"adam", "adamw", "adagrad", "sgd"}, default="adam"
    lr_schedule : {None, "cosine", "triangular"}, default=None
    lr_cycle : int, default=2
    mixed_precision : bool, default=True
        bfloat16 autocast of the forward pass where the device runs bfloat16 products
        natively: CUDA devices of compute capability 8.0 or higher (Ampere and later) and
        CPUs with AVX512-BF16 or AMX instructions. On an older GPU the model runs in float32
        and ``fit`` warns once (a ``RuntimeWarning``); other CPUs run in float32 silently,
        as does inference on an older GPU. Scores are always computed in float32, outside
        autocast, and the softmax of the loss in float32.
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
    the global RNG); inference goes through ``scaled_dot_product_attention``, and so does
    training without dropout, except on CUDA under ``torch.use_deterministic_algorithms(True)``
    (the fused kernels' backward accumulates the query gradient in an arbitrary order). With
    ``loss="ce"`` the full softmax is one fused linear cross-entropy: pieces of at most
    ``2**27`` logits (``2**19`` on the CPU, where they stay in cache) form their loss and
    both gradients in the forward pass, so no ``[positions, n_items]`` tensor is kept and
    training memory stays bounded with large catalogues. The network follows Kang &
    McAuley's reference code: input item vectors
    scaled by ``sqrt(d)``, Xavier-normal embeddings, no output bias, Adam with
    ``betas=(0.9, 0.98)``.

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

    _history_dtype = torch.float64  # exact Unix timestamps
    _structure = ("objective", "max_seq_len", "n_factors", "n_layers", "n_heads", "ff_dim", "tied", "time_features",
                  "has_ratings")
    _param_specs = dict(
        TorchRecommender._param_specs,
        n_factors=dict(kind="int", low=1),
        objective=dict(kind="str", options=("causal", "masked")),
        loss=dict(kind="str", options=("ce", "sampled", "bce")),
        n_shared_negatives=dict(kind="int", low=1),
        max_seq_len=dict(kind="int", low=2),
        n_layers=dict(kind="int", low=1),
        n_heads=dict(kind="int", low=1),
        ff_dim=dict(kind="int", low=1, allow_none=True),
        dropout=dict(kind="float", low=0, high=1, high_inclusive=False),
        tied=dict(kind="bool"),
        time_features=dict(kind="bool"),
        mask_prob=dict(kind="float", low=0, high=1, low_inclusive=False, high_inclusive=False),
        rating_weight=dict(kind="float", low=0),
        weight_decay=dict(kind="float", low=0),
        optimizer=dict(kind="str", options=("adam", "adamw", "adagrad", "sgd")),
        mixed_precision=dict(kind="bool"),
        validation_fraction=dict(kind="float", low=0, high=1, low_inclusive=False),
    )

    def __init__(self, n_factors=64, *, objective="causal", loss="ce", n_shared_negatives=256, max_seq_len=50,
                 n_layers=2, n_heads=1, ff_dim=None, dropout=0.2, tied=True, time_features=False,
                 mask_prob=0.15, rating_weight=1.0, weight_decay=0.0, learning_rate=1e-3, batch_size=128, max_iter=200,
                 early_stopping=True, validation_fraction=1.0, n_iter_no_change=20, tol=0.0, optimizer="adam",
                 lr_schedule=None, lr_cycle=2, mixed_precision=True, checkpoint_every=0, checkpoint_path=None,
                 warm_start=False, device="auto", random_state=None, verbose=0):
        store_params(self, locals())

    @classmethod
    def _test_instances(cls):
        small = dict(n_factors=8, max_seq_len=6, n_layers=1, batch_size=16, learning_rate=0.01)
        return [
            cls(**small, max_iter=4, early_stopping=False, n_heads=2),
            cls(**small, objective="masked", loss="sampled", n_shared_negatives=8, max_iter=4, n_iter_no_change=2,
                time_features=True, tied=False),
        ]

    # ------------------------------------------------------------ parameters
    def _check_params(self):
        super()._check_params()
        if self.n_factors % self.n_heads:
            raise_invalid("n_heads", f"a divisor of n_factors={self.n_factors}", self.n_heads)

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
        if ratings is not None:
            self._check_params()
            full = check_interactions(X, "X")
            if y is not None:
                full = check_interactions(full + check_heldout(unwrap_heldout(y, full), full), "X")
            R = check_interactions(ratings, "ratings")
            if R.shape != full.shape or R.nnz != full.nnz or not (
                    np.array_equal(R.indptr, full.indptr) and np.array_equal(R.indices, full.indices)):
                raise_invalid("ratings", "a matrix with a stored rating at exactly the interactions of "
                              "X (or X + y)", f"<shape {R.shape} with {R.nnz} stored ratings for "
                              f"{full.nnz} interactions of shape {full.shape}>")
            ratings = R
        return super().fit(X, y, ratings=ratings)

    def _fit_spec(self, ratings=None):
        return dict(super()._fit_spec(), has_ratings=ratings is not None)  # with ratings, a rating head

    def _make_trainer(self, X, *, generator, seed, warm, previous=None, ratings=None):
        spec = self._spec
        _check_mixed_precision(self.device_, spec["mixed_precision"])
        X_train, X_val = self._split(X, self._seed)
        module = self.module_ if warm else self._build_module(X_train, generator, ratings)
        return SequenceTrainer(module, X_train, X_val, ratings, generator, spec, self._rows_per_batch(X.shape[1]),
                               **self._gradient_options(warm, betas=ADAM_BETAS, weight_decay=spec["weight_decay"]))

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
        return X_train, (X_train[rows], held.tocsr()[rows])

    def _build_module(self, X, generator, ratings):
        s = self._spec
        module = SequenceModule(X.shape[1], s["max_seq_len"], s["n_factors"], s["n_layers"], s["n_heads"],
                                s["ff_dim"] or s["n_factors"], s["dropout"], causal=s["objective"] == "causal",
                                tied=s["tied"], time_features=s["time_features"], rating_head=s["has_ratings"])
        module = module.to(self.device_)
        _init_parameters(module, generator)
        if s["has_ratings"]:
            module.rating_mean.fill_(float(ratings.data.mean()))
        return module

    def _rows_per_batch(self, n_items=None):
        s = self._spec
        return inference_rows(self.n_items_ if n_items is None else n_items, s["max_seq_len"], s["n_factors"],
                              s["ff_dim"] or s["n_factors"], self._inference_elements)

    def _autocast(self):
        return _autocast(self.device_, self._spec["mixed_precision"])

    def _last_hidden(self, batch):
        """Hidden state ``[B, d]`` that predicts the next item of each history row."""
        return last_hidden(self.module_, self._spec, batch)

    def _score_batch(self, batch):
        return exact_scores(self.module_, self._last_hidden(batch))

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
                with _no_autocast(h.device):
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


def last_hidden(module, spec, batch):
    """Hidden state ``[B, d]`` (float32) that predicts the next item of each history row."""
    L = spec["max_seq_len"]
    masked = spec["objective"] == "masked"
    longest = int(np.diff(batch.indptr_host).max()) if batch.n_rows else 0
    width = max(1, min(longest, L - masked))
    items, keys, lengths, _ = build_sequences(batch.indptr, batch.indices, batch.values, width, pad=module.pad)
    gaps = time_gap_buckets(keys, lengths, N_GAP_BUCKETS) if spec["time_features"] else None
    if masked:  # append the mask token whose prediction is the next item
        items = torch.cat([items, torch.full_like(items[:, :1], module.pad)], dim=1)
        at_end = torch.arange(width + 1, device=items.device) == lengths.unsqueeze(1)
        items = torch.where(at_end, module.mask, items)
        if gaps is not None:
            gaps = torch.where(at_end, N_GAP_BUCKETS, torch.cat([gaps, torch.zeros_like(gaps[:, :1])], 1))
        lengths = lengths + 1
    else:
        lengths = lengths.clamp(min=1)  # an empty history reads one padding token
    with _autocast(items.device, spec["mixed_precision"]):
        h = module.encode(items, lengths, gaps)
    return h[torch.arange(h.shape[0], device=h.device), lengths - 1].float()  # [B, d]


def exact_scores(module, h):
    """Scores ``[B, n_items]`` of hidden states ``h`` in float32, with autocast turned off.

    Ranking reads them: bfloat16 scores (8-bit mantissa) would tie many items.
    """
    with _no_autocast(h.device):
        return module.scores(h.float())


def full_softmax_pieces(module, h, target, valid, budget=CE_ELEMENTS):
    """Mean full-softmax cross-entropy of the valid rows of ``h`` ``[N, d]``, in bounded pieces.

    :func:`~skrec.losses.linear_cross_entropy` over pieces of at most ``budget`` logits: memory never holds
    more than one piece's logits, and the pieces need no host synchronisation. On the CPU a
    cache-sized budget (:data:`CPU_CE_ELEMENTS`) makes the loss and its gradients 2-3 times
    faster than materialising every logit.

    Parameters
    ----------
    module : SequenceModule
    h : torch.Tensor of shape (N, d)
    target : torch.Tensor of int64, shape (N,)
    valid : torch.Tensor of bool, shape (N,)
        Which rows count; the mean runs over them.
    budget : int, default=CE_ELEMENTS
        Most logits one piece holds.

    Returns
    -------
    torch.Tensor
        0-d, float32.
    """
    targets = torch.where(valid, target, -100)
    rows = max(1, budget // max(module.n_items, 1))
    kind = h.device.type
    dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else h.dtype
    return linear_cross_entropy(h, module.output_weights(), targets, rows, dtype) / valid.sum().clamp(min=1)


class SequenceTrainer(GradientTrainer):
    """Sequences on the device, the causal or masked objective, and its negatives.

    Validation (with held-out last items): minus the NDCG@10 of the next-item ranking, full
    ranking with the history excluded.
    """

    def __init__(self, module, X, X_val, ratings, generator, spec, rows_per_batch, **options):
        super().__init__(module, generator, **options)
        self.spec, self.rows_per_batch = spec, rows_per_batch
        device = generator.device
        #: Most logits one piece of the full-softmax loss holds (see :func:`full_softmax_pieces`).
        self.ce_elements = CPU_CE_ELEMENTS if device.type == "cpu" else CE_ELEMENTS
        # Host reads are free on the CPU: each batch is cut to its longest sequence, and the
        # loss sees its real positions only. Elsewhere shapes stay fixed (no host sync).
        self.compact = device.type == "cpu"
        width = spec["max_seq_len"] + (spec["objective"] == "causal")  # inputs + the next item
        width = max(2, min(width, int(np.diff(X.indptr).max(initial=0))))  # no all-padding column
        D = DeviceCSR.from_scipy(X, device, dtype=torch.float64)  # exact Unix timestamps
        extra = None
        if ratings is not None:
            extra = torch.as_tensor(_values_at(ratings, X), dtype=torch.float32, device=device)
        items, keys, lengths, rated = build_sequences(D.indptr, D.indices, D.values, width, pad=module.pad,
                                                      extra=extra)
        keep = np.flatnonzero(np.minimum(np.diff(X.indptr), width) >= 2)
        if keep.size == 0:
            raise_invalid("X", "a matrix with at least one row of 2 or more interactions to learn from", "<none>")
        keep_t = torch.as_tensor(keep, device=device)
        self.items, self.lengths, self.n_samples = items[keep_t], lengths[keep_t], int(keep.size)
        self.gaps = time_gap_buckets(keys[keep_t], self.lengths, N_GAP_BUCKETS) if spec["time_features"] else None
        self.ratings = rated[keep_t] if rated is not None else None
        self.has_validation = X_val is not None
        if self.has_validation:
            self.val_hist, self.val_held = (DeviceCSR.from_scipy(part, device, dtype=torch.float64)
                                            for part in X_val)

    def loss(self, idx):
        m, s, generator = self.module, self.spec, self.generator
        items, lengths = self.items[idx], self.lengths[idx]
        gaps = self.gaps[idx] if self.gaps is not None else None
        ratings = self.ratings[idx] if self.ratings is not None else None
        compact = self.compact
        if compact:  # the longest sequence, rounded up to 8 so that a fit sees few shapes
            w = min(-(-int(lengths.max()) // 8) * 8, items.shape[1])
            items = items[:, :w]
            gaps = gaps[:, :w] if gaps is not None else None
            ratings = ratings[:, :w] if ratings is not None else None
        pad = m.pad
        with _autocast(items.device, s["mixed_precision"]):
            if s["objective"] == "causal":
                target = items[:, 1:]  # [B, L]
                valid = target != pad
                tokens = torch.where(valid, items[:, :-1], pad)
                h = m.encode(tokens, lengths - 1, gaps[:, :-1] if gaps is not None else None, generator)
                rating_target = ratings[:, 1:] if ratings is not None else None
            else:
                tokens, target, valid, gaps = self._mask_tokens(items, lengths, gaps)
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
            loss = self._item_loss(h, target, valid)
            if rating_target is not None and s["rating_weight"] > 0:
                err = (m.rating(h, torch.where(valid, target, 0)).float() - rating_target) ** 2
                loss = loss + s["rating_weight"] * (err * valid).sum() / valid.sum().clamp(min=1)
        return loss

    def _item_loss(self, h, target, valid):
        """The next-item loss of hidden states ``h`` ``[N, d]``; negatives drawn here."""
        m, s, generator = self.module, self.spec, self.generator
        if s["loss"] == "ce":
            return full_softmax_pieces(m, h, target, valid, self.ce_elements)
        W = m.output_weights()
        t = torch.where(valid, target, 0)
        pos = (h * W[t].to(h.dtype)).sum(-1)  # [N]
        if s["loss"] == "sampled":
            neg = torch.randint(m.n_items, (s["n_shared_negatives"],), generator=generator, device=h.device)
            return sampled_softmax_loss(pos, h @ W[neg].t().to(h.dtype), neg.unsqueeze(0) == t.unsqueeze(1), valid)
        # One uniform negative per position among the items other than the target (SASRec).
        neg = torch.randint(max(m.n_items - 1, 1), t.shape, generator=generator, device=h.device)
        neg = neg + (neg >= t).long()
        return bce_loss(pos.float(), (h * W[neg].to(h.dtype)).sum(-1).float(), valid)

    def _mask_tokens(self, items, lengths, gaps):
        """BERT4Rec cloze: which positions are masked, and the corrupted input."""
        m, generator = self.module, self.generator
        B, L = items.shape
        real = torch.arange(L, device=items.device) < lengths.unsqueeze(1)
        masked = (torch.rand((B, L), generator=generator, device=items.device) < self.spec["mask_prob"]) & real
        last = torch.arange(L, device=items.device) == (lengths - 1).unsqueeze(1)
        masked = masked | (last & ~masked.any(1, keepdim=True))  # at least one per sequence
        r = torch.rand((B, L), generator=generator, device=items.device)
        random_items = torch.randint(m.n_items, (B, L), generator=generator, device=items.device)
        tokens = torch.where(masked & (r < 0.8), m.mask, torch.where(masked & (r < 0.9), random_items, items))
        if gaps is not None:
            gaps = torch.where(masked, N_GAP_BUCKETS, gaps)  # the gap of a hidden item is unknown
        return tokens, items, masked, gaps

    def validation_loss(self):
        """Minus NDCG@10 of the held-out next item (full ranking, history excluded)."""
        hist_all, held_all = self.val_hist, self.val_held
        total = torch.zeros((), device=hist_all.indices.device)
        for start in range(0, hist_all.n_rows, self.rows_per_batch):
            stop = min(start + self.rows_per_batch, hist_all.n_rows)
            hist = hist_all.slice_rows(start, stop)
            scores = exact_scores(self.module, last_hidden(self.module, self.spec, hist))
            part, _ = ndcg_on_device(scores, held_all.slice_rows(start, stop), 10, exclude=hist)
            total = total + part
        return -total / max(hist_all.n_rows, 1)


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
