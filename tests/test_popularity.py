"""Popularity: the smoothed most-popular ranker."""

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import planted_popularity

from skrec import Popularity
from skrec.metrics import ndcg_at_k
from skrec.model_selection import holdout_split


@pytest.mark.parametrize("damping", [0.5, 1.0, 7.0])
def test_smoothed_popularity_is_counts_plus_damping_normalised(damping):
    keep = np.ones(80)
    keep[5] = 0  # an item nobody holds gets the pseudo-count only
    X = sp.csr_matrix(planted_popularity(n_items=80).multiply(keep[None, :]))
    X.eliminate_zeros()
    assert X.getnnz(axis=0)[5] == 0
    model = Popularity(damping=damping, device="cpu").fit(X)
    counts = X.getnnz(axis=0)
    expected = (counts + damping) / (counts + damping).sum()
    np.testing.assert_allclose(np.exp(model.item_bias_), expected, rtol=1e-5)
    assert model.n_iter_ == 1 and model.history_[0]["val_loss"] is None and model.history_[0]["lr"] is None


def test_counts_are_of_interactions_whatever_their_values():
    X = planted_popularity(seed=2)
    scaled = X.copy()
    scaled.data = np.random.default_rng(0).integers(1, 6, scaled.nnz).astype(float)
    a, b = Popularity(device="cpu").fit(X), Popularity(device="cpu").fit(scaled)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)


def test_the_training_loss_is_the_multinomial_log_loss():
    X = planted_popularity()
    model = Popularity(device="cpu").fit(X)
    counts = X.getnnz(axis=0)
    assert model.history_[0]["loss"] == pytest.approx(-(counts * model.item_bias_).sum() / counts.sum(), rel=1e-5)
    assert model.best_score_ == pytest.approx(-model.history_[0]["loss"])


def test_every_row_gets_the_popularity_order_ties_by_index():
    X = planted_popularity(n_items=60)
    counts = X.getnnz(axis=0)
    model = Popularity(damping=0.0, device="cpu").fit(X)
    order = np.lexsort((np.arange(60), -counts))
    ids, scores = model.recommend(sp.csr_matrix((3, 60)), k=60)
    np.testing.assert_array_equal(ids, np.tile(order, (3, 1)))
    assert np.all(np.diff(scores, axis=1) <= 0)
    # seen items are left out; the rest keep their order
    history = sp.csr_matrix(([1.0, 1.0], ([0, 0], [order[0], order[3]])), shape=(1, 60))
    seen_ids, _ = model.recommend(history, k=5)
    np.testing.assert_array_equal(seen_ids[0], [order[1], order[2], order[4], order[5], order[6]])


def test_ranks_by_popularity_on_held_out_users():
    rng = np.random.default_rng(1)
    X = planted_popularity(seed=1, n_users=400, n_items=80)
    X_hist, y = holdout_split(X, 0.3, random_state=0)
    model = Popularity(device="cpu").fit(X_hist[:300], y[:300])
    ids, _ = model.recommend(X_hist[300:], k=10)
    popular = ndcg_at_k(y[300:], ids, k=10)
    random_ids = np.argsort(rng.random((100, 80)), axis=1)[:, :10]
    assert popular > ndcg_at_k(y[300:], random_ids, k=10) + 0.05
    assert model.score(X_hist[300:], y[300:]) == pytest.approx(popular)


def test_there_is_no_user_representation():
    model = Popularity(device="cpu").fit(planted_popularity())
    assert not hasattr(model, "transform")


@pytest.mark.parametrize("damping, exc, match", [
    (-1.0, ValueError, r"^damping must be a float >= 0"),
    (float("nan"), ValueError, r"^damping must be"),
    ("big", TypeError, r"^damping must be a float"),
    ((1.0, 2.0), TypeError, r"^damping must be a float"),
    (None, TypeError, r"^damping must be a float"),
])
def test_damping_is_validated(damping, exc, match):
    model = Popularity(damping=damping)
    with pytest.raises(exc, match=match):
        model.fit(planted_popularity())
    assert model.get_params()["damping"] is damping and not hasattr(model, "n_items_")


def test_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        Popularity(1.0)
