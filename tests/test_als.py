"""ALSRanker: the iALS normal equations, the objective, fold-in, quality, and the fit contract."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

from skrec import Popularity
from skrec.datasets import make_interactions
from skrec.factorization._als import ALSRanker
from skrec.metrics import ndcg_at_k
from skrec.model_selection import holdout_split

HISTORY_KEYS = {"epoch", "loss", "val_loss", "lr", "time"}


def tiny(seed=0, shape=(9, 7), density=0.4):
    """A small matrix with non-binary positive values (counts 1-4) and an empty column."""
    rng = np.random.default_rng(seed)
    dense = (rng.random(shape) < density) * rng.integers(1, 5, size=shape)
    dense[:, -1] = 0  # an item nobody holds: its exact solution is the zero vector
    dense[0, :2] = [1, 3]  # no empty row
    return sp.csr_matrix(dense.astype(float))


def reference_half_step(X, F, alpha, cw, nu):
    """Dense numpy iALS: solve every row of X against the fixed factors F (float64).

    Row r minimises Σ_j c_rj (p_rj - p·f_j)² + λ_r |p|², c = 1 + cw·x (1 where x = 0),
    p = 1[x > 0], λ_r = alpha · (Σ_j c_rj) ** nu.
    """
    D = np.asarray(X.todense(), dtype=np.float64)
    F = np.asarray(F, dtype=np.float64)
    out = np.empty((D.shape[0], F.shape[1]))
    for r, x in enumerate(D):
        c, p = 1.0 + cw * x, (x > 0).astype(float)
        lam = alpha * c.sum() ** nu
        A = F.T @ (c[:, None] * F) + lam * np.eye(F.shape[1])
        out[r] = np.linalg.solve(A, F.T @ (c * p))
    return out


def reference_objective(X, U, V, alpha, cw, nu):
    """Σ c (p - u·v)² + Σ λ_u |u|² + Σ λ_i |v|², divided by Σ c (what history_ records)."""
    D = np.asarray(X.todense(), dtype=np.float64)
    U, V = np.asarray(U, np.float64), np.asarray(V, np.float64)
    C, P = 1.0 + cw * D, (D > 0).astype(float)
    lam_u, lam_i = alpha * C.sum(1) ** nu, alpha * C.sum(0) ** nu
    L = (C * (P - U @ V.T) ** 2).sum() + (lam_u * (U ** 2).sum(1)).sum() + (lam_i * (V ** 2).sum(1)).sum()
    return L / C.sum()


def clusters(seed=0):
    X = make_interactions(300, 100, n_clusters=5, density=0.1, noise=0.1, random_state=seed).X
    X_hist, y = holdout_split(X, 0.25, random_state=seed)
    return X, X_hist, y


@pytest.mark.parametrize("nu", [0.0, 0.5])
def test_one_epoch_solves_the_ials_normal_equations(nu):
    """Item half-step from the user factors, then user half-step from the new item factors."""
    X = tiny()
    alpha, cw = 0.3, 2.5
    model = ALSRanker(n_factors=3, alpha=alpha, confidence_weight=cw, regularization_exponent=nu, max_iter=1,
                      device="cpu", random_state=0).fit(X)
    U1 = model.user_factors_
    model.set_params(warm_start=True).fit(X)  # one more epoch from (U1, V1)
    V2 = reference_half_step(X.T.tocsr(), U1, alpha, cw, nu)
    U2 = reference_half_step(X, V2, alpha, cw, nu)
    np.testing.assert_allclose(model.item_factors_, V2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.user_factors_, U2, rtol=1e-4, atol=1e-5)
    assert np.abs(model.item_factors_[-1]).max() == 0.0  # the empty item
    # the recorded loss is the exact objective over Σ c
    expected = reference_objective(X, model.user_factors_, model.item_factors_, alpha, cw, nu)
    assert model.history_[-1]["loss"] == pytest.approx(expected, rel=1e-5)


def test_objective_decreases_monotonically():
    X = make_interactions(80, 40, n_clusters=4, density=0.15, random_state=1).X
    X.data = np.random.default_rng(1).integers(1, 5, size=X.nnz).astype(float)  # counts: varied confidences
    model = ALSRanker(n_factors=8, alpha=0.1, confidence_weight=4.0, max_iter=12, tol=0.0,
                      device="cpu", random_state=0).fit(X)
    losses = np.array([h["loss"] for h in model.history_])
    assert len(losses) == 12
    # each half-step minimises the objective exactly in its block: it never increases (up to the
    # float32 rounding of the solved factors)
    assert np.all(np.diff(losses) <= 1e-6 * losses[:-1])
    assert losses[-1] < 0.9 * losses[0]


@pytest.mark.parametrize("early_stopping", [False, True])
def test_fold_in_of_training_rows_equals_the_learned_factors(early_stopping):
    X = make_interactions(80, 40, n_clusters=4, density=0.15, random_state=2).X
    model = ALSRanker(n_factors=6, alpha=0.05, max_iter=5, early_stopping=early_stopping, validation_fraction=0.25,
                      device="cpu", random_state=0).fit(X)
    assert model.user_factors_.shape == (80, 6)
    np.testing.assert_allclose(model.transform(X), model.user_factors_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict(X), model.user_factors_ @ model.item_factors_.T, rtol=1e-4,
                               atol=1e-5)


def test_beats_popularity_on_planted_clusters():
    _, X_hist, y = clusters()
    als = ALSRanker(n_factors=16, device="cpu", random_state=0).fit(X_hist)  # the default penalty
    pop = Popularity(device="cpu").fit(X_hist)
    assert als.score(X_hist, y) > pop.score(X_hist, y) + 0.15


def _implicit_als():
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError:
        return None
    return AlternatingLeastSquares


def _implicit_fit(model, X):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        model.fit(sp.csr_matrix(X, dtype=np.float32), show_progress=False)


@pytest.mark.skipif(_implicit_als() is None, reason="implicit is not installed (pip install implicit)")
@pytest.mark.filterwarnings("ignore:OpenBLAS is configured:RuntimeWarning")  # implicit's advice at construction
def test_one_epoch_equals_implicit_exact_solver():
    """implicit's Cholesky ALS from the same item factors takes the same steps.

    implicit's confidence is ``alpha * x`` (implicit 0.7), ours ``1 + confidence_weight * x``:
    on binary data its alpha is ``1 + confidence_weight``. implicit starts an iteration with
    the user half-step, so given our item factors V1 its first user step reproduces our U1 and
    its item step our V2.
    """
    X = make_interactions(50, 30, n_clusters=3, density=0.2, random_state=3).X
    alpha, cw = 0.7, 3.0
    ours = ALSRanker(n_factors=5, alpha=alpha, confidence_weight=cw, regularization_exponent=0.0, max_iter=1,
                     cg_steps=0, device="cpu", random_state=0).fit(X)
    theirs = _implicit_als()(factors=5, regularization=alpha, alpha=1.0 + cw, iterations=1, use_cg=False,
                             num_threads=1, random_state=0)
    theirs.user_factors = ours.user_factors_.astype(np.float32)
    theirs.item_factors = ours.item_factors_.astype(np.float32)
    _implicit_fit(theirs, X)
    ours.set_params(warm_start=True).fit(X)
    np.testing.assert_allclose(theirs.item_factors, ours.item_factors_, rtol=1e-3, atol=1e-4)
    folded = theirs.recalculate_user(np.arange(X.shape[0]), sp.csr_matrix(X, dtype=np.float32))
    np.testing.assert_allclose(folded, ours.transform(X), rtol=1e-3, atol=1e-4)


@pytest.mark.skipif(_implicit_als() is None, reason="implicit is not installed (pip install implicit)")
def test_quality_agrees_with_implicit():
    """Same data, same hyper-parameters (plain L2), implicit's own conjugate-gradient solver."""
    X, X_hist, y = clusters(seed=4)
    alpha, cw, d = 1.0, 5.0, 16
    ours = ALSRanker(n_factors=d, alpha=alpha, confidence_weight=cw, regularization_exponent=0.0, max_iter=15,
                     tol=0.0, device="cpu", random_state=0).fit(X_hist)
    theirs = _implicit_als()(factors=d, regularization=alpha, alpha=1.0 + cw, iterations=15, num_threads=1,
                             random_state=0)  # its default conjugate-gradient solver
    _implicit_fit(theirs, X_hist)
    hist = sp.csr_matrix(X_hist, dtype=np.float32)
    scores = theirs.recalculate_user(np.arange(X.shape[0]), hist) @ theirs.item_factors.T
    scores[hist.nonzero()] = -np.inf
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    theirs_ndcg = ndcg_at_k(y, ids, k=10)
    ours_ndcg = ours.score(X_hist, y)
    assert abs(ours_ndcg - theirs_ndcg) < 0.03, (ours_ndcg, theirs_ndcg)
    assert ours_ndcg > 0.3


@pytest.mark.parametrize("params, exc, pattern", [
    ({"n_factors": 0}, ValueError, r"^n_factors must be an int >= 1"),
    ({"n_factors": 2.0}, TypeError, r"^n_factors must be an int"),
    ({"alpha": 0.0}, ValueError, r"^alpha must be a float > 0"),
    ({"alpha": "big"}, TypeError, r"^alpha must be a float"),
    ({"confidence_weight": 0.0}, ValueError, r"^confidence_weight must be a float > 0"),
    ({"confidence_weight": -1.0}, ValueError, r"^confidence_weight must be a float > 0"),
    ({"regularization_exponent": -0.5}, ValueError, r"^regularization_exponent must be a float >= 0"),
    ({"init_std": -1.0}, ValueError, r"^init_std must be a float >= 0"),
    ({"max_iter": 0}, ValueError, r"^max_iter must be an int >= 1"),
    ({"tol": -1.0}, ValueError, r"^tol must be a float >= 0"),
    ({"early_stopping": "yes"}, TypeError, r"^early_stopping must be a bool"),
    ({"early_stopping": True, "validation_fraction": 0.01}, ValueError, r"^validation_fraction must be a fraction"),
    ({"checkpoint_every": 2}, ValueError, r"^checkpoint_path must be"),
])
def test_bad_parameters_are_named(params, exc, pattern):
    X = tiny()
    est = ALSRanker(device="cpu", **params)
    with pytest.raises(exc, match=pattern):
        est.fit(X)
    assert not hasattr(est, "n_items_")  # a failed fit leaves nothing behind


def test_no_gradient_loop_parameters():
    assert not {"learning_rate", "batch_size", "optimizer", "lr_schedule"} & set(ALSRanker().get_params())


def test_bad_data_is_named():
    X = tiny()
    negative = X.copy()
    negative.data[0] = -1.0
    with pytest.raises(ValueError, match=r"^X must be positive values"):
        ALSRanker(device="cpu").fit(negative)
    model = ALSRanker(n_factors=3, max_iter=2, device="cpu", random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"^X must be non-negative values"):
        model.predict(negative)
    with pytest.raises(ValueError, match=r"^warm_start must be False when the architecture changes \(n_factors"):
        model.set_params(warm_start=True, n_factors=4).fit(X)


def test_history_keys_and_best_score():
    X = make_interactions(80, 40, n_clusters=4, density=0.15, random_state=5).X
    plain = ALSRanker(n_factors=4, max_iter=3, device="cpu", random_state=0).fit(X)
    assert [h["epoch"] for h in plain.history_] == [1, 2, 3] and plain.n_iter_ == 3
    for h in plain.history_:
        assert set(h) == HISTORY_KEYS
        assert h["val_loss"] is None and h["lr"] is None and isinstance(h["loss"], float)
    assert plain.best_score_ == pytest.approx(-min(h["loss"] for h in plain.history_))
    stopped = ALSRanker(n_factors=4, max_iter=6, early_stopping=True, validation_fraction=0.25,
                        n_iter_no_change=2, device="cpu", random_state=0).fit(X)
    vals = [h["val_loss"] for h in stopped.history_]
    assert all(isinstance(v, float) and -1.0 <= v <= 0.0 for v in vals)
    assert stopped.best_score_ == pytest.approx(-min(vals))
    assert stopped.history_[stopped.best_iteration_ - 1]["val_loss"] == min(vals)


def test_warm_start_continues_the_same_iterations():
    X = make_interactions(80, 40, n_clusters=4, density=0.15, random_state=6).X
    params = dict(n_factors=5, alpha=0.5, tol=0.0, device="cpu", random_state=0)
    whole = ALSRanker(max_iter=5, **params).fit(X)
    part = ALSRanker(max_iter=3, **params).fit(X)
    part.set_params(warm_start=True, max_iter=2).fit(X)
    assert [h["epoch"] for h in part.history_] == [1, 2, 3, 4, 5]
    # ALS draws nothing after the initial factors: three epochs then two are the same five
    np.testing.assert_allclose(part.item_factors_, whole.item_factors_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(part.user_factors_, whole.user_factors_, rtol=1e-4, atol=1e-5)
    cold = clone(part).set_params(warm_start=False, max_iter=2).fit(X)
    assert cold.n_iter_ == 2


def test_similar_items_follow_the_planted_clusters():
    data = make_interactions(300, 100, n_clusters=5, density=0.1, noise=0.1, random_state=7)
    model = ALSRanker(n_factors=16, device="cpu", random_state=0).fit(data.X)
    ids, _ = model.similar_items(np.arange(100), k=5)
    same = (data.item_cluster[ids] == data.item_cluster[:, None]).mean()
    assert same > 0.8  # 0.2 by chance with 5 clusters


def test_conjugate_gradient_half_steps_approach_the_exact_solve():
    from skrec._torch import DeviceCSR
    from skrec.factorization._als import cg_rows, solve_rows

    X = make_interactions(80, 30, density=0.2, random_state=0).X
    X.data = X.data * np.random.default_rng(0).uniform(1.0, 3.0, X.nnz)
    X = sp.vstack([X, sp.csr_matrix((1, 30))], format="csr")  # an empty row: its exact solution is 0
    D = DeviceCSR.from_scipy(X, torch.device("cpu"))
    V = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    exact = solve_rows(D, V, 0.1, 2.0, 1.0)
    start = torch.randn(81, 5, generator=torch.Generator().manual_seed(1))
    errors = [float((cg_rows(D, V, start, 0.1, 2.0, 1.0, n_steps=n) - exact).norm()) for n in (1, 3, 5)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-3 * float(exact.norm())
    assert torch.equal(cg_rows(D, V, start, 0.1, 2.0, 1.0, n_steps=1)[-1], torch.zeros(5))


def test_conjugate_gradient_fit_matches_exact_quality_and_fold_in():
    X = make_interactions(300, 60, n_clusters=4, density=0.1, random_state=0).X
    exact = ALSRanker(n_factors=8, alpha=0.01, cg_steps=0, max_iter=10, random_state=0, device="cpu").fit(X)
    cg = ALSRanker(n_factors=8, alpha=0.01, cg_steps=3, max_iter=10, random_state=0, device="cpu").fit(X)
    assert cg.history_[-1]["loss"] == pytest.approx(exact.history_[-1]["loss"], rel=0.02)
    np.testing.assert_allclose(cg.transform(X), cg.user_factors_, atol=1e-4)  # users end on their exact solve
