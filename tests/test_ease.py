"""EASE: the closed-form item-item model, with EDLAE's dropout and DAN's normalisations.

References: Steck, Embarrassingly Shallow Autoencoders for Sparse Data (WWW 2019); Steck,
Autoencoders that don't overfit towards the Identity (NeurIPS 2020); Park, Lee, et al., Why
is Normalization Necessary for Linear Recommenders? (SIGIR 2025).
"""

import re

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skrec import EASE, AutoencoderRecommender, Popularity
from skrec._torch import device as device_module
from skrec.autoencoder import _ease
from skrec.model_selection import evaluate, holdout_split

from conftest import plain_ease, planted_implicit

HISTORY_KEYS = ["epoch", "loss", "lr", "time", "val_loss"]


def numpy_ease(X, alpha, input_dropout=0.0, user_norm=0.0, item_norm=0.0, normalize=False):
    """An independent EASE / EDLAE / DAN in float64 numpy, one ridge regression per column.

    Column ``k`` of ``B`` regresses the raw target column ``X[:, k]`` on the (normalised)
    inputs of every *other* item, rows weighted by ``n_u ** -user_norm``, input item ``j``
    penalised by ``alpha + p / (1 - p) * G_jj`` (dropout's expected penalty). Returns the
    item-item matrix ``W = diag(c) B diag(1 / c)``, ``c = counts ** item_norm``, and the
    function that scores history rows with it.
    """
    Xd = X.toarray().astype(np.float64)
    n_items = Xd.shape[1]
    w = np.maximum(np.diff(X.indptr), 1).astype(np.float64) ** -user_norm

    def inputs(rows):
        if not normalize:
            return rows
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)

    Xi = inputs(Xd)
    G = Xi.T @ (w[:, None] * Xi)
    C = Xi.T @ (w[:, None] * Xd)
    penalty = alpha + input_dropout / (1.0 - input_dropout) * np.diag(G)
    B = np.zeros((n_items, n_items))
    for k in range(n_items):
        others = np.arange(n_items) != k
        A = G[np.ix_(others, others)] + np.diag(penalty[others])
        B[others, k] = np.linalg.solve(A, C[others, k])
    c = np.maximum(np.bincount(X.indices, minlength=n_items), 1).astype(np.float64) ** item_norm
    W = c[:, None] * B / c[None, :]
    return W, lambda rows: inputs(rows.toarray().astype(np.float64)) @ W


def valued_matrix(seed=0, n_users=50, n_items=10):
    """Counts 1-3 at random, row densities that vary, one empty row and one unused item."""
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 4, size=(n_users, n_items)) * (
        rng.random((n_users, n_items)) < rng.uniform(0.15, 0.7, size=(n_users, 1)))
    dense[3] = 0
    dense[:, 7] = 0
    return sp.csr_matrix(dense.astype(float))


@pytest.mark.parametrize("params", [
    dict(alpha=2.0),
    dict(alpha=0.5, input_dropout=0.4),
    dict(alpha=1.0, user_norm=0.5),
    dict(alpha=1.0, item_norm=0.3),
    dict(alpha=1.0, normalize=True),
    dict(alpha=0.3, input_dropout=0.25, user_norm=0.7, item_norm=0.4, normalize=True),
], ids=["ease", "edlae", "dan-user", "dan-item", "normalize", "all"])
def test_matches_an_independent_numpy_implementation(params):
    X = valued_matrix()
    new = valued_matrix(seed=1, n_users=12)  # rows never seen in fit: fold-in is the same product
    W, scores = numpy_ease(X, **params)
    model = plain_ease(**params, device="cpu").fit(X)
    assert np.abs(model.predict(X) - scores(X)).max() < 1e-5
    assert np.abs(model.predict(new) - scores(new)).max() < 1e-5
    B = model.module_.item_item.detach().numpy()
    assert np.abs(np.diag(B)).max() == 0.0
    if not params.get("item_norm"):
        assert np.abs(B - W).max() < 1e-5


def test_plain_ease_is_steck_closed_form():
    """``B = I - P diag(1 / diag P)``, ``P = (XᵀX + λI)⁻¹`` (Steck, 2019), i.e. ``-P_ij / P_jj``."""
    rng = np.random.default_rng(1)
    X = sp.csr_matrix((rng.random((80, 15)) < 0.3).astype(float))
    lam = 3.0
    model = plain_ease(alpha=lam, device="cpu").fit(X)
    P = np.linalg.inv((X.T @ X).toarray() + lam * np.eye(15))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(model.predict(X), X.toarray() @ B, rtol=1e-4, atol=1e-5)


def test_fit_records_one_exact_solve():
    X = valued_matrix()
    model = plain_ease(alpha=1.0, device="cpu").fit(X)
    assert len(model.history_) == 1 and sorted(model.history_[0]) == HISTORY_KEYS
    record = model.history_[0]
    assert record["epoch"] == 1 and record["loss"] is None and record["val_loss"] is None
    assert record["lr"] is None
    assert model.n_iter_ == 1 and model.n_steps_ == 0
    assert model.best_iteration_ is None and model.best_score_ is None
    assert (model.n_users_, model.n_items_) == X.shape
    assert not hasattr(model, "transform")  # an item-item model has no user code
    np.testing.assert_array_equal(plain_ease(alpha=1.0, device="cpu").fit(X).predict(X), model.predict(X))


def test_parameters_are_read_at_fit_time():
    """set_params after fit does not change the fitted model's scores."""
    X = valued_matrix()
    model = plain_ease(alpha=1.0, normalize=True, item_norm=0.3, device="cpu").fit(X)
    before = model.predict(X)
    model.set_params(normalize=False, item_norm=0.0)
    np.testing.assert_array_equal(model.predict(X), before)


def test_dropout_is_the_expected_denoising_penalty():
    """EDLAE's ``B`` minimises the dropout-corrupted objective on average over the masks.

    The closed form adds ``p / (1 - p) diag(G)`` to the ridge; check that this is the
    exact expectation: a Monte Carlo average over corrupted copies of ``X`` (entries
    dropped with probability ``p``, the rest scaled by ``1 / (1 - p)``) equals the
    expected objective, and its gradient vanishes at EDLAE's ``B`` but not at EASE's.
    """
    rng = np.random.default_rng(2)
    X = sp.csr_matrix((rng.random((60, 10)) < 0.4).astype(float))
    Xd, p, lam = X.toarray(), 0.3, 1.0
    edlae = plain_ease(alpha=lam, input_dropout=p, device="cpu").fit(X).module_.item_item.detach().numpy()
    ease = plain_ease(alpha=lam, device="cpu").fit(X).module_.item_item.detach().numpy()
    G = Xd.T @ Xd
    P = np.linalg.inv(G + np.diag(lam + p / (1 - p) * np.diag(G)))
    B = P @ G - P * (np.diag(P @ G) / np.diag(P))[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(edlae, B, rtol=1e-4, atol=1e-5)

    n_masks = 3000
    corrupted = Xd[None] * (np.random.default_rng(0).random((n_masks,) + Xd.shape) >= p) / (1 - p)

    def monte_carlo(B):
        B = B.astype(np.float64)
        residual = Xd[None] - corrupted @ B
        objective = (residual ** 2).sum((1, 2)).mean() + lam * (B ** 2).sum()
        grad = -2 * np.einsum("tui,tuj->ij", corrupted, residual) / n_masks + 2 * lam * B
        np.fill_diagonal(grad, 0.0)  # the diagonal is held at zero
        return objective, np.linalg.norm(grad)

    def expected(B):
        return ((Xd - Xd @ B) ** 2).sum() + (p / (1 - p) * np.diag(G)[:, None] * B ** 2).sum() + lam * (B ** 2).sum()

    (obj_edlae, grad_edlae), (obj_ease, grad_ease) = monte_carlo(edlae), monte_carlo(ease)
    assert obj_edlae == pytest.approx(expected(edlae), rel=5e-3)
    assert obj_edlae < obj_ease
    assert grad_edlae < 0.05 * grad_ease


def test_user_and_item_norm_are_dan():
    """user_norm weighs each row's loss by n_u^-b (the Gram becomes Xᵀ diag(w) X); item_norm
    rescales the item-item matrix to W_ij = B_ij (c_i / c_j)^a (Park et al., 2025)."""
    rng = np.random.default_rng(3)
    X = sp.csr_matrix((rng.random((70, 12)) < rng.uniform(0.1, 0.7, size=(70, 1))).astype(float))
    X = X[np.diff(X.indptr) > 0]
    p, lam, b, a = 0.4, 0.5, 0.5, 0.3
    model = plain_ease(alpha=lam, input_dropout=p, user_norm=b, item_norm=a, device="cpu").fit(X)
    w = np.diff(X.indptr) ** -b
    G = (X.T @ sp.diags(w) @ X).toarray()
    P = np.linalg.inv(G + np.diag(lam + p / (1 - p) * np.diag(G)))
    S = P @ G - P * (np.diag(P @ G) / np.diag(P))[None, :]
    np.fill_diagonal(S, 0.0)
    c = np.asarray((X != 0).sum(0)).ravel() ** a
    np.testing.assert_allclose(model.predict(X), X.toarray() @ (c[:, None] * S / c[None, :]), rtol=1e-4,
                               atol=1e-5)
    plain = plain_ease(alpha=lam, input_dropout=p, device="cpu").fit(X)
    for option in (dict(user_norm=b), dict(item_norm=a)):  # each option changes the model
        alone = plain_ease(alpha=lam, input_dropout=p, **option, device="cpu").fit(X)
        assert np.abs(alone.predict(X) - plain.predict(X)).max() > 1e-2


def test_item_norm_damps_popular_targets():
    """With item_norm > 0 the popular items lose rank to the rarer ones in the same list."""
    X = planted_implicit(seed=3)
    counts = np.bincount(X.indices, minlength=X.shape[1])
    plain = plain_ease(alpha=5.0, device="cpu").fit(X)
    damped = plain_ease(alpha=5.0, item_norm=0.5, device="cpu").fit(X)
    top_plain, _ = plain.recommend(X, k=5)
    top_damped, _ = damped.recommend(X, k=5)
    assert counts[top_damped].mean() < counts[top_plain].mean()


def test_learns_planted_structure_well_above_popularity():
    X = planted_implicit()
    train, (hist, held) = X[:240], holdout_split(X[240:], 0.25, random_state=0)
    ndcg = evaluate(plain_ease(alpha=5.0, device="cpu").fit(train), hist, held, "ndcg@10")["ndcg@10"]
    pop = evaluate(Popularity(damping=0.0, device="cpu").fit(train), hist, held, "ndcg@10")["ndcg@10"]
    assert ndcg > 3 * pop, (ndcg, pop)


def test_the_gradient_item_item_layer_converges_to_the_closed_form():
    """AutoencoderRecommender((), loss="mse") trains the same layer; EASE is its exact minimiser."""
    rng = np.random.default_rng(1)
    X = sp.csr_matrix((rng.random((80, 15)) < 0.3).astype(float))
    lam = 3.0
    ease = plain_ease(alpha=lam, device="cpu").fit(X)
    sgd = AutoencoderRecommender((), loss="mse", input_dropout=0.0, normalize=False, alpha=lam, learning_rate=0.05,
                                 batch_size=80, max_iter=400, early_stopping=False, random_state=0,
                                 device="cpu").fit(X)
    np.testing.assert_allclose(sgd.predict(X), ease.predict(X), atol=2e-2)

    def objective(model):  # the gradient path never reaches a lower objective than the minimiser
        S = model.module_.item_item.detach().numpy().astype(np.float64)
        np.fill_diagonal(S, 0.0)
        return ((X.toarray() - X.toarray() @ S) ** 2).sum() + lam * (S ** 2).sum()

    assert objective(ease) <= objective(sgd) + 1e-6


def test_refuses_when_the_device_lacks_memory(monkeypatch):
    """The fit needs what fit_bytes predicts: one byte less is refused, the exact amount passes."""
    X = planted_implicit()
    n_items, cpu = X.shape[1], torch.device("cpu")
    need = _ease.fit_bytes(X, False, cpu)
    assert need >= 28 * n_items ** 2
    monkeypatch.setattr(device_module, "free_memory", lambda device: need - 1)
    model = EASE(device="cpu")
    with pytest.raises(ValueError, match=r"^X must be at most the items whose 60x60 solve fits on cpu .*"
                                         r"AutoencoderRecommender\(\(\), loss='mse'\).*; got 60 items\.$"):
        model.fit(X)
    assert not hasattr(model, "n_items_")  # a failed fit leaves nothing fitted behind
    monkeypatch.setattr(device_module, "free_memory", lambda device: need)
    assert model.fit(X).n_items_ == n_items
    assert _ease.fit_bytes(X, True, cpu) > need
    with pytest.raises(ValueError, match="^X must be at most the items whose 60x60 solve fits"):
        EASE(normalize=True, device="cpu").fit(X)  # the cross term stays alive beside the inverse
    monkeypatch.setattr(device_module, "free_memory", lambda device: None)  # unknown: try the solve
    assert EASE(normalize=True, device="cpu").fit(X).n_items_ == n_items


def _peak_bytes(fn):
    """Peak of the bytes torch allocated while ``fn`` ran, from the profiler's memory events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("n_users, n_items", [(3000, 400), (300, 400), (12000, 150)])
def test_the_memory_budget_bounds_the_measured_peak(monkeypatch, n_users, n_items, normalize):
    """What a GPU fit allocates (dense Gram batches on the device), measured on the CPU: the
    budget the fit is checked against is above the peak of the float32 solve and of its
    float64 repeat, and not more than 2.5 times the latter (the worst case it budgets for)."""
    monkeypatch.setattr(_ease, "_sparse_gram_is_cheaper", lambda X: False)  # the device's path
    X = sp.random(n_users, n_items, density=0.05, format="csr", random_state=0)
    X.data[:] = 1.0
    need = _ease.solve_bytes(n_items, normalize, batch_rows=_ease.gram_rows(n_users, n_items), nnz=X.nnz)
    single = _peak_bytes(lambda: EASE(normalize=normalize, device="cpu").fit(X))
    monkeypatch.setattr(_ease, "FLOAT32_RESIDUAL", -1.0)  # every float32 inverse is refused
    double = _peak_bytes(lambda: EASE(normalize=normalize, device="cpu").fit(X))
    assert single <= double <= need <= 2.5 * double, (single / n_items ** 2, double / n_items ** 2, need / n_items ** 2)


@pytest.mark.cuda
@pytest.mark.parametrize("normalize", [False, True])
def test_the_memory_budget_bounds_the_peak_on_cuda(normalize):
    X = sp.random(4000, 1500, density=0.03, format="csr", random_state=0)
    X.data[:] = 1.0
    dev = torch.device("cuda")
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    EASE(normalize=normalize, device="cuda").fit(X)
    torch.cuda.synchronize(dev)
    peak = torch.cuda.max_memory_allocated(dev) - base
    assert peak <= _ease.fit_bytes(X, normalize, dev) <= 2.5 * peak


def test_free_memory_counts_the_allocators_cached_blocks(monkeypatch):
    """On CUDA, blocks the caching allocator holds but does not use are free for the next fit."""

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 8000))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 700)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 200)
    assert device_module.free_memory(torch.device("cuda", 0)) == 1500


@pytest.mark.parametrize("params, error, match", [
    (dict(alpha=-1.0), ValueError, "alpha must be a float >= 0; got -1.0."),
    (dict(alpha="big"), TypeError, "alpha must be a float >= 0; got 'big'."),
    (dict(input_dropout=1.0), ValueError, "input_dropout must be a float >= 0 and < 1; got 1.0."),
    (dict(input_dropout=-0.1), ValueError, "input_dropout must be a float >= 0 and < 1; got -0.1."),
    (dict(user_norm=-0.5), ValueError, "user_norm must be a float >= 0; got -0.5."),
    (dict(item_norm=float("nan")), ValueError, "item_norm must be a float >= 0; got nan."),
    (dict(normalize="yes"), TypeError, "normalize must be a bool; got 'yes'."),
    (dict(device="tpu"), ValueError, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'tpu'."),
])
def test_bad_parameters_are_named(params, error, match):
    with pytest.raises(error, match="^" + re.escape(match) + "$"):
        EASE(**params).fit(valued_matrix())


def test_parameters_are_keyword_only_and_there_is_no_training_loop():
    with pytest.raises(TypeError):
        EASE(5.0)
    assert "max_iter" not in EASE().get_params() and "random_state" not in EASE().get_params()
    with pytest.raises(TypeError):
        EASE(max_iter=3)


@pytest.mark.cuda
def test_cpu_and_cuda_agree():
    X = planted_implicit()
    params = dict(alpha=5.0, input_dropout=0.2, user_norm=0.5, item_norm=0.2, normalize=True)
    cpu = EASE(**params, device="cpu").fit(X[:240])
    gpu = EASE(**params, device="cuda").fit(X[:240])
    np.testing.assert_allclose(gpu.predict(X[240:]), cpu.predict(X[240:]), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("params", [dict(), dict(normalize=True), dict(user_norm=0.0, item_norm=0.0, input_dropout=0.0)])
def test_sparse_and_dense_gram_paths_fit_the_same_model(monkeypatch, params):
    """On the CPU the Gram matrices come from sparse products when those are cheaper."""
    from skrec.datasets import make_interactions

    X = make_interactions(200, 40, density=0.1, random_state=0).X
    X.data = X.data * np.random.default_rng(0).uniform(0.5, 2.0, X.nnz)  # weighted entries
    fits = {}
    for sparse in (True, False):
        monkeypatch.setattr(_ease, "_sparse_gram_is_cheaper", lambda X, sparse=sparse: sparse)
        fits[sparse] = EASE(device="cpu", **params).fit(X)
    sparse_b, dense_b = (fits[k].module_.item_item.detach().numpy() for k in (True, False))
    np.testing.assert_allclose(sparse_b, dense_b, rtol=1e-5, atol=1e-6)
    assert _ease._sparse_gram_is_cheaper(X) == (200 * float(np.diff(X.indptr) @ np.diff(X.indptr)) < 200 * 40**2)


def test_the_inverse_is_float32_only_where_float32_is_exact_enough():
    """A well-conditioned Gram matrix is inverted in float32; a nearly singular one (the
    residual check fails) is solved again in float64, to float64's accuracy."""
    rng = np.random.default_rng(0)
    X = rng.random((200, 30))
    well = torch.tensor(X.T @ X + 10.0 * np.eye(30), dtype=torch.float32)
    P = _ease.spd_inverse(well, "alpha", 10.0)
    assert P.dtype == torch.float32
    assert np.allclose(P.double().numpy(), np.linalg.inv(well.double().numpy()), rtol=1e-4, atol=1e-7)
    hilbert = 1.0 / (np.arange(8)[:, None] + np.arange(8)[None, :] + 1.0) + 1e-9 * np.eye(8)  # condition ~1e9
    ill = torch.tensor(hilbert, dtype=torch.float32)
    P = _ease.spd_inverse(ill, "alpha", 1e-9)
    assert P.dtype == torch.float64
    residual = np.linalg.norm(ill.double().numpy() @ P.numpy() - np.eye(8))
    assert residual < 1e-5, residual
    assert ill.dtype == torch.float32  # the caller's matrix is left as it was
    with pytest.raises(ValueError, match="^alpha must be large enough"):
        _ease.spd_inverse(-torch.eye(3), "alpha", 0.0)


@pytest.mark.parametrize("normalize", [False, True])
def test_torch_and_scipy_host_grams_fit_the_same_model(monkeypatch, normalize):
    """Small catalogues take torch's CSR product for the host Gram matrix, large ones scipy's:
    the same matrices, so the same model."""
    monkeypatch.setattr(_ease, "_sparse_gram_is_cheaper", lambda X: True)  # the host's sparse products
    calls = []
    original = _ease._torch_csr
    monkeypatch.setattr(_ease, "_torch_csr", lambda M: calls.append(M.shape) or original(M))
    X = planted_implicit()
    model = dict(alpha=5.0, user_norm=0.5, normalize=normalize, device="cpu")
    via_torch = EASE(**model).fit(X).module_.item_item.detach().clone()
    assert calls
    calls.clear()
    monkeypatch.setattr(_ease, "TORCH_GRAM_ITEMS", 0)
    via_scipy = EASE(**model).fit(X).module_.item_item.detach()
    assert not calls
    torch.testing.assert_close(via_torch, via_scipy, rtol=1e-5, atol=1e-6)
