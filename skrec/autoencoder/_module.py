"""The autoencoder's math: an ``nn.Module`` with no device, no data and no randomness of its own."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AutoencoderModule", "ACTIVATIONS"]

ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "elu": F.elu,
    "selu": F.selu,
    "identity": lambda h: h,
}


class AutoencoderModule(nn.Module):
    """Row autoencoder ``x -> code -> item scores`` (Mult-DAE / Mult-VAE / recoder / SDense).

    Parameters
    ----------
    n_items : int
    hidden_layer_sizes : tuple of int
        Encoder widths, the last one being the code size; the decoder mirrors them. ``()``
        gives a single item-item layer ``S`` (``n_items x n_items``) whose diagonal never
        takes part (``SDense``, trained by gradient; :class:`skrec.EASE` is its closed-form
        solution).
    activation : str
        A key of :data:`ACTIVATIONS`, applied after every layer but the output (and but the
        ``mu``/``logvar`` layer of a variational encoder).
    variational : bool
        The last encoder layer outputs ``(mu, logvar)``; the code is ``mu + eps * sigma``.
    tied : bool
        Decoder weights are the transposed encoder weights (own biases).

    Notes
    -----
    Parameters are created empty; :meth:`reset_parameters` fills them from a
    ``torch.Generator`` (Xavier-uniform weights, zero biases), so the caller's seed decides
    everything. ``items`` in :meth:`forward` restricts the first and the last layer to a
    sorted subset of the columns (recoder's mini-batch negative sampling): exact when the
    input is zero outside ``items``.

    Examples
    --------
    >>> m = AutoencoderModule(5, (3, 2), "tanh", variational=False, tied=False)
    >>> m.reset_parameters(torch.Generator().manual_seed(0))
    >>> logits, mu, logvar = m(torch.ones(4, 5))
    >>> tuple(logits.shape), tuple(mu.shape), logvar is None
    ((4, 5), (4, 2), True)
    """

    def __init__(self, n_items, hidden_layer_sizes, activation="tanh", *, variational=False, tied=False):
        super().__init__()
        self.n_items = int(n_items)
        self.hidden_layer_sizes = tuple(hidden_layer_sizes)
        self.activation = activation
        self.variational = bool(variational) and bool(self.hidden_layer_sizes)
        self.tied = bool(tied) and bool(self.hidden_layer_sizes)
        sizes = (self.n_items,) + self.hidden_layer_sizes
        if not self.hidden_layer_sizes:
            self.item_item = nn.Parameter(torch.zeros(self.n_items, self.n_items))
            return
        enc_w, enc_b = [], []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if self.variational and i == len(sizes) - 2:
                fan_out *= 2  # mu and logvar
            enc_w.append(nn.Parameter(torch.empty(fan_out, fan_in)))
            enc_b.append(nn.Parameter(torch.zeros(fan_out)))
        self.enc_weights, self.enc_biases = nn.ParameterList(enc_w), nn.ParameterList(enc_b)
        rev = sizes[::-1]  # code -> ... -> n_items
        dec_w, dec_b = [], []
        for fan_in, fan_out in zip(rev[:-1], rev[1:]):
            if not self.tied:
                dec_w.append(nn.Parameter(torch.empty(fan_out, fan_in)))
            dec_b.append(nn.Parameter(torch.zeros(fan_out)))
        self.dec_weights, self.dec_biases = nn.ParameterList(dec_w), nn.ParameterList(dec_b)

    def reset_parameters(self, generator):
        """Xavier-uniform weights drawn with ``generator`` (on its device), zero biases."""
        with torch.no_grad():
            if not self.hidden_layer_sizes:
                self.item_item.zero_()  # the item-item layer starts at zero; its loss is convex
                return
            weights = list(self.enc_weights) + list(self.dec_weights)
            for w in weights:
                fan_out, fan_in = w.shape
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                draw = torch.rand(w.shape, generator=generator, device=generator.device)
                w.copy_((draw * 2 - 1) * bound)
            for b in list(self.enc_biases) + list(self.dec_biases):
                b.zero_()

    def _decoder_weight(self, k):
        """Weight of decoder layer ``k`` (``[fan_out, fan_in]``)."""
        if not self.tied:
            return self.dec_weights[k]
        w = self.enc_weights[len(self.enc_weights) - 1 - k]  # [fan_out_enc, fan_in_enc]
        if self.variational and k == 0:
            w = w[: self.hidden_layer_sizes[-1]]  # the mu half
        return w.t()

    def penalty(self):
        """Sum of squared weights (biases excluded) — the L2 term."""
        if not self.hidden_layer_sizes:
            s = self.item_item
            return (s * s).sum() - (torch.diagonal(s) ** 2).sum()
        weights = list(self.enc_weights) + list(self.dec_weights)
        return sum((w * w).sum() for w in weights)

    def encode(self, x, items=None):
        """``(mu, logvar)`` (``logvar`` is ``None`` unless variational), ``[B, d]`` each."""
        act = ACTIVATIONS[self.activation]
        h = x
        n = len(self.enc_weights)
        for i, (w, b) in enumerate(zip(self.enc_weights, self.enc_biases)):
            if i == 0 and items is not None:
                w = w[:, items]  # [h1, |items|]
            h = F.linear(h, w, b)
            if i < n - 1 or not self.variational:
                h = act(h)
        if self.variational:
            d = self.hidden_layer_sizes[-1]
            return h[:, :d], h[:, d:]
        return h, None

    def decode(self, z, items=None):
        """Item scores (logits) ``[B, n_items]`` or ``[B, |items|]``."""
        act = ACTIVATIONS[self.activation]
        h = z
        n = len(self.dec_biases)
        for k in range(n):
            w, b = self._decoder_weight(k), self.dec_biases[k]
            if k == n - 1 and items is not None:
                w, b = w[items], b[items]
            h = F.linear(h, w, b)
            if k < n - 1:
                h = act(h)
        return h

    def forward(self, x, noise=None, items=None):
        """Scores for the rows ``x`` (``[B, n_items]``, or ``[B, |items|]`` with ``items``).

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_items) or (B, len(items))
            Input rows (already normalised and corrupted by the caller).
        noise : torch.Tensor of shape (B, d), optional
            Standard normal draws for the variational code; ``None`` uses ``mu``.
        items : torch.Tensor of int64, optional
            Sorted column subset (the input holds only these columns).

        Returns
        -------
        logits, mu, logvar
        """
        if not self.hidden_layer_sizes:
            s = self.item_item if items is None else self.item_item[items][:, items]
            diag = torch.diagonal(s)
            return x @ s - x * diag, None, None  # the diagonal never takes part
        mu, logvar = self.encode(x, items)
        z = mu if (noise is None or logvar is None) else mu + noise * torch.exp(0.5 * logvar)
        return self.decode(z, items), mu, logvar
