"""BaselineBiases: the closed forms, fold-in, both regularizations, weights and implicit mode."""

import numpy as np
import pytest
import scipy.sparse as sp

from skrec import BaselineBiases
from skrec.metrics import ndcg_at_k, rmse
from skrec.model_selection import holdout_split


def planted_biases(seed=0, n_users=300, n_items=120, density=0.15):
    rng = np.random.default_rng(seed)
    bu, bi = rng.normal(0, 0.6, n_users), rng.normal(0, 0.9, n_items)
    X = sp.random(n_users, n_items, density=density, format="coo", random_state=seed)
    vals = 3.4 + bu[X.row] + bi[X.col] + rng.normal(0, 0.2, X.nnz)
    return sp.csr_matrix((vals, (X.row, X.col)), shape=X.shape), bu, bi


def reference_als(X, a_user, a_item, sweeps=500):
    """Plain numpy alternating least squares of the same objective (l2, free global mean)."""
    coo = X.tocoo()
    u, i, r = coo.row, coo.col, coo.data
    bu, bi, mu = np.zeros(X.shape[0]), np.zeros(X.shape[1]), 0.0
    for _ in range(sweeps):
        mu = np.mean(r - bu[u] - bi[i])
        bi = np.bincount(i, r - mu - bu[u], X.shape[1]) / (np.bincount(i, minlength=X.shape[1]) + a_item)
        bu = np.bincount(u, r - mu - bi[i], X.shape[0]) / (np.bincount(u, minlength=X.shape[0]) + a_user)
    return mu, bu, bi


def test_als_matches_a_numpy_reference():
    X, _, _ = planted_biases()
    model = BaselineBiases(alpha=(4.0, 2.0), max_iter=500, tol=1e-7, device="cpu").fit(X)
    mu, bu, bi = reference_als(X, 4.0, 2.0)
    assert model.global_mean_ == pytest.approx(mu, abs=1e-4)
    np.testing.assert_allclose(model.user_bias_, bu, atol=1e-4)
    np.testing.assert_allclose(model.item_bias_, bi, atol=1e-4)


def test_recovers_planted_biases():
    X, bu, bi = planted_biases()
    model = BaselineBiases(alpha=0.5, device="cpu").fit(X)
    assert np.corrcoef(model.item_bias_, bi)[0, 1] > 0.98
    assert np.corrcoef(model.user_bias_, bu)[0, 1] > 0.95


@pytest.mark.parametrize("params", [dict(), dict(regularization="variance"),
                                    dict(user_weight_decay=0.5, item_weight_decay=0.3),
                                    dict(solver="adam", learning_rate=0.05, batch_size=512, max_iter=150,
                                         tol=0.0, n_iter_no_change=200)])
def test_fold_in_of_training_rows_matches_the_fitted_user_biases(params):
    X, _, _ = planted_biases()
    X_hist, y = holdout_split(X, 0.2, random_state=0)
    model = BaselineBiases(alpha=(3.0, 3.0), random_state=0, device="cpu", **params).fit(X_hist)
    folded = model.transform(X_hist).ravel()
    if params.get("solver", "als") == "als":  # exact: the last ALS step is the fold-in formula
        np.testing.assert_allclose(folded, model.user_bias_, atol=1e-4)
    else:  # mini-batch Adam ends near, not at, the optimum
        assert np.corrcoef(folded, model.user_bias_)[0, 1] > 0.99
    # predictions for held-out ratings: fold-in vs the learned user biases (RMSE within 0.5 %)
    coo = y.tocoo()
    learned = np.clip(model.global_mean_ + model.user_bias_[coo.row] + model.item_bias_[coo.col],
                      *model.rating_range_)
    folded_rmse = rmse(y, model.predict_at(X_hist, y))
    learned_rmse = np.sqrt(np.mean((learned - coo.data) ** 2))
    if params.get("solver", "als") == "als":
        assert abs(folded_rmse - learned_rmse) / learned_rmse < 0.005
    else:  # fold-in finishes the optimisation the mini-batches left open: never worse
        assert folded_rmse <= learned_rmse * 1.005


@pytest.mark.parametrize("regularization", ["l2", "variance"])
def test_als_solution_is_a_stationary_point_of_the_objective(regularization):
    X, _, _ = planted_biases()
    a_user, a_item = 8.0, 5.0
    m = BaselineBiases(alpha=(a_user, a_item), regularization=regularization, max_iter=500, tol=1e-7,
                       device="cpu").fit(X)
    coo = X.tocoo()
    bu, bi = m.user_bias_.astype(float), m.item_bias_.astype(float)
    res = coo.data - m.global_mean_ - bu[coo.row] - bi[coo.col]
    cu, ci = (bu.mean(), bi.mean()) if regularization == "variance" else (0.0, 0.0)
    grad_u = -np.bincount(coo.row, res, X.shape[0]) + a_user * (bu - cu)
    grad_i = -np.bincount(coo.col, res, X.shape[1]) + a_item * (bi - ci)
    assert abs(res.sum()) < 1e-2
    assert np.abs(grad_u).max() < 1e-3 and np.abs(grad_i).max() < 1e-3


def test_weight_decay_changes_the_fit():
    X, _, _ = planted_biases()
    plain = BaselineBiases(device="cpu").fit(X)
    weighted = BaselineBiases(user_weight_decay=1.0, device="cpu").fit(X)
    assert not np.allclose(plain.item_bias_, weighted.item_bias_)


def test_implicit_mode_is_smoothed_popularity():
    rng = np.random.default_rng(0)
    pop = rng.zipf(1.5, 60).clip(max=80)
    X = sp.csr_matrix((rng.random((200, 60)) < pop / pop.max() * 0.5).astype(float))
    model = BaselineBiases(mode="implicit", alpha=1.0, device="cpu").fit(X)
    counts = np.asarray(X.sum(0)).ravel()
    np.testing.assert_allclose(np.exp(model.item_bias_), (counts + 1) / (counts + 1).sum(), rtol=1e-4)
    ids, _ = model.recommend(sp.csr_matrix((1, 60)), k=60)
    order = np.lexsort((np.arange(60), -counts))
    np.testing.assert_array_equal(ids[0], order)
    # the gradient solver reaches the same ranking
    grad = BaselineBiases(mode="implicit", solver="adam", alpha=1e-4, learning_rate=0.1, max_iter=200,
                          batch_size=4096, tol=0.0, n_iter_no_change=300, random_state=0, device="cpu").fit(X)
    seen = counts > 0
    assert np.corrcoef(grad.item_bias_[seen], model.item_bias_[seen])[0, 1] > 0.99


def test_implicit_baseline_ranks_by_popularity_on_heldout_users():
    rng = np.random.default_rng(1)
    weights = np.linspace(2, 0.05, 80)
    X = sp.csr_matrix((rng.random((400, 80)) < weights / 4).astype(float))
    X_hist, y = holdout_split(X, 0.3, random_state=0)
    model = BaselineBiases(mode="implicit", device="cpu").fit(X_hist[:300], y[:300])
    ids, _ = model.recommend(X_hist[300:], k=10)
    popular = ndcg_at_k(y[300:], ids, k=10)
    random_ids = np.argsort(rng.random((100, 80)), axis=1)[:, :10]
    assert popular > ndcg_at_k(y[300:], random_ids, k=10) + 0.05
    assert model.score(X_hist[300:], y[300:]) == pytest.approx(popular)
