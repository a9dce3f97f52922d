"""BPRRanker: Bayesian personalized ranking with matrix factorization (Rendle et al., 2009)."""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from .._torch import DeviceCSR, GradientTrainer, make_generator, pairwise_fold_in, ridge_fold_in
from ..base import TorchRecommender, register, store_params
from ..sampling import AdaptiveNegatives, sample_negatives
from ..utils.validation import raise_invalid
from ._base import FactorMixin, sum_of_squares

__all__ = ["BPRRanker", "BPRModule", "PairLoss", "FOLD_IN_NEGATIVES", "ADAPTIVE_FOLD_IN_NEGATIVES"]

#: Size of the fixed negative sample of the gradient fold-in: catalogues of at most this
#: many items compare each history with every item.
FOLD_IN_NEGATIVES = 512

#: The same with ``negatives="adaptive"``: the fold-in then weights each negative by the
#: sampler's probability for the row, which concentrates on the row's hardest items, and a
#: small uniform sample misses most of them.
ADAPTIVE_FOLD_IN_NEGATIVES = 4096


class BPRModule(nn.Module):
    """``s(u, i) = p_u · q_i + b_i`` — the math only, no device and no data.

    Parameters
    ----------
    n_users, n_items, n_factors : int
    sparse : bool, default=False
        Embeddings return sparse gradients (for ``torch.optim.SparseAdam``).

    Examples
    --------
    >>> m = BPRModule(2, 3, 4)
    >>> m(torch.tensor([0, 1]), torch.tensor([[2, 0], [1, 1]])).shape
    torch.Size([2, 2])
    """

    def __init__(self, n_users, n_items, n_factors, *, sparse=False):
        super().__init__()
        self.user_factors = nn.Embedding(n_users, n_factors, sparse=sparse)
        self.item_factors = nn.Embedding(n_items, n_factors, sparse=sparse)
        self.item_bias = nn.Embedding(n_items, 1, sparse=sparse)

    def forward(self, users, items):
        """Scores ``[B, K]`` of users ``[B]`` (indices) for items ``[B, K]``."""
        return self.score(self.user_factors(users), items)

    def score(self, user_vectors, items):
        """Scores ``[B, K]`` of user vectors ``[B, d]`` for item indices ``[B, K]``."""
        q = self.item_factors(items)  # [B, K, d]
        return torch.einsum("bd,bkd->bk", user_vectors, q) + self.item_bias(items).squeeze(-1)

    def score_all(self, user_vectors):
        """Scores ``[B, n_items]`` of user vectors ``[B, d]`` for every item."""
        return user_vectors @ self.item_factors.weight.T + self.item_bias.weight.T

    def pair_loss(self, users, positives, negatives, weights=None, alpha=0.0, workspace=None):
        """BPR's mini-batch objective: :func:`~skrec.losses.bpr_loss` plus ``alpha`` times the L2
        of the rows touched.

        The penalty is ``|p_u|² + |q_i|² + b_i² + mean_j (|q_j|² + b_j²)`` per sample (BPR's
        per-sample regularisation). :class:`PairLoss` computes the loss and the gradients of
        the three tables directly.

        Parameters
        ----------
        users, positives : torch.Tensor of int64, shape (B,)
        negatives : torch.Tensor of int64, shape (B, K)
        weights : torch.Tensor of shape (B,), optional
            Confidence of each positive.
        alpha : float or (float, float)
            One L2 strength, or ``(alpha, negative_alpha)``: the first for ``p_u``, ``q_i``,
            ``b_i``, the second for the negatives' rows.
        workspace : dict, optional
            Keeps the ``[B·K, d]`` gather of the negatives' rows from one call to the next
            (a training loop passes the same dict every step, each backward before the next
            forward; autograd refuses a backward whose buffer was overwritten); a fresh tensor
            each call when ``None``.

        Returns
        -------
        torch.Tensor
            Scalar.

        Examples
        --------
        >>> m = BPRModule(3, 5, 2)
        >>> loss = m.pair_loss(torch.tensor([0, 2]), torch.tensor([1, 4]), torch.tensor([[0, 3], [2, 2]]))
        >>> loss.backward()
        >>> m.item_factors.weight.grad.shape
        torch.Size([5, 2])
        """
        return PairLoss.apply(self.user_factors.weight, self.item_factors.weight, self.item_bias.weight,
                              users, positives, negatives, weights,
                              tuple(map(float, alpha)) if isinstance(alpha, tuple) else float(alpha),
                              self.item_factors.sparse, workspace)


class PairLoss(torch.autograd.Function):
    """``mean_b w_b mean_k softplus(s_bk - s_b) + alpha * mean_b(penalty_b)`` from the tables, by hand.

    ``alpha`` may be a pair ``(alpha, negative_alpha)``: the second weighs the negatives' part
    of the penalty.

    ``s_b = p_b·q_b + c_b`` (positive), ``s_bk = p_b·q_bk + c_bk`` (negatives). Autograd
    through three embedding lookups squares, sums and differentiates the gathered ``[B, K, d]``
    negative rows in separate kernels, allocates each ``[B, K, d]`` tensor afresh (tens of MB,
    page-faulted in on every step) and scatters their gradient back row by row. Here the
    negatives' rows are gathered once into a reused buffer, and the item table's gradient
    from the negatives is one sparse product, ``G P`` with ``G[j, b] = Σ_k [j_bk = j] g_bk``,
    plus ``(2 alpha / (B K)) n_j q_j`` for the penalty (``n_j``: how often ``j`` was drawn), so
    no ``[B, K, d]`` gradient is ever formed. Sparse embeddings (``sparse_adam``) receive the
    same gradients restricted to the rows the batch touched.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> P, Q, c = torch.randn(4, 2, generator=g), torch.randn(6, 2, generator=g), torch.randn(6, 1, generator=g)
    >>> u, i, j = torch.tensor([0, 3]), torch.tensor([1, 5]), torch.tensor([[2, 4, 0], [1, 1, 3]])
    >>> from skrec.losses import bpr_loss
    >>> p, qi, qj = P[u], Q[i], Q[j]
    >>> pos, neg = (p * qi).sum(-1) + c[i, 0], torch.einsum("bd,bkd->bk", p, qj) + c[j, 0]
    >>> reg = (p**2).sum(-1) + (qi**2).sum(-1) + c[i, 0]**2 + (qj**2).sum(-1).mean(1) + (c[j, 0]**2).mean(1)
    >>> expected = bpr_loss(pos, neg) + 0.1 * reg.mean()
    >>> torch.allclose(PairLoss.apply(P, Q, c, u, i, j, None, 0.1, False, None), expected)
    True
    """

    @staticmethod
    def forward(ctx, P, Q, bias, users, positives, negatives, weights, alpha, sparse, workspace):
        B, K = negatives.shape
        d = Q.shape[1]
        flat = negatives.reshape(-1)
        p, qi, c = P.index_select(0, users), Q.index_select(0, positives), bias[:, 0]
        qj = gather_rows_into(workspace, "negatives", Q, flat).view(B, K, d)
        bi, bj = c[positives], c[negatives]
        pos = torch.linalg.vecdot(p, qi) + bi  # [B]
        gap = torch.baddbmm(bj.unsqueeze(-1), qj, p.unsqueeze(-1)).squeeze(-1) - pos.unsqueeze(1)  # [B, K]
        per = torch.nn.functional.softplus(gap).mean(1)
        if weights is not None:
            per = per * weights
        alpha, negative_alpha = alpha if isinstance(alpha, tuple) else (alpha, alpha)
        penalty = alpha * sum_of_squares(p, qi, bi) + negative_alpha * sum_of_squares(qj, bj) / K
        ctx.save_for_backward(P, Q, bias, users, positives, negatives, p, qi, qj, gap, weights)
        ctx.alpha, ctx.negative_alpha, ctx.sparse = alpha, negative_alpha, sparse
        return per.mean() + penalty / B

    @staticmethod
    def backward(ctx, grad):
        P, Q, bias, users, positives, negatives, p, qi, qj, gap, weights = ctx.saved_tensors
        B, K = negatives.shape
        flat = negatives.reshape(-1)
        g = torch.sigmoid(gap) * (grad / (B * K))  # d loss / d s_bk
        if weights is not None:
            g = g * weights.unsqueeze(1)
        rate = 2.0 * ctx.alpha * grad / B  # the penalty's gradient factor per sample
        rate_neg = 2.0 * ctx.negative_alpha * grad / B
        g_pos = -g.sum(1)  # d loss / d s_b
        # K == 1: a batched [1, 1] x [1, d] product is several times slower than the elementwise
        # form, and addcmul with a [B, 1] factor broadcast over d several times slower than mul, add
        if K == 1:
            dp = (qj[:, 0] * g).add_(qi * g_pos.unsqueeze(1)).add_(p * rate)
        else:
            dp = torch.baddbmm(p.unsqueeze(1), g.unsqueeze(1), qj, beta=rate).squeeze(1).add_(qi * g_pos.unsqueeze(1))
        dP = torch.zeros_like(P).index_add_(0, users, dp)
        dQ = torch.zeros_like(Q).index_add_(0, positives, (p * g_pos.unsqueeze(1)).add_(qi * rate))
        sample = torch.arange(B, device=p.device).repeat_interleave(K)
        G = torch.sparse_coo_tensor(torch.stack([flat, sample]), g.reshape(-1), (Q.shape[0], B), check_invariants=False)
        dQ += torch.sparse.mm(G, p)
        counts = torch.bincount(flat, minlength=Q.shape[0]).to(Q.dtype)
        dQ.addcmul_(Q, counts.unsqueeze(1), value=rate_neg / K)
        c = bias[:, 0]
        dc = torch.zeros_like(c).index_add_(0, positives, g_pos + rate * c[positives])
        dc.index_add_(0, flat, g.reshape(-1)).add_(counts * c, alpha=rate_neg / K)
        grads = [dP, dQ, dc.unsqueeze(1)]
        if ctx.sparse:  # SparseAdam: only the rows this batch touched
            grads = [_rows_sparse(dP, users), _rows_sparse(dQ, torch.cat([positives, flat])),
                     _rows_sparse(grads[2], torch.cat([positives, flat]))]
        return (*grads, None, None, None, None, None, None, None)


def gather_rows_into(workspace, key, table, index):
    """``table[index]`` (rows), written into ``workspace[key]``, a buffer kept from call to call.

    A fresh tensor of tens of MB per step costs more in page faults than the gather itself;
    with ``workspace=None`` the gather returns a fresh tensor.

    Examples
    --------
    >>> work = {}
    >>> gather_rows_into(work, "rows", torch.eye(3), torch.tensor([2, 0])).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    >>> work["rows"].numel()
    6
    """
    if workspace is None:
        return table.index_select(0, index)
    n, d = index.shape[0], table.shape[1]
    buffer = workspace.get(key)
    if buffer is None or buffer.numel() < n * d or buffer.dtype != table.dtype or buffer.device != table.device:
        buffer = workspace[key] = torch.empty(n * d, dtype=table.dtype, device=table.device)
    return torch.index_select(table, 0, index, out=buffer[:n * d].view(n, d))


def _rows_sparse(dense, rows):
    rows = torch.unique(rows)
    return torch.sparse_coo_tensor(rows.unsqueeze(0), dense[rows], dense.shape, check_invariants=False).coalesce()


class BPRTrainer(GradientTrainer):
    """BPR's fit-time state: positives on the device, the negative sampler, the batch loss.

    Validation (with ``X_val``): the mean BPR loss of the held-out positives against
    negatives drawn the same way every epoch.
    """

    def __init__(self, module, X_full, X, X_val, generator, spec, **options):
        super().__init__(module, generator, **options)
        device = generator.device
        self.spec = spec
        self.workspace = {}  # PairLoss's reused gather buffer
        self.weight_scale = float(X_full.data.mean()) if spec["confidence"] else 1.0
        self.probabilities = None
        self.adaptive = AdaptiveNegatives(spec["adaptive_rank"]) if spec["negatives"] == "adaptive" else None
        if spec["negatives"] == "popularity":
            counts = np.bincount(X_full.indices, minlength=X_full.shape[1]).astype(np.float64)
            self.probabilities = torch.as_tensor(counts / counts.sum(), dtype=torch.float32, device=device)
        self.train = self._data(X, X, device)
        self.n_samples = self.train["n"]
        self.has_validation = X_val is not None
        if self.has_validation:
            self.val = self._data(X_val, X_full, device)  # validation negatives avoid every known positive
            self.validation_samples = self.val["n"]

    def _data(self, X, positives, device):
        D = DeviceCSR.from_scipy(X, device)
        users, items, values = D.coo()
        weights = values / self.weight_scale if self.spec["confidence"] else None
        exclude = (D if positives is X else DeviceCSR.from_scipy(positives, device)) if self.spec[
            "exclude_positives"] else None
        return {"users": users, "items": items, "weights": weights, "n": int(X.nnz), "exclude": exclude}

    def _batch_loss(self, data, idx, generator):
        spec = self.spec
        u, i = data["users"][idx], data["items"][idx]  # [B]
        M = spec["n_candidates"]
        K = spec["n_negatives"] * M
        if self.adaptive is not None:
            if self.adaptive.due(K * u.shape[0]) if data is self.train else self.adaptive.order is None:
                self.adaptive.refresh(self.module.item_factors.weight.detach())
            j = self.adaptive.sample(self.module.user_factors.weight.detach().index_select(0, u), generator,
                                     n_negatives=K, users=u, exclude=data["exclude"])
        else:
            j = sample_negatives(u, self.module.item_factors.num_embeddings, generator, n_negatives=K,
                                 probabilities=self.probabilities, exclude=data["exclude"])  # [B, K·M]
        if M > 1:
            j = self._hardest(u, j, M)  # [B, K]
        w = data["weights"][idx] if data["weights"] is not None else None
        alpha = spec["alpha"] if spec["negative_alpha"] is None else (spec["alpha"], spec["negative_alpha"])
        return self.module.pair_loss(u, i, j, w, alpha, workspace=self.workspace)

    @torch.no_grad()
    def _hardest(self, users, candidates, M):
        """Of each group of ``M`` candidates, the one the model scores highest (dynamic negative
        sampling): ``[B, K·M]`` -> ``[B, K]``."""
        m = self.module
        B = users.shape[0]
        flat = candidates.reshape(-1)
        q = gather_rows_into(self.workspace, "candidates", m.item_factors.weight, flat).view(B, flat.shape[0] // B, -1)
        bias = m.item_bias.weight[:, 0].index_select(0, flat).view(B, -1, 1)
        s = torch.baddbmm(bias, q, m.user_factors.weight.index_select(0, users).unsqueeze(-1)).view(B, -1, M)
        return candidates.view(B, -1, M).gather(2, s.argmax(2, keepdim=True)).squeeze(2)

    def loss(self, idx):
        return self._batch_loss(self.train, idx, self.generator)

    def validation_batch_loss(self, idx, generator):
        return self._batch_loss(self.val, idx, generator)

    def fitted_attributes(self):
        return {"_weight_scale": self.weight_scale, "_probabilities": self.probabilities}


@register
class BPRRanker(FactorMixin, TorchRecommender):
    """Matrix factorization trained with the BPR pairwise ranking loss.

    Each positive ``(u, i)`` of ``X`` is paired with ``n_negatives`` items ``j`` drawn on the
    device for the whole batch, and the model learns to score ``i`` above ``j``. Any stored
    value is a positive; values may also weight the loss (``confidence=True``). A history
    row, seen in ``fit`` or not, is folded in with the item side frozen, so the model serves
    new users exactly as it serves training users.

    The defaults — 128 factors, ``alpha=0.005`` with three times that on the negatives'
    rows, 8 adaptive negatives per positive at a mean rank of a tenth of the catalogue,
    30 epochs — are the configuration chosen on the validation users of MovieLens-1M
    (``python -m benchmarks study bpr-ml1m-adaptive``),
    checked against the former uniform 80-epoch recipe on MovieLens-100k and MovieLens
    latest-small; the sampled loss is too noisy to stop on, so the epoch count is fixed.

    Parameters
    ----------
    n_factors : int, default=128
        Dimension of the user and item factors.
    alpha : float, default=0.005
        L2 strength on the factors and biases a sample touches (the per-sample penalty of
        the BPR paper), also applied to the folded-in user vectors.
    negative_alpha : float or None, default=0.015
        L2 strength on the negatives' rows (``None``: ``alpha``). Adaptive negatives draw
        the items a user scores highest far more often than the rest, so their penalty can
        be set apart from the positives' (as in "Revisiting BPR", Milogradskii et al., 2024).
    n_negatives : int, default=8
        Negatives per positive; the loss averages over them.
    negatives : {"uniform", "popularity", "adaptive"}, default="adaptive"
        Draw negatives uniformly, proportionally to the items' training counts, or
        adaptively: the items the current model ranks high for the user, by a rank drawn
        along one factor (Rendle & Freudenthaler, 2014; see ``adaptive_rank``).
    adaptive_rank : float in (0, 1], default=0.1
        With ``negatives="adaptive"``: the mean rank of a draw along its factor, as a
        fraction of the catalogue (geometric ranks). Smaller draws harder negatives.
    n_candidates : int, default=1
        Dynamic negative sampling (Zhang et al., 2013): draw this many candidates per
        negative, as ``negatives`` says, and train on the one the model currently scores
        highest. ``1`` keeps every draw (plain BPR).
    exclude_positives : bool, default=True
        Never draw a negative among the user's positives: exact for ``"uniform"`` (a
        ``searchsorted`` rank shift), bulk redraw rounds for ``"popularity"``.
    confidence : bool, default=False
        Weight each positive's loss by its value in ``X`` (normalised to mean 1 over the
        training interactions); values must then be >= 0.
    fold_in : {"gradient", "ridge"}, default="gradient"
        How a history row becomes a user vector. ``"ridge"``: the least-squares projection
        ``argmin_u Σ_{i∈H} (1 - u·q_i)² + fold_in_alpha |u|²``. ``"gradient"``: that
        projection refined by ``fold_in_steps`` full-batch Adam steps on the BPR loss of the
        row with the items frozen (the user embeddings retrained alone). See Notes.
    fold_in_alpha : float, default=10.0
        L2 strength of the ridge projection.
    fold_in_steps : int, default=30
        Adam steps of the gradient fold-in.
    fold_in_learning_rate : float, default=0.05
        Adam's learning rate in the gradient fold-in.
    init_std : float, default=0.1
        Standard deviation of the initial factors (biases start at 0).
    optimizer : {"adam", "adamw", "adagrad", "sgd", "sparse_adam"}, default="adam"
        ``"sparse_adam"`` makes the embeddings return sparse gradients and trains them with
        :class:`torch.optim.SparseAdam` (lazy Adam: only the touched rows move).
    learning_rate : float, default=0.01
    batch_size : int, default=16384
        Positives per batch.
    max_iter : int, default=30
        Epochs (one pass over the positives).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the positives; stop when their BPR loss stops
        improving, restore the best epoch.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
    tol : float, default=1e-4
    lr_schedule : {None, "cosine", "triangular"}, default=None
    lr_cycle : int, default=2
    checkpoint_every : int, default=0
    checkpoint_path : str, optional
    warm_start : bool, default=False
    device : str, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the initial factors, batch order, negatives and the fold-in negatives.
    verbose : int, default=0

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users_, n_factors)
        Factors learned for the training rows (``transform`` folds rows in instead).
    item_factors_ : ndarray of shape (n_items_, n_factors)
    item_bias_ : ndarray of shape (n_items_,)
    n_users_, n_items_ : int
    n_iter_ : int
    history_ : list of dict
    device_ : torch.device

    Notes
    -----
    Objective, over positives ``(u, i)`` with weights ``w`` and negatives ``j`` drawn per
    positive, scores ``s(u, i) = p_u·q_i + b_i``:

    .. math:: \\sum_{(u,i)} w_{ui} \\frac{1}{K} \\sum_{k=1}^{K} -\\log\\sigma(s(u,i) - s(u,j_k))
              + \\alpha (|p_u|^2 + |q_i|^2 + b_i^2)
              + \\alpha_- \\tfrac{1}{K}\\sum_k (|q_{j_k}|^2 + b_{j_k}^2)

    with :math:`\\alpha_-` = ``negative_alpha`` (``alpha`` when ``None``).

    Fold-in (used by ``predict``/``recommend``/``transform`` for every row, training rows
    included — the model is inductive): the ridge projection gives the direction of the
    history in item space, but not the scale of ``u`` relative to the item biases, which
    the ranking loss decides. The gradient fold-in minimises the row's own BPR loss —
    every history item against a fixed sample of 512 negatives drawn once per model from
    the training distribution (every item, weighted by it, in catalogues of at most 512),
    history items excluded when ``exclude_positives`` — plus ``alpha |u|²``, starting
    from the ridge projection. It is the default because it ranked the held-out items of
    validation users never seen in ``fit`` clearly better than the projection alone, with
    any ``fold_in_alpha`` tried (MovieLens-1M positives, strong generalization; the figures
    are in ``benchmarks/results/bpr_quality.md``). Each row is solved independently: its
    vector never depends on the other rows passed with it.

    Adaptive negatives (``negatives="adaptive"``): the per-factor item orders are refreshed
    from the current item table every ``n_items · log(n_items)`` drawn negatives (every
    step at the default batch size on catalogues up to some 14k items), and a draw that is
    one of the user's positives is replaced by a uniform non-positive. The fold-in then
    minimises the loss the training minimised: each negative is weighted by the sampler's
    probability of drawing it for the row's current vector, over every item in catalogues
    of at most 4,096 (a fixed draw of 4,096 items in larger ones). The weights concentrate
    on the row's hardest items, which a small uniform sample misses; this costs about
    3 times the uniform fold-in on MovieLens-1M.

    The Adam state is dense (``"adam"``): rows the batch did not touch still move with
    their momentum. ``"sparse_adam"`` updates only the touched rows.

    Examples
    --------
    >>> from skrec.datasets import make_interactions
    >>> from skrec.factorization import BPRRanker
    >>> X = make_interactions(60, 30, n_clusters=3, density=0.2, random_state=0).X
    >>> model = BPRRanker(n_factors=8, max_iter=5, batch_size=256, random_state=0).fit(X)
    >>> ids, scores = model.recommend(X[:2], k=3)
    >>> ids.shape, model.transform(X[:2]).shape
    ((2, 3), (2, 8))
    >>> model.similar_items([0, 1], k=2)[0].shape
    (2, 2)
    """

    _param_specs = dict(
        TorchRecommender._param_specs,
        n_factors=dict(kind="int", low=1),
        alpha=dict(kind="float", low=0),
        negative_alpha=dict(kind="float", low=0, allow_none=True),
        n_negatives=dict(kind="int", low=1),
        negatives=dict(kind="str", options=("uniform", "popularity", "adaptive")),
        adaptive_rank=dict(kind="float", low=0, low_inclusive=False, high=1),
        n_candidates=dict(kind="int", low=1),
        exclude_positives=dict(kind="bool"),
        confidence=dict(kind="bool"),
        fold_in=dict(kind="str", options=("gradient", "ridge")),
        fold_in_alpha=dict(kind="float", low=0, low_inclusive=False),
        fold_in_steps=dict(kind="int", low=1),
        fold_in_learning_rate=dict(kind="float", low=0, low_inclusive=False),
        init_std=dict(kind="float", low=0),
    )
    _factor_names = {"user_factors_": "user_factors.weight", "item_factors_": "item_factors.weight",
                     "item_bias_": "item_bias.weight"}
    _structure = ("n_factors", "sparse_gradients")

    def __init__(self, n_factors=128, *, alpha=0.005, negative_alpha=0.015, n_negatives=8, negatives="adaptive",
                 adaptive_rank=0.1, n_candidates=1, exclude_positives=True, confidence=False, fold_in="gradient",
                 fold_in_alpha=10.0, fold_in_steps=30, fold_in_learning_rate=0.05, init_std=0.1, optimizer="adam",
                 learning_rate=0.01, batch_size=16384, max_iter=30, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, tol=1e-4, lr_schedule=None, lr_cycle=2, checkpoint_every=0, checkpoint_path=None,
                 warm_start=False, device="auto", random_state=None, verbose=0):
        store_params(self, locals())

    @classmethod
    def _test_instances(cls):
        return [
            cls(n_factors=8, max_iter=6, batch_size=128, learning_rate=0.05, fold_in_steps=5),
            cls(n_factors=4, max_iter=4, batch_size=128, learning_rate=0.05, fold_in_steps=3, negatives="adaptive",
                adaptive_rank=0.2, early_stopping=True),
            cls(n_factors=4, max_iter=4, batch_size=128, learning_rate=0.05, fold_in="ridge",
                negatives="popularity", n_negatives=2, n_candidates=3, confidence=True, optimizer="sparse_adam"),
        ]

    # ------------------------------------------------------------------- fit
    def _fit_spec(self, **fit_params):
        return dict(super()._fit_spec(), sparse_gradients=self.optimizer == "sparse_adam")

    def _make_trainer(self, X, *, generator, seed, warm, previous=None):
        spec = self._spec
        self._refuse_negative_confidences(X, "X")
        X_train, X_val = self._split(X, self._seed)
        module = self.module_ if warm else self._build_module(X_train, generator)
        return BPRTrainer(module, X, X_train, X_val, generator, spec, validation_seed=seed + 1,
                          **self._gradient_options(warm))

    def _build_module(self, X, generator):
        spec = self._spec
        module = BPRModule(*X.shape, spec["n_factors"], sparse=spec["optimizer"] == "sparse_adam").to(self.device_)
        with torch.no_grad():
            for emb in (module.user_factors, module.item_factors):
                w = torch.randn(emb.weight.shape, generator=generator, device=generator.device)
                emb.weight.copy_(w * spec["init_std"])
            module.item_bias.weight.zero_()
        return module

    # ------------------------------------------------------------- fold-in
    def _history_weights(self, batch):
        return batch.values / self._weight_scale if self._spec["confidence"] else None

    def _fold_in(self, batch):
        """User vector of each history row, ``[B, n_factors]``."""
        m, spec = self.module_, self._spec
        Q = m.item_factors.weight.detach()
        weights = self._history_weights(batch)
        users = ridge_fold_in(batch, Q, torch.ones_like(batch.values), spec["fold_in_alpha"], weights=weights)
        if spec["fold_in"] == "gradient":
            negatives, omega = self._fold_in_negatives()
            users = pairwise_fold_in(batch, users, Q, m.item_bias.weight.detach()[:, 0], negatives, alpha=spec["alpha"],
                                     negative_weights=omega, weights=weights,
                                     exclude_positives=spec["exclude_positives"], n_steps=spec["fold_in_steps"],
                                     learning_rate=spec["fold_in_learning_rate"])
        return users

    def _refuse_negative_confidences(self, X, name):
        if self._spec["confidence"] and X.nnz and X.data.min() < 0:
            raise_invalid(name, "non-negative values when confidence=True", f"<minimum value {X.data.min():g}>")

    def _validate_rows(self, X, name="X"):
        X = super()._validate_rows(X, name)
        self._refuse_negative_confidences(X, name)  # as fit does
        return X

    def _fold_in_negatives(self):
        """The negatives of the gradient fold-in and their weights (the same for every call).

        Catalogues of at most :data:`FOLD_IN_NEGATIVES` items (:data:`ADAPTIVE_FOLD_IN_NEGATIVES`
        with adaptive negatives) use every item, weighted by the training negative
        distribution; larger ones a fixed draw of that many items. The draw is made on the
        CPU, so a model predicts the same on every device. With adaptive negatives the
        weights are a function of the current user vectors: the sampler's distribution for
        each row, from the fitted item factors' ranks.
        """
        n, p = self.n_items_, self._probabilities
        adaptive = self._spec["negatives"] == "adaptive"
        m = ADAPTIVE_FOLD_IN_NEGATIVES if adaptive else FOLD_IN_NEGATIVES
        if n <= m:
            S = torch.arange(n, device=self.device_)
            omega = torch.ones(n, device=self.device_) if p is None else p * n
        else:
            g = make_generator(self._seed + 1_000_003, torch.device("cpu"))
            S = (torch.randint(n, (m,), generator=g) if p is None
                 else torch.multinomial(p.cpu(), m, replacement=True, generator=g)).to(self.device_)
            omega = torch.ones(m, device=self.device_)
        if adaptive:
            sampler = AdaptiveNegatives(self._spec["adaptive_rank"]).refresh(self.module_.item_factors.weight.detach())
            tables = sampler.rank_probabilities(S)
            omega = functools.partial(sampler.probabilities, tables=tables)
        return S, omega

    def _score_batch(self, batch):
        return self.module_.score_all(self._fold_in(batch))  # [B, n_items]

    def _transform_batch(self, batch):
        return self._fold_in(batch)  # [B, n_factors]
