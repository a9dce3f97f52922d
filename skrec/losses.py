"""Losses shared by the models: pure functions of scores, targets and negatives passed in.

Nothing here draws samples or holds state; a trainer draws its negatives (see
:mod:`skrec.sampling`) and calls these.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .utils.validation import raise_invalid

__all__ = ["bpr_loss", "bce_loss", "mse_loss", "multinomial_loss", "kl_divergence", "full_softmax_loss",
           "sampled_softmax_loss", "reconstruction_loss"]


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
