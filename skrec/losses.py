"""Losses shared by the models: pure functions of scores, targets and negatives passed in.

Nothing here draws samples or holds state; a trainer draws its negatives (see
:mod:`skrec.sampling`) and calls these.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .utils.validation import raise_invalid

__all__ = ["bpr_loss", "bce_loss", "mse_loss", "multinomial_loss", "kl_divergence", "full_softmax_loss",
           "linear_cross_entropy", "LinearCrossEntropy", "sampled_softmax_loss", "reconstruction_loss"]


def bpr_loss(pos, neg, weights=None):
    """BPR (Rendle et al., 2009): mean of ``-log σ(pos - neg)`` over the negatives.

    Parameters
    ----------
    pos : torch.Tensor of shape (B,)
        Scores of the positives.
    neg : torch.Tensor of shape (B, K)
        Scores of their ``K`` negatives.
    weights : torch.Tensor of shape (B,), optional
        Confidence of each positive.

    Returns
    -------
    torch.Tensor
        Scalar: the (weighted) mean over the batch.

    Examples
    --------
    >>> round(float(bpr_loss(torch.zeros(2), torch.zeros(2, 1))), 4)  # log 2
    0.6931
    """
    per = F.softplus(neg - pos.unsqueeze(1)).mean(1)  # [B]
    if weights is not None:
        per = per * weights
    return per.mean()


def bce_loss(pos, neg, valid=None):
    """Sigmoid cross-entropy: positives towards 1, negatives towards 0 (SASRec's loss).

    Parameters
    ----------
    pos : torch.Tensor of shape (N,)
        Scores (logits) of the positives.
    neg : torch.Tensor of shape (N,) or (N, K)
        Scores of their negatives.
    valid : torch.Tensor of bool, shape (N,), optional
        Which rows count (padding excluded); the mean runs over them.

    Returns
    -------
    torch.Tensor
        Scalar.

    Examples
    --------
    >>> round(float(bce_loss(torch.zeros(3), torch.zeros(3))), 4)  # 2 log 2
    1.3863
    """
    per = F.softplus(-pos) + (F.softplus(neg) if neg.dim() == 1 else F.softplus(neg).sum(-1))
    if valid is None:
        return per.mean()
    return (per * valid).sum() / valid.sum().clamp(min=1)


def mse_loss(target, pred):
    """Per-row sum of squared errors, ``[B]``.

    Examples
    --------
    >>> mse_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]])).tolist()
    [0.5]
    """
    return ((target - pred) ** 2).sum(-1)


def multinomial_loss(logits, target):
    """Multinomial log-likelihood of the target counts under softmax(logits), per row (Mult-DAE).

    Examples
    --------
    >>> round(float(multinomial_loss(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))[0]), 4)
    0.6931
    """
    return -(F.log_softmax(logits, dim=-1) * target).sum(-1)


def reconstruction_loss(loss, logits, target):
    """Per-row reconstruction loss of an autoencoder, ``[B]``.

    Parameters
    ----------
    loss : {"multinomial", "bce", "mse"}
        ``"multinomial"``: ``-Σ_i x_i log softmax(logits)_i`` (Mult-DAE/VAE, Liang et al.
        2018); ``"bce"``: ``Σ_i BCE(σ(logits_i), 1[x_i > 0])``; ``"mse"``: ``Σ_i (x_i - logits_i)²``.
    logits, target : torch.Tensor of shape (B, n)

    Examples
    --------
    >>> t = torch.tensor([[1.0, 0.0]])
    >>> float(reconstruction_loss("mse", torch.tensor([[0.5, 0.5]]), t)[0])
    0.5
    """
    if loss == "multinomial":
        return multinomial_loss(logits, target)
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, (target > 0).to(logits.dtype), reduction="none").sum(1)
    if loss == "mse":
        return mse_loss(target, logits)
    raise_invalid("loss", "one of 'multinomial', 'bce', 'mse'", loss)


def kl_divergence(mu, logvar):
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per row, ``[B]`` (the VAE's prior term).

    Examples
    --------
    >>> float(kl_divergence(torch.zeros(1, 3), torch.zeros(1, 3))[0])
    0.0
    """
    return 0.5 * (torch.exp(logvar) + mu * mu - 1.0 - logvar).sum(-1)


def full_softmax_loss(logits, targets):
    """Cross-entropy over every item; targets ``-100`` are ignored.

    Parameters
    ----------
    logits : torch.Tensor of shape (N, n_items)
    targets : torch.Tensor of int64, shape (N,)

    Examples
    --------
    >>> round(float(full_softmax_loss(torch.zeros(2, 4), torch.tensor([1, -100]))), 4)  # log 4
    1.3863
    """
    return F.cross_entropy(logits.float(), targets, ignore_index=-100)


def _ce_piece(h, W, target):
    """Summed cross-entropy of the logits ``h @ W.T`` (float32) against ``target`` (``-100``
    ignored), and its gradient with respect to the logits, ``softmax - onehot`` (zero on
    ignored rows), in ``h``'s dtype. One ``exp`` pass, in place."""
    z = (h @ W.t()).float()  # [r, n_items]
    valid = (target >= 0).to(z.dtype).unsqueeze(1)
    t = target.clamp(min=0).unsqueeze(1)
    picked = z.gather(1, t)
    top = z.amax(1, keepdim=True)
    z.sub_(top).exp_()
    norm = z.sum(1, keepdim=True)
    total = ((top + norm.log() - picked) * valid).sum()
    z.mul_(valid / norm).scatter_add_(1, t, -valid)  # softmax - onehot, zero on ignored rows
    return total, z.to(h.dtype)


class LinearCrossEntropy(torch.autograd.Function):
    """Summed full-softmax cross-entropy of ``h @ W.T``, its gradients formed piece by piece in
    the forward pass.

    Each piece of rows computes its logits, the loss, ``softmax - onehot`` and that piece's
    share of both gradients (``g W`` and ``gᵀ h``) while its logits are in cache; no
    ``[N, n_items]`` tensor is kept for the backward pass, which only scales the stored
    gradients. Arguments: ``h``, ``W``, the targets (``-100`` ignored), the rows per piece and
    the dtype of the products (bfloat16 under autocast); the softmax and the item gradient's
    sum are float32.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> h = torch.randn(5, 3, generator=g, requires_grad=True)
    >>> W = torch.randn(7, 3, generator=g, requires_grad=True)
    >>> t = torch.tensor([0, 6, -100, 2, 2])
    >>> loss = LinearCrossEntropy.apply(h, W, t, 2, torch.float32)
    >>> bool(torch.allclose(loss, F.cross_entropy(h @ W.T, t, ignore_index=-100, reduction="sum")))
    True
    """

    @staticmethod
    def forward(ctx, h, W, target, rows, dtype):
        with torch.autocast(h.device.type, enabled=False):
            Wc = W.detach().to(dtype)
            dh = torch.empty_like(h)
            dW = torch.zeros(W.shape, dtype=torch.float32, device=W.device)
            total = torch.zeros((), dtype=torch.float32, device=h.device)
            n = h.shape[0]
            for stop in range(rows, n + rows, rows):
                # Every piece has ``rows`` rows: the last one ends at ``n`` and overlaps the one
                # before, its overlap ignored, so the products see one shape per fit (oneDNN
                # keeps a primitive, and its memory, per shape).
                start, new = max(min(stop, n) - rows, 0), min(stop - rows, n)
                t = target[start:stop]
                if new > start:
                    t = torch.where(torch.arange(t.shape[0], device=t.device) < new - start, -100, t)
                hc = h.detach()[start:stop].to(dtype)
                loss, g = _ce_piece(hc, Wc, t)
                total += loss
                if dtype == torch.float32:
                    dW.addmm_(g.t(), hc)
                else:
                    dW += (g.t() @ hc).float()
                dh[new:stop] = (g @ Wc)[new - start:]
        ctx.save_for_backward(dh, dW)
        ctx.W_dtype = W.dtype
        return total

    @staticmethod
    def backward(ctx, grad):
        dh, dW = ctx.saved_tensors
        return dh * grad.to(dh.dtype), (dW * grad).to(ctx.W_dtype), None, None, None


def linear_cross_entropy(h, W, targets, rows, dtype=None):
    """Summed full-softmax cross-entropy of the logits ``h @ W.T``, never holding more than
    ``rows`` rows of them (:class:`LinearCrossEntropy`).

    Parameters
    ----------
    h : torch.Tensor of shape (N, d)
        Hidden states.
    W : torch.Tensor of shape (n_items, d)
        Output item vectors.
    targets : torch.Tensor of int64, shape (N,)
        Target item of each row; ``-100`` is ignored.
    rows : int
        Rows per piece.
    dtype : torch.dtype, optional
        Dtype of the products (bfloat16 under autocast); ``h``'s by default. The softmax is
        float32.

    Returns
    -------
    torch.Tensor
        0-d, float32: the sum over the rows not ignored.

    Examples
    --------
    >>> h, W = torch.zeros(3, 2, requires_grad=True), torch.zeros(4, 2)
    >>> round(float(linear_cross_entropy(h, W, torch.tensor([1, -100, 3]), rows=2).detach()), 4)  # 2 log 4
    2.7726
    """
    return LinearCrossEntropy.apply(h, W, targets, rows, h.dtype if dtype is None else dtype)


def sampled_softmax_loss(pos, neg, collide=None, valid=None):
    """Softmax cross-entropy of each positive against sampled negatives.

    Parameters
    ----------
    pos : torch.Tensor of shape (N,)
        Logits of the targets.
    neg : torch.Tensor of shape (N, K)
        Logits of the negatives (shared by the rows, or per row).
    collide : torch.Tensor of bool, shape (N, K), optional
        Negatives equal to the row's target: removed from that row's softmax.
    valid : torch.Tensor of bool, shape (N,), optional
        Which rows count; the mean runs over them.

    Examples
    --------
    >>> round(float(sampled_softmax_loss(torch.zeros(1), torch.zeros(1, 3))), 4)  # log 4
    1.3863
    """
    neg = neg.float()
    if collide is not None:
        neg = neg.masked_fill(collide, float("-inf"))
    logits = torch.cat([pos.float().unsqueeze(1), neg], dim=1)
    nll = torch.logsumexp(logits, 1) - logits[:, 0]
    if valid is None:
        return nll.mean()
    return (nll * valid).sum() / valid.sum().clamp(min=1)
