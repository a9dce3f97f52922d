"""AutoencoderRecommender: Mult-DAE, Mult-VAE, recoder and the item-item (EASE) autoencoders."""

from __future__ import annotations

import math

import numpy as np
import torch

from .._torch import DeviceCSR
from ..base import TorchRecommender, register
from ..sampling import gather_rows
from ..utils.validation import check_param, raise_invalid
from ._module import ACTIVATIONS, AutoencoderModule, kl_divergence, reconstruction_loss

__all__ = ["AutoencoderRecommender"]

SOLVERS = ("adam", "adamw", "adagrad", "sgd", "closed_form")
LOSSES = ("multinomial", "logistic", "mse")
_ARCHITECTURE = ("hidden_layer_sizes", "activation", "variational", "tied")


class _HeldOutRows:
    """Validation rows split into a history (folded in) and held-out items (ranked)."""

    def __init__(self, hist, held):
        self.hist, self.held = hist, held


@register
class AutoencoderRecommender(TorchRecommender):
    """Autoencoder over user rows: a history row in, a score for every item out.

    One estimator covers the row-autoencoder family: Mult-DAE and Mult-VAE (Liang et al.,
    2018), recoder's denoising autoencoder with a logistic loss and mini-batch negative
    sampling, AsySVD (a linear one-hidden-layer autoencoder, ``X·V1·V2``) and the
    zero-diagonal item-item layer ``SDense`` of seed 003, whose closed-form solution is EASE
    (Steck, 2019). Fold-in is the forward pass: any history row, even of a user never seen
    in ``fit``, is scored directly.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(600, 200)
        Encoder widths, the last one being the code (``transform``'s size); the decoder
        mirrors them. ``()`` gives one ``n_items x n_items`` item-item layer whose diagonal
        never takes part (``SDense``; with ``loss="mse"`` and ``solver="closed_form"`` it is
        EASE).
    activation : {"tanh", "relu", "sigmoid", "elu", "selu", "identity"}, default="tanh"
        After every layer but the output one (and but the ``mu``/``logvar`` layer).
    dropout : float in [0, 1), default=0.5
        Input corruption: each input entry is zeroed with this probability during training
        and the rest scaled by ``1 / (1 - dropout)`` (recoder's ``noise_prob``).
    loss : {"multinomial", "logistic", "mse"}, default="multinomial"
        Reconstruction loss summed over items: multinomial log-likelihood of the softmax
        (Mult-DAE/VAE; values act as counts), binary cross-entropy of the sigmoid against
        ``1[x > 0]`` (recoder), or squared error (AsySVD, SDense/EASE; values are targets).
    variational : bool, default=False
        Mult-VAE: a Gaussian code with a KL term weighted by an annealed ``beta``.
    beta : float >= 0, default=0.2
        Final weight of the KL term (the anneal cap).
    anneal_steps : int >= 0, default=20000
        Batches over which the KL weight grows linearly from 0 to ``beta`` (``0``: ``beta``
        from the start). The count continues across ``warm_start`` fits.
    tied : bool, default=False
        Decoder weights are the transposed encoder weights.
    normalize : bool, default=True
        Divide each input row by its L2 norm (Mult-VAE); targets keep the raw values.
    user_norm : float >= 0, default=0.0
        Weight each training row's loss by ``n_u ** -user_norm``, ``n_u`` being the number
        of items the row holds: the user normalisation of DAN (Park et al., 2025), which
        keeps very active users from dominating what the model learns. ``0`` weighs every
        row equally. Any architecture and solver; in the closed form the Gram matrix becomes
        ``Xᵀ diag(w) X`` (so the useful ``alpha`` shrinks with it).
    item_norm : float >= 0, default=0.0
        DAN's item normalisation, for the item-item layer only (``hidden_layer_sizes=()``):
        scores are ``x·W`` with ``W_ij = S_ij · (c_i / c_j) ** item_norm``, ``S`` the trained
        layer and ``c`` the items' counts in the training matrix — popular targets are
        damped and evidence from popular inputs counts more. ``0`` scores with ``S`` itself.
    negative_sampling : bool, default=False
        Recoder's mini-batch negative sampling: each batch scores only the items some row of
        the batch holds, plus ``n_negatives`` items drawn uniformly; the first and last
        layers are restricted to those columns. Faster with many items and small batches,
        at some cost in quality (the softmax/logistic loss sees fewer negatives).
    n_negatives : int >= 0, default=0
        Extra uniformly drawn items per batch (without replacement) when
        ``negative_sampling=True``; ``n_negatives >= n_items`` scores every item (the full
        path).
    alpha : float >= 0, default=1.0
        L2 strength on the weights for the sum of the losses over the training rows (as
        EASE's ``lambda`` and scikit-learn's MLP ``alpha``): each batch adds
        ``alpha / n_rows * Σ W²`` to its mean row loss.
    solver : {"adam", "adamw", "adagrad", "sgd", "closed_form"}, default="adam"
        ``"closed_form"``: the exact minimiser, for ``hidden_layer_sizes=()`` with
        ``loss="mse"`` (EASE, with ``dropout`` as its exact expected penalty). It needs about
        ``4 * 8 * n_items**2`` bytes on the device and refuses (``ValueError``) when they are
        not free; use a gradient solver then.
    learning_rate : float, default=1e-3
    batch_size : int, default=500
        Rows per batch.
    max_iter : int, default=100
        Epochs (passes over the rows).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training *rows*; each epoch folds in 80 % of
        each held-out row and ranks the other 20 % (NDCG@100, the P2 protocol); stop after
        ``n_iter_no_change`` epochs without improvement and restore the best epoch.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    lr_schedule : {None, "cosine", "triangular"}, default=None
    lr_cycle : int, default=2
    checkpoint_every : int, default=0
        Pickle the estimator every N epochs to ``checkpoint_path`` (resumable with
        ``set_params(warm_start=True).fit(X)``).
    checkpoint_path : str, optional
    warm_start : bool, default=False
        Continue training the fitted network (and its optimizer) on a matrix of the same
        shape; the architecture parameters must not change.
    device : str, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds initialisation, batch order, corruption, VAE noise, negatives and the
        validation split.
    verbose : int, default=0

    Attributes
    ----------
    module_ : AutoencoderModule
        The network.
    n_users_, n_items_ : int
    n_iter_ : int
    history_ : list of dict
        ``epoch``, ``loss``, ``lr`` (and ``val_loss``, minus the validation NDCG@100).
    best_iteration_, best_score_ : int or None, float or None
    device_ : torch.device

    Notes
    -----
    For a row ``x`` (input ``x̃``: L2-normalised, corrupted in training) and logits
    ``f(x̃)``, the objective is

    .. math:: \\frac{1}{|B|}\\sum_{u \\in B} \\big[\\ell(x_u, f(\\tilde x_u))
              + \\beta_t\\,\\mathrm{KL}_u\\big] + \\frac{\\alpha}{n}\\sum_W \\|W\\|^2

    with ``ℓ`` the chosen loss summed over items, ``β_t = min(beta, t / anneal_steps)``
    (variational only) and ``n`` the number of training rows. Configurations of the family:

    - Mult-DAE: ``AutoencoderRecommender((600, 200), dropout=0.5)``;
    - Mult-VAE: ``AutoencoderRecommender((600, 200), variational=True)``;
    - recoder: ``AutoencoderRecommender((200,), loss="logistic", negative_sampling=True)``;
    - AsySVD (``X·V1·V2`` plus biases): ``AutoencoderRecommender((64,),
      activation="identity", loss="mse", dropout=0.0, normalize=False)``;
    - SDense / EASE: ``AutoencoderRecommender((), loss="mse", dropout=0.0,
      normalize=False, solver="closed_form", alpha=500.0)`` — ``B = I - P·diag(1/diag P)``
      with ``P = (XᵀX + αI)⁻¹``; the same layer trains by gradient with another solver.
      With ``dropout`` it is the full-rank EDLAE of Steck (2020); adding ``user_norm`` and
      ``item_norm`` gives DAN's normalised linear autoencoder.

    Training rows are densified on the device: the whole matrix is kept dense there when it
    has at most ``2**26`` entries (ML-1M has 22 M), otherwise batches are gathered from a
    device-resident CSR (one host synchronisation per batch). Negative sampling also
    synchronises once per batch (the number of sampled columns).

    References
    ----------
    Liang, Krishnan, Hoffman, Jebara. Variational Autoencoders for Collaborative Filtering.
    WWW 2018. Steck. Embarrassingly Shallow Autoencoders for Sparse Data. WWW 2019.
    Steck. Autoencoders that don't overfit towards the Identity. NeurIPS 2020. Park, Lee,
    et al. Why is Normalization Necessary for Linear Recommenders? SIGIR 2025.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skrec.autoencoder import AutoencoderRecommender
    >>> rng = np.random.default_rng(0)
    >>> X = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(float))
    >>> model = AutoencoderRecommender((8, 4), max_iter=5, batch_size=16, random_state=0).fit(X)
    >>> ids, scores = model.recommend(X[:2], k=3)
    >>> ids.shape, model.transform(X[:2]).shape
    ((2, 3), (2, 4))
    >>> ease = AutoencoderRecommender((), loss="mse", dropout=0.0, normalize=False,
    ...                               solver="closed_form", alpha=10.0).fit(X)
    >>> ease.predict(X[:1]).shape
    (1, 12)

    DAN's normalised linear autoencoder: rows weighted by ``n_u ** -0.5``, popular targets
    damped by ``c_j ** -0.2``:

    >>> dan = AutoencoderRecommender((), loss="mse", normalize=False, solver="closed_form", alpha=2.0,
    ...                              dropout=0.5, user_norm=0.5, item_norm=0.2).fit(X)
    >>> dan.recommend(X[:1], k=3)[0].shape
    (1, 3)

    Seed 003's profile models. AsySVD, ``r̂ = x·V1·V2`` (plus biases), is a linear
    one-hidden-layer autoencoder; its code ``x·V1`` is ``transform``:

    >>> asysvd = AutoencoderRecommender((3,), activation="identity", loss="mse", dropout=0.0,
    ...                                 normalize=False, max_iter=3, random_state=0).fit(X)
    >>> V1 = asysvd.module_.enc_weights[0].detach().numpy().T              # [n_items, 3]
    >>> bool(np.allclose(asysvd.transform(X[:2]), X[:2] @ V1 + asysvd.module_.enc_biases[0].detach().numpy(),
    ...                  atol=1e-5))
    True

    ``SDense``, ``r̂ = x·S`` with a zero diagonal, trained by gradient (the closed form above
    is its exact minimiser):

    >>> sdense = AutoencoderRecommender((), loss="mse", dropout=0.0, normalize=False, alpha=10.0,
    ...                                 learning_rate=0.05, max_iter=200, random_state=0).fit(X)
    >>> bool(np.abs(sdense.predict(X) - ease.predict(X)).max() < 0.05)
    True
    """

    _param_specs = dict(
        TorchRecommender._param_specs,
        hidden_layer_sizes=dict(kind="sequence"),
        activation=dict(kind="str", options=tuple(ACTIVATIONS)),
        dropout=dict(kind="float", low=0, high=1, high_inclusive=False),
        loss=dict(kind="str", options=LOSSES),
        variational=dict(kind="bool"),
        beta=dict(kind="float", low=0),
        anneal_steps=dict(kind="int", low=0),
        tied=dict(kind="bool"),
        normalize=dict(kind="bool"),
        user_norm=dict(kind="float", low=0),
        item_norm=dict(kind="float", low=0),
        negative_sampling=dict(kind="bool"),
        n_negatives=dict(kind="int", low=0),
        alpha=dict(kind="float", low=0),
        solver=dict(kind="str", options=SOLVERS),
    )
    del _param_specs["optimizer"]
    _dense_limit = 2**26  # training matrices with at most this many entries stay dense on the device

    def __init__(self, hidden_layer_sizes=(600, 200), *, activation="tanh", dropout=0.5, loss="multinomial",
                 variational=False, beta=0.2, anneal_steps=20000, tied=False, normalize=True, user_norm=0.0,
                 item_norm=0.0, negative_sampling=False, n_negatives=0, alpha=1.0, solver="adam",
                 learning_rate=1e-3, batch_size=500, max_iter=100, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, lr_schedule=None, lr_cycle=2, checkpoint_every=0,
                 checkpoint_path=None, warm_start=False, device="auto", random_state=None, verbose=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.loss = loss
        self.variational = variational
        self.beta = beta
        self.anneal_steps = anneal_steps
        self.tied = tied
        self.normalize = normalize
        self.user_norm = user_norm
        self.item_norm = item_norm
        self.negative_sampling = negative_sampling
        self.n_negatives = n_negatives
        self.alpha = alpha
        self.solver = solver
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.lr_schedule = lr_schedule
        self.lr_cycle = lr_cycle
        self.checkpoint_every = checkpoint_every
        self.checkpoint_path = checkpoint_path
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def _test_instances(cls):
        return [
            cls((8, 4), max_iter=4, batch_size=16, learning_rate=1e-2),
            cls((6,), variational=True, tied=True, anneal_steps=4, max_iter=4, batch_size=16, learning_rate=1e-2),
            cls((6,), loss="logistic", negative_sampling=True, n_negatives=5, max_iter=3, batch_size=16,
                learning_rate=1e-2),
            cls((), loss="mse", dropout=0.0, normalize=False, solver="closed_form", alpha=5.0),
            cls((), loss="mse", dropout=0.5, normalize=False, solver="closed_form", alpha=1.0, user_norm=0.5,
                item_norm=0.2),
        ]

    # ------------------------------------------------------------ parameters
    def _check_params(self):
        super()._check_params()
        hidden = check_param("hidden_layer_sizes", self.hidden_layer_sizes, "sequence")
        if self.solver == "closed_form" and (hidden != () or self.loss != "mse" or self.negative_sampling):
            raise_invalid("solver", "a gradient solver ('adam', 'adamw', 'adagrad', 'sgd') unless "
                          "hidden_layer_sizes=(), loss='mse' and negative_sampling=False (the closed form is "
                          "EASE's)", self.solver)
        if self.item_norm and hidden != ():
            raise_invalid("item_norm", "0 unless hidden_layer_sizes=() (it rescales the item-item layer)",
                          self.item_norm)

    def _optimizer_name(self):
        return self.solver

    def _supports_transform(self):
        spec = getattr(self, "_spec", None)
        if spec is not None:
            return bool(spec["hidden_layer_sizes"])
        hidden = self.hidden_layer_sizes
        return not (isinstance(hidden, (list, tuple)) and len(hidden) == 0)

    def _snapshot(self):
        hidden = check_param("hidden_layer_sizes", self.hidden_layer_sizes, "sequence")
        return {"hidden_layer_sizes": hidden, "activation": self.activation,
                "variational": bool(self.variational and hidden), "tied": bool(self.tied and hidden),
                "normalize": self.normalize, "user_norm": float(self.user_norm),
                "item_norm": float(self.item_norm),
                "dropout": float(self.dropout), "loss": self.loss, "alpha": float(self.alpha),
                "beta": float(self.beta), "anneal_steps": int(self.anneal_steps),
                "negative_sampling": self.negative_sampling, "n_negatives": int(self.n_negatives)}

    # ------------------------------------------------------------------ data
    def _input(self, x):
        """Model input of dense rows ``x`` ``[B, I]`` (L2-normalised when asked)."""
        if self._spec["normalize"]:
            return x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
        return x

    def _row_weights(self, X):
        """``n_u ** -user_norm`` per row of ``X`` on the device (``None`` when all are 1)."""
        if not self._spec["user_norm"]:
            return None
        counts = np.maximum(np.diff(X.indptr), 1).astype(np.float64)
        return torch.as_tensor(counts ** -self._spec["user_norm"], device=self.device_)

    def _set_item_scale(self, X):
        """``c ** item_norm`` of the training counts, used by every score (``None`` when 0)."""
        a = self._spec["item_norm"]
        counts = np.maximum(np.bincount(X.indices, minlength=X.shape[1]), 1).astype(np.float64)
        self._item_scale = torch.as_tensor(counts ** a, dtype=torch.float32, device=self.device_) if a else None

    def _training_data(self, X):
        if isinstance(X, _HeldOutRows):
            return {"hist": DeviceCSR.from_scipy(X.hist, self.device_),
                    "held": DeviceCSR.from_scipy(X.held, self.device_), "n": X.hist.shape[0]}
        n_rows, n_items = X.shape
        csr = DeviceCSR.from_scipy(X, self.device_)
        dense = csr.to_dense() if n_rows * n_items <= self._dense_limit else None
        self._set_item_scale(X)
        weights = self._row_weights(X)
        return {"dense": dense, "csr": csr, "n": n_rows,
                "weight": None if weights is None else weights.float()}

    def _rows(self, data, idx):
        return data["dense"][idx] if data["dense"] is not None else gather_rows(data["csr"], idx)

    def _n_samples(self, data):
        return data["n"]

    def _build_module(self, X, generator):
        s = self._spec
        module = AutoencoderModule(X.shape[1], s["hidden_layer_sizes"], s["activation"],
                                   variational=s["variational"], tied=s["tied"])
        module.reset_parameters(generator)
        return module

    def _validation_split(self, X, seed):
        """Hold out whole rows; each held-out row is split 80/20 (fold in / rank)."""
        from ..model_selection import holdout_split

        rng = np.random.default_rng(seed)
        n = X.shape[0]
        n_val = int(round(self.validation_fraction * n))
        if n_val < 1 or n_val >= n:
            raise_invalid("validation_fraction", f"a fraction that leaves rows on both sides of the validation "
                          f"split ({n} rows)", self.validation_fraction)
        perm = rng.permutation(n)
        val_rows, train_rows = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        hist, held = holdout_split(X[val_rows], 0.2, random_state=int(rng.integers(2**31)))
        return X[train_rows], _HeldOutRows(hist, held)

    def _validation_loss(self, data, generator):
        """Minus the NDCG@100 of the held-out rows (fold in 80 %, rank the other 20 %)."""
        hist_all, held_all = data["hist"], data["held"]
        n_items = hist_all.shape[1]
        k = min(100, n_items)
        disc = 1.0 / torch.log2(torch.arange(2, k + 2, device=self.device_, dtype=torch.float32))
        ideal = torch.cumsum(disc, 0)
        total = torch.zeros((), device=self.device_)
        count = torch.zeros((), device=self.device_)
        step = max(1, self._inference_elements // n_items)
        for start in range(0, hist_all.n_rows, step):  # memory bounded by the inference batch
            stop = min(start + step, hist_all.n_rows)
            hist, held = hist_all.slice_rows(start, stop).to_dense(), held_all.slice_rows(start, stop).to_dense()
            scores = self._forward_scores(hist).masked_fill(hist != 0, -math.inf)
            top = torch.topk(scores, k, dim=1).indices
            hits = (held.gather(1, top) > 0).float()  # [V, k]
            n_rel = (held > 0).sum(1).clamp(max=k)
            ndcg = (hits * disc).sum(1) / ideal[(n_rel - 1).clamp(min=0)]
            valid = (n_rel > 0).float()  # rows without held-out items are skipped
            total = total + (ndcg * valid).sum()
            count = count + valid.sum()
        return -total / count.clamp(min=1)

    # ------------------------------------------------------------------- fit
    def _fit(self, X, warm):
        spec = self._snapshot()
        if warm and hasattr(self, "_spec"):
            changed = [k for k in _ARCHITECTURE if spec[k] != self._spec[k]]
            if changed:
                raise_invalid("warm_start", f"False when the architecture changes ({', '.join(changed)} differ "
                              "from the fitted network)", True)
        self._spec = spec
        if not warm or not hasattr(self, "_n_steps"):
            self._n_steps = 0
        if self.solver == "closed_form":
            return self._fit_closed_form(X)
        return super()._fit(X, warm)

    def _loss(self, data, idx, generator):
        s = self._spec
        x = self._rows(data, idx)  # [B, I]
        items = None
        if s["negative_sampling"]:
            n_items = x.shape[1]
            mask = (x != 0).any(0)  # items held by some row of the batch
            if s["n_negatives"]:
                neg = torch.randperm(n_items, generator=generator, device=x.device)[:s["n_negatives"]]
                mask[neg] = True
            items = mask.nonzero().squeeze(1)  # sorted; one host synchronisation
            x = x[:, items]  # [B, |items|]; zero outside them, so norms are unchanged
        inp = self._input(x)
        if s["dropout"] > 0:
            keep = torch.rand(inp.shape, generator=generator, device=inp.device) >= s["dropout"]
            inp = inp * keep / (1.0 - s["dropout"])
        noise = None
        if s["variational"]:
            d = s["hidden_layer_sizes"][-1]
            noise = torch.randn((x.shape[0], d), generator=generator, device=x.device)
        logits, mu, logvar = self.module_(inp, noise, items)
        loss = reconstruction_loss(s["loss"], logits, x)  # [B]
        if s["variational"]:
            beta = s["beta"] if s["anneal_steps"] == 0 else min(s["beta"], self._n_steps / s["anneal_steps"])
            loss = loss + beta * kl_divergence(mu, logvar)
        loss = (loss * data["weight"][idx]).mean() if data["weight"] is not None else loss.mean()
        if s["alpha"]:
            loss = loss + s["alpha"] / data["n"] * self.module_.penalty()
        self._n_steps += 1
        return loss

    def _fit_closed_form(self, X):
        """EASE / SDense exactly: ``B = P C - P diag(γ)``, zero diagonal, ``P = (X̃ᵀX̃ + Λ)⁻¹``."""
        s, dev, n_items = self._spec, self.device_, X.shape[1]
        need = 4 * 8 * n_items * n_items
        free = _free_bytes(dev)
        if free is not None and need > free:
            raise_invalid("solver", f"a gradient solver ('adam', …) for {n_items} items: the closed form needs "
                          f"about {need / 2**30:.1f} GiB and {free / 2**30:.1f} GiB are free on {dev}",
                          self.solver)
        self.module_ = self._build_module(X, None).to(dev)
        self._optimizer = None
        csr = DeviceCSR.from_scipy(X, dev, dtype=torch.float64)
        self._set_item_scale(X)
        weights = self._row_weights(X)
        gram = torch.zeros((n_items, n_items), dtype=torch.float64, device=dev)  # X̃ᵀ diag(w) X̃
        cross = torch.zeros_like(gram) if s["normalize"] else None  # X̃ᵀ diag(w) X
        step = max(1, self._inference_elements // max(n_items, 1))
        for start in range(0, X.shape[0], step):
            stop = min(start + step, X.shape[0])
            x = csr.slice_rows(start, stop).to_dense()
            xi = self._input(x)
            xw = xi if weights is None else xi * weights[start:stop, None]
            gram += xw.T @ xi
            if cross is not None:
                cross += xw.T @ x
        if cross is None:
            cross = gram.clone()
        p = s["dropout"]
        # Dropout with 1/(1-p) scaling adds p/(1-p) * Σ_j G_jj B_j² in expectation.
        ridge = s["alpha"] + (p / (1.0 - p)) * torch.diagonal(gram)
        reg = gram + torch.diag(ridge + 1e-8 * (gram.diagonal().mean() + 1.0))
        P = torch.linalg.inv(reg)
        del gram, reg
        PC = P @ cross
        gamma = torch.diagonal(PC) / torch.diagonal(P)
        B = PC - P * gamma.unsqueeze(0)
        B.fill_diagonal_(0.0)
        del P, PC, cross
        with torch.no_grad():
            self.module_.item_item.copy_(B.float())
        self.history_ = [{"epoch": 1, "loss": None, "lr": None}]  # exact: no loss curve to record
        self.n_iter_ = 1
        self.best_iteration_, self.best_score_ = None, None
        return self

    # ------------------------------------------------------------- inference
    def _forward_scores(self, x):
        c = getattr(self, "_item_scale", None)  # absent in estimators pickled before item_norm
        if c is None:
            return self.module_(self._input(x))[0]
        return self.module_(self._input(x) * c.to(x.dtype))[0] / c.to(x.dtype)  # x·diag(c)·S·diag(1/c)

    def _score_batch(self, batch):
        return self._forward_scores(batch.to_dense())  # [B, n_items]

    def _transform_batch(self, batch):
        mu, _ = self.module_.encode(self._input(batch.to_dense()))
        return mu  # [B, d]: the code (the mean of a variational code)


def _free_bytes(device):
    """Free memory on ``device`` in bytes (``None`` when unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
