"""MFRegressor: recovery of planted ratings, fold-in, the network variant, the loop, errors."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skrec import BaselineBiases, MFRegressor
from skrec.factorization._mf import BiasedMF, EmbeddingNet
from skrec._torch import DeviceCSR, ridge_fold_in
from skrec.datasets import make_interactions
from skrec.metrics import rmse
from skrec.model_selection import holdout_split


@pytest.fixture(scope="module")
def planted():
    b = make_interactions(400, 120, kind="explicit", n_clusters=4, density=0.3, noise=0.1, random_state=0)
    truth = b.global_mean + b.user_bias[:, None] + b.item_bias[None, :] + b.user_factors @ b.item_factors.T
    X_hist, y = holdout_split(b.X, 0.2, random_state=0)
    return b.X, X_hist, y, np.clip(truth, 1, 5)


@pytest.fixture(scope="module")
def mf(planted):
    _, X_hist, _, _ = planted
    return MFRegressor(n_factors=4, solver="gradient", alpha=0.02, learning_rate=0.02, batch_size=512, max_iter=60, early_stopping=False,
                       random_state=0, device="cpu").fit(X_hist)


def learned_predictions(model, y):
    """Predictions at y's positions from the learned (not folded-in) user vectors."""
    coo = y.tocoo()
    with torch.no_grad():
        p = model.module_(torch.as_tensor(coo.row.astype(np.int64)), torch.as_tensor(coo.col.astype(np.int64)))
    p = p.clamp(*model.rating_range_).numpy()
    return sp.csr_matrix((p, (coo.row, coo.col)), shape=y.shape)


def test_recovers_a_planted_low_rank_matrix(planted, mf):
    X, X_hist, y, truth = planted
    dense = mf.predict(X_hist)
    err_mf = np.sqrt(np.mean((dense - truth) ** 2))
    biases = BaselineBiases(damping=2.0, device="cpu").fit(X_hist).predict(X_hist)
    err_biases = np.sqrt(np.mean((biases - truth) ** 2))
    # The biases cannot express the rank-4 part; MF recovers the whole signal, unseen pairs included.
    assert err_mf < 0.5 * err_biases, (err_mf, err_biases)
    assert -mf.score(X_hist, y) < -BaselineBiases(damping=2.0, device="cpu").fit(X_hist).score(X_hist, y) - 0.1


def test_fold_in_of_training_rows_is_within_one_percent_of_the_learned_vectors(planted, mf):
    _, X_hist, y, _ = planted
    folded = rmse(y, mf.predict_at(X_hist, y))
    learned = rmse(y, learned_predictions(mf, y))
    assert abs(folded - learned) <= 0.01 * learned, (folded, learned)


def test_fold_in_is_the_exact_minimiser_of_the_row_objective(planted, mf):
    _, X_hist, _, _ = planted
    row = X_hist[5]
    p = mf.transform(row)[0].astype(np.float64)
    Q, bi, mu, a = mf.item_factors_.astype(np.float64), mf.item_bias_, mf.global_mean_, mf.alpha
    sigma = mf.rating_scale_
    assert sigma == pytest.approx(np.std(X_hist.data), rel=1e-5)
    items, r = row.indices, row.data
    A = np.c_[Q[items], np.ones(items.size)]
    n = items.size
    # the row objective in units of sigma: |(r - mu - b_i) / sigma - (p·q_i + b_u)|² + a n (|p|² + b_u²)
    sol = np.linalg.solve(A.T @ A + a * n * np.eye(A.shape[1]), A.T @ ((r - mu - bi[items]) / sigma))
    np.testing.assert_allclose(p, sol[:-1], atol=1e-4)


def test_the_rating_scale_does_not_change_the_model(planted):
    """Ratings on a 1-100 scale give the same model in units of their standard deviation:
    the defaults need no retuning for the scale."""
    _, X_hist, y, _ = planted
    kw = dict(n_factors=4, max_iter=5, early_stopping=False, random_state=0, device="cpu")
    base = MFRegressor(**kw).fit(X_hist)
    scaled_X, scaled_y = X_hist * 20.0, y * 20.0
    scaled = MFRegressor(**kw).fit(scaled_X)
    assert scaled.rating_scale_ == pytest.approx(20 * base.rating_scale_, rel=1e-5)
    np.testing.assert_allclose(scaled.item_factors_, base.item_factors_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(scaled.item_bias_, 20 * base.item_bias_, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(scaled.predict_at(scaled_X, scaled_y).data, 20 * base.predict_at(X_hist, y).data,
                               rtol=1e-3)
    assert -scaled.score(scaled_X, scaled_y) == pytest.approx(-20 * base.score(X_hist, y), rel=1e-3)


@pytest.mark.parametrize("budget", [40, 10**6])  # padded groups; bag-sums of outer products
def test_ridge_fold_in_matches_numpy_with_weights_gram_and_per_row_penalties(budget):
    rng = np.random.default_rng(0)
    X = sp.random(30, 20, density=0.3, random_state=1, format="csr")
    X.data = rng.normal(size=X.nnz)
    V = torch.as_tensor(rng.normal(size=(20, 3)))
    batch = DeviceCSR.from_scipy(X, torch.device("cpu"), dtype=torch.float64)
    w = torch.as_tensor(rng.random(X.nnz) + 0.5)
    alpha = torch.as_tensor(rng.random(30) + 0.1)
    gram = V.T @ V
    out = ridge_fold_in(batch, V, batch.values, alpha, weights=w, gram=gram, budget=budget).numpy()
    for r in range(30):
        s, e = X.indptr[r], X.indptr[r + 1]
        Vr, W = V.numpy()[X.indices[s:e]], w.numpy()[s:e]
        A = Vr.T @ (Vr * W[:, None]) + gram.numpy() + alpha[r].item() * np.eye(3)
        np.testing.assert_allclose(out[r], np.linalg.solve(A, Vr.T @ (W * X.data[s:e])), atol=1e-10)


def test_network_variant_predicts_in_the_rating_range_and_folds_in(planted):
    _, X_hist, y, _ = planted
    net = MFRegressor(n_factors=8, solver="gradient", hidden_layer_sizes=(32,), dropout=0.1, alpha=0.05, learning_rate=0.01,
                      batch_size=512, max_iter=15, early_stopping=False, fold_in_steps=60, clip=False, random_state=0, device="cpu").fit(X_hist)
    P = net.predict(X_hist[:20])
    low, high = net.rating_range_
    assert P.min() > low - 0.5 and P.max() < high + 0.5
    folded = rmse(y, net.predict_at(X_hist, y))
    learned = rmse(y, learned_predictions(net, y))
    base = rmse(y, BaselineBiases(damping=2.0, device="cpu").fit(X_hist).predict_at(X_hist, y))
    assert folded < base  # the network learns more than the biases
    assert folded <= 1.03 * learned, (folded, learned)  # frozen-item fold-in serves rows about as well
    assert net.transform(X_hist[:3]).shape == (3, 8)


def test_early_stopping_monitors_the_validation_squared_error(planted):
    _, X_hist, _, _ = planted
    m = MFRegressor(n_factors=4, solver="gradient", alpha=0.0, learning_rate=0.05, batch_size=256, max_iter=60, early_stopping=True,
                    n_iter_no_change=3, random_state=0, device="cpu").fit(X_hist)
    val = [h["val_loss"] for h in m.history_]
    assert m.n_iter_ < 60  # without L2 it overfits, and stops
    assert m.best_iteration_ == int(np.argmin(val)) + 1
    assert 0 < min(val) < 1.5  # a mean squared error on the 1-5 scale


def test_cosine_schedule_and_warm_start(planted):
    _, X_hist, _, _ = planted
    m = MFRegressor(n_factors=4, solver="gradient", batch_size=1024, learning_rate=0.005, max_iter=4,
                    lr_schedule="cosine", lr_cycle=2,
                    random_state=0, device="cpu").fit(X_hist)
    lrs = [h["lr"] for h in m.history_]
    assert lrs[0] < m.learning_rate and lrs[1] < lrs[0]  # annealed within each two-epoch cycle
    before = m.item_factors_.copy()
    m.set_params(warm_start=True, max_iter=2).fit(X_hist)
    assert len(m.history_) == 6 and not np.allclose(before, m.item_factors_)


def test_same_seed_same_model_and_different_seed_differs(planted):
    _, X_hist, _, _ = planted
    a = MFRegressor(n_factors=4, max_iter=3, random_state=1, device="cpu").fit(X_hist).item_factors_
    b = MFRegressor(n_factors=4, max_iter=3, random_state=1, device="cpu").fit(X_hist).item_factors_
    c = MFRegressor(n_factors=4, max_iter=3, random_state=2, device="cpu").fit(X_hist).item_factors_
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_hidden_layer_sizes_default_is_the_bilinear_model(planted):
    _, X_hist, _, _ = planted
    kw = dict(n_factors=4, max_iter=2, early_stopping=False, random_state=0, device="cpu")
    default = MFRegressor(**kw)
    assert default.hidden_layer_sizes == ()
    default.fit(X_hist)
    assert isinstance(default.module_, BiasedMF)
    assert default.global_mean_ == pytest.approx(X_hist.data.mean(), rel=1e-6)
    one = MFRegressor(**kw, solver="gradient", hidden_layer_sizes=8).fit(X_hist)  # an int is one hidden layer
    assert isinstance(one.module_, EmbeddingNet) and one.module_.mlp[0].out_features == 8


@pytest.mark.parametrize("params, exc, match", [
    (dict(hidden_layer_sizes=None), TypeError, "hidden_layer_sizes must be a tuple of positive ints; got None."),
    (dict(hidden_layer_sizes=(8, 0)), (ValueError, TypeError),
     r"hidden_layer_sizes must be a tuple of positive ints; got \(8, 0\)."),
    (dict(hidden_layer_sizes="8"), TypeError, "hidden_layer_sizes must be a tuple of positive ints; got '8'."),
    (dict(optimizer="sparse_adam"), ValueError,
     "optimizer must be one of 'adam', 'adamw', 'adagrad', 'sgd'; got 'sparse_adam'."),
    (dict(dropout=1.0), ValueError, "dropout must be"),
    (dict(alpha=-0.1), ValueError, "alpha must be"),
    (dict(fold_in_steps=0), ValueError, "fold_in_steps must be"),
])
def test_bad_hyper_parameters_are_named(planted, params, exc, match):
    _, X_hist, _, _ = planted
    with pytest.raises(exc, match=match):
        MFRegressor(**params).fit(X_hist)


@pytest.mark.cuda
def test_cuda_and_cpu_agree(planted):
    _, X_hist, y, _ = planted
    kw = dict(n_factors=4, solver="gradient", alpha=0.02, learning_rate=0.02, batch_size=512, max_iter=30,
              random_state=0)
    cpu = MFRegressor(device="cpu", **kw).fit(X_hist)
    gpu = MFRegressor(device="cuda", **kw).fit(X_hist)
    assert gpu.device_.type == "cuda"
    # Same initial state (built on the CPU); batch orders differ by device, so compare quality.
    np.testing.assert_allclose(gpu.score(X_hist, y), cpu.score(X_hist, y), rtol=0.02)
    net = MFRegressor(device="cuda", hidden_layer_sizes=(16,), **kw).fit(X_hist)
    assert np.isfinite(net.predict(X_hist[:5])).all()


def test_mf_loss_backward_is_the_gradient():
    from skrec.factorization._mf import MFLoss

    g = torch.Generator().manual_seed(0)
    tables = [torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in [(4, 3), (5, 3), (4,), (5,)]]
    users, items = torch.tensor([0, 3, 3, 1, 2, 0]), torch.tensor([1, 4, 0, 0, 2, 1])
    targets = torch.randn(6, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *t: MFLoss.apply(*t, users, items, targets, 0.3), tables)


@pytest.mark.parametrize("params, batch, rate", [
    (dict(), 8192, 0.02),                                  # the factorization: large batches
    (dict(hidden_layer_sizes=(8,)), 1024, 0.005),          # the network learns worse in them
    (dict(batch_size=300, learning_rate=0.1), 300, 0.1),   # given values are kept
])
def test_default_batch_and_rate_follow_the_model(planted, params, batch, rate):
    _, X_hist, _, _ = planted
    m = MFRegressor(n_factors=4, solver="gradient", max_iter=1, random_state=0, device="cpu", **params).fit(X_hist)
    assert m.get_params()["batch_size"] == params.get("batch_size")  # the parameter itself is untouched
    steps_per_epoch = -(-round(X_hist.nnz * 0.9) // batch)  # 10 % of the ratings are held out
    assert abs(m.n_steps_ - steps_per_epoch) <= 1
    assert m.history_[0]["lr"] == pytest.approx(rate)


# ------------------------------------------------------------------ the Gibbs sampler
@pytest.fixture(scope="module")
def gibbs(planted):
    _, X_hist, _, _ = planted
    return MFRegressor(n_factors=4, max_iter=40, burn_in=10, random_state=0, device="cpu").fit(X_hist)


def test_gibbs_is_the_default_and_recovers_the_planted_matrix_better_than_the_gradient_fit(planted, gibbs, mf):
    X, X_hist, y, truth = planted
    assert MFRegressor().solver == "gibbs"
    assert gibbs.n_iter_ == 40 and len(gibbs.history_) == 40 and gibbs.n_draws_ == 30
    assert all(np.isfinite(h["loss"]) and h["val_loss"] is None for h in gibbs.history_)
    err = np.sqrt(np.mean((gibbs.predict(X_hist) - truth) ** 2))
    err_mf = np.sqrt(np.mean((mf.predict(X_hist) - truth) ** 2))
    assert err < err_mf, (err, err_mf)
    assert -gibbs.score(X_hist, y) < -mf.score(X_hist, y)


def test_gibbs_serves_each_row_on_its_own_and_the_same_seed_gives_the_same_chain(planted, gibbs):
    _, X_hist, _, _ = planted
    np.testing.assert_allclose(gibbs.predict(X_hist[:7]), gibbs.predict(X_hist)[:7], rtol=1e-5, atol=1e-5)
    again = MFRegressor(n_factors=4, max_iter=40, burn_in=10, random_state=0, device="cpu").fit(X_hist)
    np.testing.assert_array_equal(again.predict(X_hist[:5]), gibbs.predict(X_hist[:5]))
    other = MFRegressor(n_factors=4, max_iter=40, burn_in=10, random_state=1, device="cpu").fit(X_hist)
    assert not np.allclose(other.item_factors_, gibbs.item_factors_)
    assert gibbs.transform(X_hist[:3]).shape == (3, 4)


def test_gibbs_ignores_early_stopping_and_warm_start_continues_the_chain(planted):
    _, X_hist, _, _ = planted
    m = MFRegressor(n_factors=4, max_iter=12, burn_in=2, early_stopping=True, n_iter_no_change=1, tol=10.0,
                    random_state=0, device="cpu").fit(X_hist)
    assert m.n_iter_ == 12 and m.n_draws_ == 10  # every sweep runs; no ratings held out
    before = m.item_factors_.copy()
    m.set_params(warm_start=True, max_iter=5, burn_in=0).fit(X_hist)
    assert len(m.history_) == 17 and m.n_draws_ == 5  # the new fit's draws only
    m.set_params(max_iter=9, burn_in=1, thin=3).fit(X_hist)
    assert m.n_draws_ == 2  # sweeps 4 and 7 of 1..9 (sweep 1 is the burn-in)
    assert not np.allclose(before, m.item_factors_)
    fresh = MFRegressor(n_factors=4, max_iter=1, random_state=0, device="cpu").fit(X_hist)
    assert m.history_[12]["loss"] < 0.9 * fresh.history_[0]["loss"]  # from the last state, not a fresh start


@pytest.mark.parametrize("params, match", [
    (dict(max_iter=10, burn_in=10), r"burn_in must be fewer sweeps than max_iter \(10\).*; got 10\."),
    (dict(hidden_layer_sizes=(8,)), r"solver must be 'gradient' when hidden_layer_sizes is set.*; got 'gibbs'\."),
    (dict(solver="mcmc"), "solver must be one of 'gibbs', 'gradient'; got 'mcmc'."),
    (dict(burn_in=-1), "burn_in must be"),
    (dict(thin=0), "thin must be"),
])
def test_bad_gibbs_parameters_are_named(planted, params, match):
    _, X_hist, _, _ = planted
    with pytest.raises(ValueError, match=match):
        MFRegressor(**params).fit(X_hist)


@pytest.mark.parametrize("budget", [40, 10**6])
def test_gaussian_rows_gives_the_posterior_mean_and_draws_of_its_covariance(budget):
    from skrec._torch.foldin import gaussian_rows

    rng = np.random.default_rng(0)
    X = sp.random(6, 9, density=0.5, random_state=2, format="csr")
    X.data = rng.normal(size=X.nnz)
    X = sp.vstack([X, sp.csr_matrix((1, 9))], format="csr")  # an empty row gets the prior
    V = torch.as_tensor(rng.normal(size=(9, 2)))
    P = torch.as_tensor(np.array([[2.0, 0.3, 0.1], [0.3, 1.5, 0.0], [0.1, 0.0, 1.0]]))
    m0 = torch.as_tensor([0.2, -0.1, 0.3])
    batch = DeviceCSR.from_scipy(X, torch.device("cpu"), dtype=torch.float64)
    kw = dict(noise_precision=2.5, prior_precision=P, prior_mean=m0, budget=budget)
    mean = gaussian_rows(batch, V, batch.values, **kw).numpy()
    covs = []
    for r in range(7):
        s, e = X.indptr[r], X.indptr[r + 1]
        F = np.c_[V.numpy()[X.indices[s:e]], np.ones(e - s)]
        A = P.numpy() + 2.5 * F.T @ F
        np.testing.assert_allclose(mean[r], np.linalg.solve(A, P.numpy() @ m0.numpy() + 2.5 * F.T @ X.data[s:e]),
                                   atol=1e-10)
        covs.append(np.linalg.inv(A))
    g = torch.Generator().manual_seed(0)
    draws = np.stack([gaussian_rows(batch, V, batch.values, generator=g, **kw).numpy() for _ in range(4000)])
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.05)
    for r in (0, 6):
        np.testing.assert_allclose(np.cov(draws[:, r].T), covs[r], atol=0.05)


def test_gibbs_thins_the_kept_draws_of_a_large_catalogue(planted, monkeypatch):
    from skrec.factorization import _mf

    _, X_hist, _, _ = planted
    kw = dict(n_factors=4, max_iter=12, burn_in=2, random_state=0, device="cpu")
    assert MFRegressor(**kw).fit(X_hist).n_draws_ == 10  # 10 draws x 120 items x 5 numbers: all kept
    monkeypatch.setattr(_mf, "GIBBS_DRAW_NUMBERS", 10 * 120 * 5 // 3)  # room for a third of them
    assert MFRegressor(**kw).fit(X_hist).n_draws_ == 3  # every third draw: 3, 6, 9 after the burn-in
    assert MFRegressor(**kw, thin=1).fit(X_hist).n_draws_ == 10  # a given thin is kept
