"""EASE: the closed-form item-item model, with EDLAE's dropout and DAN's normalisations."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .._torch import DeviceCSR, Trainer
from .._torch.device import full_precision, require_memory
from ..base import TorchRecommender, register, store_params
from ..utils.validation import raise_invalid
from ._autoencoder import forward_scores, item_scale, normalized_input, row_weights
from ._module import AutoencoderModule

__all__ = ["EASE", "spd_inverse"]


def gram_rows(n_users, n_items):
    """Rows per dense batch of the Gram matrix: a quarter of the catalogue, at least ``2**20`` entries.

    Examples
    --------
    >>> gram_rows(10_000, 40_000), gram_rows(100_000, 100)
    (10000, 10485)
    >>> gram_rows(100_000, 40_000)
    10000
    """
    return max(1, min(n_users, max(n_items // 4, 2**20 // max(n_items, 1))))


def solve_bytes(n_items, normalize, *, batch_rows=0, nnz=0):
    """Device memory the solve peaks at, in bytes.

    The solve runs in float32 and is repeated in float64 when float32 is not exact enough
    (:func:`spd_inverse`); the budget is that worst case. The float32 regularised Gram
    matrix stays alive while the float64 copy, its Cholesky factor and the inverse (with the
    identity a GPU solver inverts against) are formed: ``28 n²`` bytes; with ``normalize``
    the float32 cross term ``X̃ᵀ W X`` adds ``4 n²``. The float32 layer itself adds ``4 n²``.
    Building the Gram matrix from dense batches of ``batch_rows`` rows holds up to four
    float32 batches (the rows, their normalised and weighted copies, and the product's
    workspace: ``16`` bytes per entry) and the interactions themselves (``nnz`` values, row
    and column indices: ``24`` bytes each).

    Examples
    --------
    >>> solve_bytes(1000, False) / 1000**2, solve_bytes(1000, True) / 1000**2
    (32.0, 36.0)
    >>> solve_bytes(1000, False, batch_rows=250) / 1000**2
    36.0
    """
    matrices = (32 if normalize else 28) + 4
    return matrices * n_items * n_items + 16 * batch_rows * n_items + 24 * nnz


def fit_bytes(X, normalize, device):
    """:func:`solve_bytes` of a fit on ``X``: with the dense Gram batches and the interactions on
    ``device`` unless the Gram matrix is built by sparse products on the host.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.random(100, 50, density=0.5, format="csr", random_state=0)
    >>> fit_bytes(X, False, torch.device("cpu")) == solve_bytes(50, False, batch_rows=100, nnz=X.nnz)
    True
    """
    if _host_grams(X, device):
        return solve_bytes(X.shape[1], normalize)
    return solve_bytes(X.shape[1], normalize, batch_rows=gram_rows(*X.shape), nnz=X.nnz)


class EASETrainer(Trainer):
    """One exact solve: ``B = P C - P diag(γ)``, zero diagonal, ``P = (X̃ᵀ W X̃ + Λ)⁻¹``.

    ``C = X̃ᵀ W X`` (``W = diag(n_u ** -user_norm)``), ``Λ = diag(alpha + p / (1 - p) G_jj)``
    and ``γ`` the Lagrange multipliers that hold the diagonal at zero. Without ``normalize``
    ``C = G = P⁻¹ - Λ``, so ``B = I - P diag(1 / diag P)`` (Steck, 2019), computed in place.
    """

    max_epochs = 1

    def __init__(self, X, device, spec):
        self.X, self.device, self.spec = X, device, spec
        self.rows_per_batch = gram_rows(*X.shape)
        self.module = AutoencoderModule(X.shape[1], ()).to(device)
        self.item_scale = item_scale(X, spec["item_norm"], device)

    @full_precision()  # the Gram products and the solve: never TF32 or bfloat16 passes
    def train_epoch(self):
        s, dev, X = self.spec, self.device, self.X
        weights = row_weights(X, s["user_norm"], dev)
        if _host_grams(X, dev):
            reg, cross = _sparse_grams(X, None if weights is None else weights.numpy(), s["normalize"])
        else:
            reg, cross = self._dense_grams(weights)
        diag = reg.diagonal()
        p = s["input_dropout"]
        # Dropout with 1/(1-p) scaling adds p/(1-p) * Σ_j G_jj B_j² in expectation (EDLAE); the
        # tiny jitter keeps alpha=0 solvable when an item is never used.
        jitter = 1e-8 * (diag.mean() + 1.0)
        diag.add_((p / (1.0 - p)) * diag + s["alpha"] + jitter)
        P = spd_inverse(reg, "alpha", s["alpha"])
        del reg, diag
        if cross is None:
            B = P.div_(-torch.diagonal(P).clone().unsqueeze(0))  # -P_ij / P_jj
        else:
            B = P @ cross.to(P.dtype)
            del cross
            gamma = torch.diagonal(B) / torch.diagonal(P)
            B.addcmul_(P, gamma.unsqueeze(0), value=-1.0)
            del P
        B.fill_diagonal_(0.0)
        with torch.no_grad():
            self.module.item_item.copy_(B)
        return None  # exact: there is no loss curve

    def _dense_grams(self, weights):
        """``X̃ᵀ diag(w) X̃`` (and ``X̃ᵀ diag(w) X`` when normalising) from dense row batches on the device."""
        X, dev, normalize = self.X, self.device, self.spec["normalize"]
        csr = DeviceCSR.from_scipy(X, dev, dtype=torch.float32)
        reg = torch.zeros((X.shape[1], X.shape[1]), dtype=torch.float32, device=dev)
        cross = torch.zeros_like(reg) if normalize else None
        for start in range(0, X.shape[0], self.rows_per_batch):  # accumulated in place, batch by batch
            stop = min(start + self.rows_per_batch, X.shape[0])
            x = csr.slice_rows(start, stop).to_dense()
            xi = normalized_input(x, normalize)
            xw = xi if weights is None else xi * weights[start:stop, None]
            reg.addmm_(xw.T, xi)
            if cross is not None:
                cross.addmm_(xw.T, x)
        return reg, cross

    def fitted_attributes(self):
        return {"_item_scale": self.item_scale}


# A sparse product's multiply-add costs about 200 times a dense BLAS one on the CPU (measured:
# scipy's product against torch's addmm on the ML-1M shape).
_SPARSE_COST = 200


def _sparse_gram_is_cheaper(X):
    """Whether ``Σ_u n_u²`` sparse multiply-adds beat ``n_users · n_items²`` dense ones."""
    lengths = np.diff(X.indptr).astype(np.float64)
    return _SPARSE_COST * float(lengths @ lengths) < X.shape[0] * float(X.shape[1]) ** 2


def _host_grams(X, device):
    """Whether the Gram matrices are built by sparse products on the host (the CPU, when cheaper)."""
    return device.type == "cpu" and _sparse_gram_is_cheaper(X)


#: Largest catalogue whose host Gram matrix comes from torch's CSR product; above it scipy's.
#: torch's (multithreaded) took 2.7 s where scipy's took 3.7 s at four times the ML-1M shape
#: (3,706 items), but at the ML-10M shape (10,681 items) it was no faster and the fit's
#: resident peak doubled (10.8 GB against 5.8 GB for numpy EASE).
TORCH_GRAM_ITEMS = 4096


def _sparse_grams(X, weights, normalize):
    """The Gram matrices of :meth:`EASETrainer._dense_grams` by sparse products on the host (float32)."""
    X = sp.csr_matrix(X, dtype=np.float32)
    lengths = np.diff(X.indptr)

    def scaled(M, row_factors):  # rows scaled in place of a copy: the canonical structure is kept
        M = M.copy()
        M.data *= np.repeat(row_factors.astype(np.float32), lengths)
        return M

    Xi = scaled(X, 1.0 / np.maximum(np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel()), 1e-12)) if normalize else X
    Xw = Xi if weights is None else scaled(Xi, weights)
    XwT = Xw.T.tocsr()
    if X.shape[1] <= TORCH_GRAM_ITEMS:
        XwT = _torch_csr(XwT)

        def product(M):
            return torch.sparse.mm(XwT, _torch_csr(M)).to_dense()
    else:
        def product(M):
            return torch.from_numpy((XwT @ M).toarray())
    return product(Xi), (product(X) if normalize else None)


def _torch_csr(M):
    """A canonical scipy CSR matrix as a torch CSR tensor on the CPU (the same float32 values)."""
    return DeviceCSR.from_scipy(M, torch.device("cpu"))._sparse()


#: Largest relative residual ``|A P v - v| / |v|`` accepted from a float32 inverse; above it
#: the solve is repeated in float64.
FLOAT32_RESIDUAL = 1e-4


@full_precision()
def spd_inverse(A, name, value):
    """``A⁻¹`` of a symmetric positive definite matrix through its Cholesky factor, float32 when exact enough.

    The float32 inverse is checked on four random vectors: when ``|A P v - v| / |v|``
    exceeds :data:`FLOAT32_RESIDUAL` (an ill-conditioned ``A``: a tiny ridge on a large
    catalogue), or the float32 factorisation fails, the solve is repeated in float64.
    ``A`` is left as it was.

    Parameters
    ----------
    A : torch.Tensor of shape (n, n)
    name, value
        The parameter to name, and its value, when ``A`` is not positive definite.

    Returns
    -------
    torch.Tensor of shape (n, n), float32 or float64

    Examples
    --------
    >>> A = torch.tensor([[2.0, 1.0], [1.0, 2.0]])
    >>> spd_inverse(A, "alpha", 0.0) @ A
    tensor([[1., 0.],
            [0., 1.]])
    """
    chol, info = torch.linalg.cholesky_ex(A)
    if not int(info):
        P = torch.cholesky_inverse(chol)
        del chol
        if A.dtype == torch.float64:
            return P
        v = torch.randn(A.shape[0], 4, generator=torch.Generator(A.device).manual_seed(0), device=A.device)
        if float(torch.linalg.matrix_norm(A @ (P @ v) - v) / torch.linalg.matrix_norm(v)) <= FLOAT32_RESIDUAL:
            return P
        del P
    elif A.dtype == torch.float64:
        raise_invalid(name, "large enough for the regularised Gram matrix to be positive definite", value)
    return spd_inverse(A.double(), name, value)


@register
class EASE(TorchRecommender):
    """EASE, the embarrassingly shallow autoencoder: an item-item matrix in closed form.

    Scores ``x·B`` with ``B`` the zero-diagonal ``n_items × n_items`` matrix minimising
    ``|X - X B|² + alpha |B|²`` (Steck, 2019). ``input_dropout`` turns it into the full-rank
    EDLAE (Steck, 2020), whose dropout enters the solution as its exact expected penalty;
    ``user_norm`` and ``item_norm`` add DAN's normalisations (Park et al., 2025). Any
    history row is scored by one product: fold-in is exact and free.

    The defaults are EDLAE with DAN's normalisations (``alpha=25``, dropout 0.5, user norm
    0.5, item norm 0.2), the middle of what the suite chose on validation data for
    MovieLens-100k and MovieLens-1M (``alpha`` 23-50, dropout 0.25-0.5, user norm 0.5, item
    norm 0-0.2); ``python -m benchmarks defaults`` scores them within 1 % of those choices, or
    above them, on six of eight ranking cells, and within 8 % on the other two
    (``benchmarks/results/defaults.md``). Plain EASE is ``EASE(alpha=500, input_dropout=0,
    user_norm=0, item_norm=0)``.

    Parameters
    ----------
    alpha : float >= 0, default=25.0
        L2 strength ``λ`` on ``B``.
    input_dropout : float in [0, 1), default=0.5
        EDLAE's dropout probability of the input entries, solved in expectation.
    user_norm : float >= 0, default=0.5
        Weight each training row by ``n_u ** -user_norm`` in the Gram matrix (DAN), so very
        active users do not dominate; the useful ``alpha`` shrinks with it.
    item_norm : float >= 0, default=0.2
        DAN's item normalisation: scores are ``x·W`` with ``W_ij = B_ij (c_i / c_j) **
        item_norm``, ``c`` the items' training counts (damps popular targets).
    normalize : bool, default=False
        Divide each input row by its L2 norm before the product.
    device : str, default="auto"
        The solve needs up to ``32 * n_items**2`` bytes on the device (``36 * n_items**2``
        with ``normalize=True``: ``n_items x n_items`` matrices, see Notes);
        ``fit`` refuses with a ``ValueError`` when that much is not free.

    Attributes
    ----------
    module_ : AutoencoderModule
        Holds ``item_item``, the matrix ``B``.
    n_users_, n_items_, n_iter_, history_, device_

    Notes
    -----
    With ``X̃`` the (normalised) input rows, ``W = diag(n_u ** -user_norm)``,
    ``G = X̃ᵀ W X̃`` and ``C = X̃ᵀ W X``, ``B`` minimises
    ``Σ_u w_u |x_u - x̃_u B|² + Σ_j (alpha + p / (1 - p) G_jj) |B_j|²`` under
    ``diag(B) = 0``, the second term being the L2 penalty plus dropout's exact expected
    penalty on the rows of ``B`` (EDLAE). Its solution is ``B = P C - P diag(γ)`` with
    ``P = (G + Λ)⁻¹`` (inverted through its Cholesky factor) and ``γ_j = (P C)_jj / P_jj``;
    without ``normalize``, ``C = G`` and this is Steck's ``B = I - P diag(1 / diag P)``.
    The solve works in float32 and checks its inverse on random vectors; when the residual
    exceeds ``1e-4`` (a tiny ``alpha`` on a large catalogue), it is repeated in float64
    (:func:`spd_inverse`). The Gram matrix is built in row batches whose size bounds the
    rest of the memory.

    References
    ----------
    Steck. Embarrassingly Shallow Autoencoders for Sparse Data. WWW 2019.
    Steck. Autoencoders that don't overfit towards the Identity. NeurIPS 2020.
    Park, Lee, et al. Why is Normalization Necessary for Linear Recommenders? SIGIR 2025.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> rng = np.random.default_rng(0)
    >>> X = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(float))
    >>> model = EASE(alpha=10.0, input_dropout=0.0, user_norm=0.0, item_norm=0.0).fit(X)  # plain EASE
    >>> ids, scores = model.recommend(X[:2], k=3)
    >>> ids.shape
    (2, 3)
    >>> B = model.module_.item_item.detach().cpu().numpy()
    >>> bool(np.allclose(model.predict(X[:2]), X[:2] @ B, atol=1e-5)), float(np.abs(np.diag(B)).max())
    (True, 0.0)

    DAN's normalised linear autoencoder, rows weighted by ``n_u ** -0.5``, popular targets
    damped by ``c_j ** -0.2``:

    >>> dan = EASE(alpha=2.0, input_dropout=0.5, user_norm=0.5, item_norm=0.2).fit(X)
    >>> dan.recommend(X[:1], k=3)[0].shape
    (1, 3)
    """

    _param_specs = dict(
        alpha=dict(kind="float", low=0),
        input_dropout=dict(kind="float", low=0, high=1, high_inclusive=False),
        user_norm=dict(kind="float", low=0),
        item_norm=dict(kind="float", low=0),
        normalize=dict(kind="bool"),
    )

    def __init__(self, *, alpha=25.0, input_dropout=0.5, user_norm=0.5, item_norm=0.2, normalize=False,
                 device="auto"):
        store_params(self, locals())

    @classmethod
    def _test_instances(cls):
        return [cls(alpha=5.0), cls(alpha=1.0, input_dropout=0.5, user_norm=0.5, item_norm=0.2, normalize=True)]

    def _make_trainer(self, X, *, generator, seed, warm, previous=None):
        require_memory(fit_bytes(X, self._spec["normalize"], self.device_), self.device_, X.shape[1], "solve fits on",
                       "use AutoencoderRecommender((), loss='mse') to train the same layer by gradient")
        return EASETrainer(X, self.device_, self._spec)

    def _score_batch(self, batch):
        return forward_scores(self.module_, batch.to_dense(), self._spec["normalize"], self._item_scale)
