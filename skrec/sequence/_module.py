"""The transformer over item sequences (math only: no device, no data) and its losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SequenceModule"]

N_GAP_BUCKETS = 64


def _dropout(x, p, generator):
    """Inverted dropout drawn from ``generator`` (``F.dropout`` only reads the global RNG)."""
    if generator is None or p <= 0:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep.to(x.dtype) / (1 - p)


def _fused(device, needs_grad, p, generator):
    """Whether attention runs as one fused ``scaled_dot_product_attention`` kernel.

    Not with dropout drawn from ``generator`` (the fused kernels only read the global RNG),
    nor for a backward pass on CUDA under ``torch.use_deterministic_algorithms(True)``: the
    flash and memory-efficient backwards accumulate the query gradient atomically, in an
    order that changes from run to run.
    """
    if generator is not None and p > 0:
        return False
    return not (needs_grad and device.type == "cuda" and torch.are_deterministic_algorithms_enabled())


def _attention(q, k, v, attn_mask, causal, p, generator):
    """Scaled dot-product attention ``[B, H, L, dh]``, with dropout ``p`` on its weights.

    Without dropout it is ``scaled_dot_product_attention`` (flash attention on the GPU);
    with dropout the weights are materialised so that the mask is drawn from ``generator``
    (the fused kernels only read the global RNG), and so they are for a deterministic
    backward pass on CUDA (see :func:`_fused`).
    """
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    if _fused(q.device, needs_grad, p, generator):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=causal)
    L = q.shape[-2]
    s = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    if causal:
        s = s.masked_fill(~torch.ones(L, L, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf"))
    return _dropout(s.softmax(-1), p, generator) @ v


class _Block(nn.Module):
    """SASRec's block: ``y = LN(x) + Attn(q=LN(x), k=v=x)``, then ``LN(y) + FFN(LN(y))``.

    Only the queries are normalised and the residual stream is re-normalised before the
    feed-forward layer (Kang & McAuley's reference code, not the pre-norm transformer).
    """

    def __init__(self, d, n_heads, ff_dim):
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, ff_dim)
        self.ff2 = nn.Linear(ff_dim, d)

    def forward(self, x, attn_mask, causal, p, generator):
        B, L, D = x.shape
        H = self.n_heads
        q_in = self.norm1(x)
        w_q, w_kv = self.qkv.weight.split((D, 2 * D))
        b_q, b_kv = self.qkv.bias.split((D, 2 * D))
        q = F.linear(q_in, w_q, b_q).view(B, L, H, D // H).transpose(1, 2)
        k, v = F.linear(x, w_kv, b_kv).view(B, L, 2, H, D // H).permute(2, 0, 3, 1, 4)
        a = _attention(q, k, v, attn_mask, causal, p, generator)  # [B, H, L, dh]
        x = self.norm2(q_in + self.out(a.transpose(1, 2).reshape(B, L, D)))
        h = _dropout(F.relu(self.ff1(x)), p, generator)
        return x + _dropout(self.ff2(h), p, generator)


class SequenceModule(nn.Module):
    """Item sequence → hidden states → scores of every item (SASRec / BERT4Rec shape).

    Token ids are item indices ``0 … n_items - 1``, then ``pad = n_items`` and
    ``mask = n_items + 1``. Input item vectors are scaled by ``sqrt(d)`` before the position
    vectors are added (SASRec); scores use the unscaled table. Position ids count from the
    end of the sequence (the latest item always has position ``max_seq_len - 1``), so a
    sequence's output does not depend on how much padding its batch carries.

    Parameters
    ----------
    n_items : int
    max_seq_len : int
    d : int
        Model width.
    n_layers, n_heads : int
    ff_dim : int
        Hidden width of the feed-forward layers.
    dropout : float
    causal : bool
        Causal self-attention (each position sees itself and earlier ones) or
        bidirectional attention over the non-padding positions.
    tied : bool
        Score items with the input item embeddings or with a separate table.
    time_features : bool
        Add an embedding of the log-bucketed gap to the previous item.
    rating_head : bool
        Also predict the rating of an item from a hidden state.

    Examples
    --------
    >>> m = SequenceModule(5, 4, 8, 1, 2, 8, 0.0, causal=True, tied=True)
    >>> h = m.encode(torch.tensor([[0, 3, 5, 5]]), torch.tensor([2]))
    >>> h.shape, m.scores(h).shape
    (torch.Size([1, 4, 8]), torch.Size([1, 4, 5]))
    """

    def __init__(self, n_items, max_seq_len, d, n_layers, n_heads, ff_dim, dropout, *, causal, tied,
                 time_features=False, rating_head=False):
        super().__init__()
        self.n_items, self.max_seq_len, self.causal, self.tied, self.p = n_items, max_seq_len, causal, tied, dropout
        self.pad, self.mask = n_items, n_items + 1
        self.item_emb = nn.Embedding(n_items + 2, d, padding_idx=n_items)
        self.pos_emb = nn.Embedding(max_seq_len, d)
        self.gap_emb = nn.Embedding(N_GAP_BUCKETS + 1, d) if time_features else None
        self.blocks = nn.ModuleList([_Block(d, n_heads, ff_dim) for _ in range(n_layers)])
        self.norm = nn.LayerNorm(d)
        self.out_emb = None if tied else nn.Embedding(n_items, d)
        if rating_head:
            self.rating_proj = nn.Linear(d, d)
            self.rating_bias = nn.Parameter(torch.zeros(n_items))
            self.register_buffer("rating_mean", torch.zeros(()))
        else:
            self.rating_proj = None
        for emb in (self.item_emb, self.pos_emb, self.gap_emb, self.out_emb):
            if emb is not None:
                nn.init.xavier_normal_(emb.weight)
        with torch.no_grad():
            self.item_emb.weight[self.pad].zero_()

    def output_weights(self):
        """``[n_items, d]`` item vectors used for scoring."""
        return self.item_emb.weight[: self.n_items] if self.tied else self.out_emb.weight

    def encode(self, tokens, lengths, gaps=None, generator=None):
        """Hidden states ``[B, L, d]`` of right-padded token sequences.

        ``lengths[b]`` is the number of real tokens of row ``b`` (at least 1); ``gaps`` the
        time-gap buckets; ``generator`` enables dropout (training).
        """
        B, L = tokens.shape
        pos = torch.arange(L, device=tokens.device)
        real = pos < lengths.unsqueeze(1)  # [B, L]
        pos_ids = torch.where(real, self.max_seq_len - lengths.unsqueeze(1) + pos, 0)
        x = self.item_emb(tokens) * self.item_emb.embedding_dim ** 0.5 + self.pos_emb(pos_ids)  # [B, L, d]
        if self.gap_emb is not None and gaps is not None:
            x = x + self.gap_emb(gaps)
        p = self.p if (self.training and generator is not None) else 0.0
        x = _dropout(x, p, generator)
        # Causal: right padding means a real position never sees a padded one, and every row
        # of the attention matrix keeps at least its diagonal — no key-padding mask is needed
        # (a fully masked row yields NaN in some CUDA kernels). Bidirectional: padded keys
        # are masked; each row still sees its real tokens (at least one).
        attn_mask = None if self.causal else real[:, None, None, :]  # [B, 1, 1, L]
        for block in self.blocks:
            x = block(x, attn_mask, self.causal, p, generator)
        return self.norm(x)

    def scores(self, h):
        """Scores ``[..., n_items]`` of every item from hidden states ``[..., d]``."""
        return h @ self.output_weights().t().to(h.dtype)

    def rating(self, h, items=None):
        """Predicted ratings: of ``items`` (same leading shape as ``h[..., 0]``) or of all items."""
        z = self.rating_proj(h)
        W = self.output_weights()
        if items is None:
            return z @ W.t().to(z.dtype) + self.rating_bias + self.rating_mean
        return (z * W[items].to(z.dtype)).sum(-1) + self.rating_bias[items] + self.rating_mean
