"""AutoencoderRecommender: Mult-DAE, Mult-VAE, recoder, AsySVD and the item-item SDense layer."""

from __future__ import annotations

import numpy as np
import torch

from .._torch import DeviceCSR, GradientTrainer
from .._torch.device import autocast_bf16, check_mixed_precision, require_memory
from .._torch.ranking import ndcg_on_device
from ..base import TorchRecommender, register, store_params
from ..losses import kl_divergence, reconstruction_loss
from ..sampling import gather_rows
from ..utils.validation import check_param, raise_invalid
from ._module import ACTIVATIONS, AutoencoderModule

__all__ = ["AutoencoderRecommender", "DENSE_LIMIT"]

LOSSES = ("multinomial", "bce", "mse")
#: Training matrices with at most this many entries are kept dense on the device.
DENSE_LIMIT = 2**26


@register
class AutoencoderRecommender(TorchRecommender):
    """Autoencoder over user rows: a history row in, a score for every item out.

    One estimator covers the row-autoencoder family: Mult-DAE and Mult-VAE (Liang et al.,
    2018), recoder's denoising autoencoder with a logistic loss and mini-batch negative
    sampling, AsySVD (a linear one-hidden-layer autoencoder, ``X·V1·V2``) and the
    zero-diagonal item-item layer ``SDense`` trained by gradient, whose closed-form solution
    is :class:`skrec.EASE` (Steck, 2019). Fold-in is the forward pass: any history row, even of a user never seen
    in ``fit``, is scored directly.

    The defaults are Mult-DAE as Liang et al. (2018) give it — a 600-200 tanh network,
    input dropout 0.5, the multinomial likelihood — with Adam at 2e-3 on batches of 250
    rows, ``alpha=0.01`` (chosen on validation users of MovieLens-100k and MovieLens-1M) and
    early stopping on the NDCG@100 of 10 % of the training rows.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(600, 200)
        Encoder widths, the last one being the code (``transform``'s size); the decoder
        mirrors them. ``()`` gives one ``n_items x n_items`` item-item layer whose diagonal
        never takes part (``SDense``; with ``loss="mse"`` its exact minimiser is
        :class:`skrec.EASE`).
    activation : {"tanh", "relu", "sigmoid", "elu", "selu", "identity"}, default="tanh"
        After every layer but the output one (and but the ``mu``/``logvar`` layer).
    input_dropout : float in [0, 1), default=0.5
        Input corruption: each input entry is zeroed with this probability during training
        and the rest scaled by ``1 / (1 - input_dropout)`` (recoder's ``noise_prob``).
    loss : {"multinomial", "bce", "mse"}, default="multinomial"
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
        row equally.
    item_norm : float >= 0, default=0.0
        DAN's item normalisation, for the item-item layer only (``hidden_layer_sizes=()``):
        scores are ``x·W`` with ``W_ij = S_ij · (c_i / c_j) ** item_norm``, ``S`` the trained
        layer and ``c`` the items' counts in the training matrix — popular targets are
        damped and evidence from popular inputs counts more. ``0`` scores with ``S`` itself.
    negative_sampling : bool, default=False
        Recoder's mini-batch negative sampling: each batch scores only the items some row of
        the batch holds, plus ``n_shared_negatives`` items drawn uniformly; the first and last
        layers are restricted to those columns. Faster with many items and small batches,
        at some cost in quality (the softmax/logistic loss sees fewer negatives).
    n_shared_negatives : int >= 0, default=0
        Extra items drawn uniformly once per batch (without replacement) and shared by its
        rows when ``negative_sampling=True``; ``n_shared_negatives >= n_items`` scores every
        item (the full path).
    alpha : float >= 0, default=0.01
        L2 strength on the weights for the sum of the losses over the training rows (as
        EASE's ``lambda`` and scikit-learn's MLP ``alpha``): each batch adds
        ``alpha / n_rows * Σ W²`` to its mean row loss.
    optimizer : {"adam", "adamw", "adagrad", "sgd"}, default="adam"
    mixed_precision : bool, default=True
        bfloat16 autocast of the training forward pass where the device runs bfloat16
        products natively: CUDA devices of compute capability 8.0 or higher and CPUs with
        AVX512-BF16 or AMX instructions (an older GPU warns once and trains in float32). The
        loss, validation and every score are float32.
    learning_rate : float, default=2e-3
    batch_size : int, default=250
        Rows per batch.
    max_iter : int, default=200
        Most epochs (passes over the rows); early stopping usually ends the fit well before.
    early_stopping : bool, default=True
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
        ``epoch``, ``loss``, ``val_loss`` (minus the validation NDCG@100, or ``None``),
        ``lr``, ``time``.
    n_steps_ : int
        Optimizer steps so far (the KL annealing continues from it in a warm fit).
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

    - Mult-DAE: ``AutoencoderRecommender((600, 200), input_dropout=0.5)``;
    - Mult-VAE: ``AutoencoderRecommender((600, 200), variational=True)``;
    - recoder: ``AutoencoderRecommender((200,), loss="bce", negative_sampling=True)``;
    - AsySVD (``X·V1·V2`` plus biases): ``AutoencoderRecommender((64,),
      activation="identity", loss="mse", input_dropout=0.0, normalize=False)``;
    - SDense: ``AutoencoderRecommender((), loss="mse", input_dropout=0.0,
      normalize=False, alpha=500.0)``, the item-item layer trained by gradient; its exact
      minimiser (EASE, EDLAE and DAN) is :class:`skrec.EASE`.

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

    AsySVD, ``r̂ = x·V1·V2`` (plus biases), is a linear
    one-hidden-layer autoencoder; its code ``x·V1`` is ``transform``:

    >>> asysvd = AutoencoderRecommender((3,), activation="identity", loss="mse", input_dropout=0.0,
    ...                                 normalize=False, max_iter=3, random_state=0).fit(X)
    >>> V1 = asysvd.module_.enc_weights[0].detach().cpu().numpy().T              # [n_items, 3]
    >>> bool(np.allclose(asysvd.transform(X[:2]), X[:2] @ V1 + asysvd.module_.enc_biases[0].detach().cpu().numpy(),
    ...                  atol=1e-5))
    True

    ``SDense``, ``r̂ = x·S`` with a zero diagonal, trained by gradient, reaches EASE's
    closed form:

    >>> from skrec import EASE
    >>> ease = EASE(alpha=10.0, input_dropout=0.0, user_norm=0.0, item_norm=0.0).fit(X)  # plain EASE
    >>> sdense = AutoencoderRecommender((), loss="mse", input_dropout=0.0, normalize=False, alpha=10.0,
    ...                                 learning_rate=0.05, max_iter=200, early_stopping=False,
    ...                                 random_state=0).fit(X)
    >>> bool(np.abs(sdense.predict(X) - ease.predict(X)).max() < 0.05)
    True
    """

    _structure = ("hidden_layer_sizes", "activation", "variational", "tied")
    _param_specs = dict(
        TorchRecommender._param_specs,
        hidden_layer_sizes=dict(kind="sequence"),
        activation=dict(kind="str", options=tuple(ACTIVATIONS)),
        input_dropout=dict(kind="float", low=0, high=1, high_inclusive=False),
        loss=dict(kind="str", options=LOSSES),
        variational=dict(kind="bool"),
        beta=dict(kind="float", low=0),
        anneal_steps=dict(kind="int", low=0),
        tied=dict(kind="bool"),
        normalize=dict(kind="bool"),
        user_norm=dict(kind="float", low=0),
        item_norm=dict(kind="float", low=0),
        negative_sampling=dict(kind="bool"),
        n_shared_negatives=dict(kind="int", low=0),
        alpha=dict(kind="float", low=0),
        optimizer=dict(kind="str", options=("adam", "adamw", "adagrad", "sgd")),
        mixed_precision=dict(kind="bool"),
    )

    def __init__(self, hidden_layer_sizes=(600, 200), *, activation="tanh", input_dropout=0.5, loss="multinomial",
                 variational=False, beta=0.2, anneal_steps=20000, tied=False, normalize=True, user_norm=0.0,
                 item_norm=0.0, negative_sampling=False, n_shared_negatives=0, alpha=0.01, optimizer="adam",
                 mixed_precision=True, learning_rate=2e-3, batch_size=250, max_iter=200, early_stopping=True, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, lr_schedule=None, lr_cycle=2, checkpoint_every=0,
                 checkpoint_path=None, warm_start=False, device="auto", random_state=None, verbose=0):
        store_params(self, locals())

    @classmethod
    def _test_instances(cls):
        return [
            cls((8, 4), max_iter=4, batch_size=16, learning_rate=1e-2),
            cls((6,), variational=True, tied=True, anneal_steps=4, max_iter=4, batch_size=16, learning_rate=1e-2),
            cls((6,), loss="bce", negative_sampling=True, n_shared_negatives=5, max_iter=3, batch_size=16,
                learning_rate=1e-2),
            cls((), loss="mse", input_dropout=0.0, normalize=False, alpha=1.0, item_norm=0.2, max_iter=3,
                batch_size=16, learning_rate=1e-2),
        ]

    # ------------------------------------------------------------ parameters
    def _check_params(self):
        super()._check_params()
        hidden = check_param("hidden_layer_sizes", self.hidden_layer_sizes, "sequence")
        if self.item_norm and hidden != ():
            raise_invalid("item_norm", "0 unless hidden_layer_sizes=() (it rescales the item-item layer)",
                          self.item_norm)

    def _fit_spec(self, **fit_params):
        spec = super()._fit_spec()
        hidden = check_param("hidden_layer_sizes", self.hidden_layer_sizes, "sequence")
        return dict(spec, hidden_layer_sizes=hidden, variational=bool(self.variational and hidden),
                    tied=bool(self.tied and hidden))

    def _supports_transform(self):
        spec = getattr(self, "_spec", None)
        hidden = spec["hidden_layer_sizes"] if spec is not None else self.hidden_layer_sizes
        return not (isinstance(hidden, (list, tuple)) and len(hidden) == 0)

    # ------------------------------------------------------------------- fit
    _validation_split = TorchRecommender._row_validation_split  # rows held out, each split 80/20

    def _make_trainer(self, X, *, generator, seed, warm, previous=None):
        spec = self._spec
        check_mixed_precision(self.device_, spec["mixed_precision"])
        if not spec["hidden_layer_sizes"]:  # the item-item layer: n_items² parameters
            require_memory(item_item_bytes(*X.shape, spec["batch_size"]), self.device_, X.shape[1], "layer trains on",
                           "use EASE for its closed form, or hidden layers")
        X_train, X_val = self._split(X, self._seed)
        if warm:
            module = self.module_
        else:
            module = AutoencoderModule(X.shape[1], spec["hidden_layer_sizes"], spec["activation"],
                                       variational=spec["variational"], tied=spec["tied"]).to(self.device_)
            module.reset_parameters(generator)
        return AutoencoderTrainer(module, X_train, X_val, generator, spec, self._rows_per_batch(X.shape[1]),
                                  **self._gradient_options(warm))

    # ------------------------------------------------------------- inference
    def _score_batch(self, batch):
        return forward_scores(self.module_, batch.to_dense(), self._spec["normalize"], self._item_scale)

    def _transform_batch(self, batch):
        mu, _ = self.module_.encode(normalized_input(batch.to_dense(), self._spec["normalize"]))
        return mu  # [B, d]: the code (the mean of a variational code)


def item_item_bytes(n_users, n_items, batch_size):
    """Device memory of training the ``n_items x n_items`` layer by gradient, in bytes.

    Float32 matrices of that size: the layer, its gradient, Adam's two moments, the copy kept
    of the best epoch, and the square and its gradient that the L2 penalty makes in passing
    (``28 n²`` bytes); plus the training matrix when it is kept dense on the device (at most
    :data:`DENSE_LIMIT` entries) and four float32 ``[batch_size, n_items]`` activations (the
    batch, its scores, their error and its gradient).

    Examples
    --------
    >>> item_item_bytes(100, 1000, 250) / 1000**2  # 28 + 0.4 (the data) + 1.6 (a batch of all 100 rows)
    30.0
    """
    dense = n_users * n_items if n_users * n_items <= DENSE_LIMIT else 0
    return 28 * n_items * n_items + 4 * dense + 16 * min(batch_size, n_users) * n_items


def normalized_input(x, normalize):
    """Model input of dense rows ``x`` ``[B, I]`` (L2-normalised when asked).

    Examples
    --------
    >>> normalized_input(torch.tensor([[3.0, 4.0]]), True).tolist()
    [[0.6, 0.8]]
    """
    return x / x.norm(dim=1, keepdim=True).clamp(min=1e-12) if normalize else x


def row_weights(X, user_norm, device):
    """``n_u ** -user_norm`` per row of ``X`` as float32 on ``device`` (``None`` when 0).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> row_weights(sp.csr_matrix(np.ones((1, 4))), 0.5, torch.device("cpu")).tolist()
    [0.5]
    """
    if not user_norm:
        return None
    counts = np.maximum(np.diff(X.indptr), 1).astype(np.float64)
    return torch.as_tensor(counts ** -user_norm, dtype=torch.float32, device=device)


def item_scale(X, item_norm, device):
    """``c ** item_norm`` of the items' training counts, float32 (``None`` when 0).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> item_scale(sp.csr_matrix(np.ones((4, 1))), 0.5, torch.device("cpu")).tolist()
    [2.0]
    """
    if not item_norm:
        return None
    counts = np.maximum(np.bincount(X.indices, minlength=X.shape[1]), 1).astype(np.float64)
    return torch.as_tensor(counts ** item_norm, dtype=torch.float32, device=device)


def forward_scores(module, x, normalize, scale=None):
    """Scores of dense rows ``x``: ``f(x̃)``, or ``x̃·diag(c)·S·diag(1/c)`` with DAN's item scale."""
    if scale is None:
        return module(normalized_input(x, normalize))[0]
    c = scale.to(x.dtype)
    return module(normalized_input(x, normalize) * c)[0] / c


class AutoencoderTrainer(GradientTrainer):
    """Rows on the device (dense when small), corruption, negatives and the reconstruction loss.

    Validation (with held-out rows): minus the NDCG@100 of each row's held-out 20 % when the
    other 80 % is folded in.
    """

    def __init__(self, module, X, X_val, generator, spec, rows_per_batch, **options):
        super().__init__(module, generator, **options)
        device = generator.device
        self.spec, self.rows_per_batch = spec, rows_per_batch
        self.csr = DeviceCSR.from_scipy(X, device)
        self.dense = self.csr.to_dense() if X.shape[0] * X.shape[1] <= DENSE_LIMIT else None
        self.n_samples = X.shape[0]
        self.item_scale = item_scale(X, spec["item_norm"], device)
        self.weights = row_weights(X, spec["user_norm"], device)
        self.has_validation = X_val is not None
        if self.has_validation:
            self.val_hist, self.val_held = (DeviceCSR.from_scipy(part, device) for part in X_val)

    def loss(self, idx):
        s, generator = self.spec, self.generator
        x = self.dense[idx] if self.dense is not None else gather_rows(self.csr, idx)  # [B, I]
        items = None
        if s["negative_sampling"]:
            n_items = x.shape[1]
            mask = (x != 0).any(0)  # items held by some row of the batch
            if s["n_shared_negatives"]:
                neg = torch.randperm(n_items, generator=generator, device=x.device)[:s["n_shared_negatives"]]
                mask[neg] = True
            items = mask.nonzero().squeeze(1)  # sorted; one host synchronisation
            x = x[:, items]  # [B, |items|]; zero outside them, so norms are unchanged
        inp = normalized_input(x, s["normalize"])
        p = s["input_dropout"]
        if p > 0:
            inp = inp * (torch.rand(inp.shape, generator=generator, device=inp.device) >= p) / (1.0 - p)
        noise = None
        if s["variational"]:
            noise = torch.randn((x.shape[0], s["hidden_layer_sizes"][-1]), generator=generator, device=x.device)
        with autocast_bf16(x.device, s["mixed_precision"]):
            logits, mu, logvar = self.module(inp, noise, items)
        if s["variational"]:
            mu, logvar = mu.float(), logvar.float()
        loss = reconstruction_loss(s["loss"], logits.float(), x)  # [B], in float32
        if s["variational"]:
            beta = s["beta"] if s["anneal_steps"] == 0 else min(s["beta"], self.n_steps / s["anneal_steps"])
            loss = loss + beta * kl_divergence(mu, logvar)
        loss = (loss * self.weights[idx]).mean() if self.weights is not None else loss.mean()
        if s["alpha"]:
            loss = loss + s["alpha"] / self.n_samples * self.module.penalty()
        return loss

    def validation_loss(self):
        """Minus the NDCG@100 of the held-out rows (fold in 80 %, rank the other 20 %)."""
        hist_all, held_all = self.val_hist, self.val_held
        total = torch.zeros((), device=hist_all.indices.device)
        count = torch.zeros((), device=hist_all.indices.device)
        for start in range(0, hist_all.n_rows, self.rows_per_batch):  # memory bounded by the batch
            stop = min(start + self.rows_per_batch, hist_all.n_rows)
            hist, held = hist_all.slice_rows(start, stop), held_all.slice_rows(start, stop)
            scores = forward_scores(self.module, hist.to_dense(), self.spec["normalize"], self.item_scale)
            part, n = ndcg_on_device(scores, held, min(100, scores.shape[1]), exclude=hist)
            total, count = total + part, count + n
        return -total / count.clamp(min=1)

    def fitted_attributes(self):
        return {"_item_scale": self.item_scale}
