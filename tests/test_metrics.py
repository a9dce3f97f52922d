"""Tests for skrec.metrics: references, hand-computed cases, scorers, bad input."""

import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.metrics import ndcg_score
from sklearn.model_selection import GridSearchCV, KFold

from skrec.metrics import (
    RankingScorer,
    RegressionScorer,
    average_precision_at_k,
    get_scorer,
    hit_rate_at_k,
    mae,
    make_scorers,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    rmse,
)
from skrec.metrics import _ranking

FUNCS = {
    "recall": recall_at_k,
    "precision": precision_at_k,
    "ndcg": ndcg_at_k,
    "ap": average_precision_at_k,
    "hit_rate": hit_rate_at_k,
    "mrr": mrr_at_k,
}


def d(rank):
    """DCG discount of a 1-based rank."""
    return 1.0 / math.log2(rank + 1)


# --------------------------------------------------------------------------- reference
def reference_row(relevant, ranked, k):
    """Per-row metrics, written directly from the definitions (pure Python)."""
    top = list(ranked[:k])
    rel = [1 if (i >= 0 and i in relevant) else 0 for i in top]
    n_hits = sum(rel)
    denom = min(k, len(relevant))
    dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rel))
    idcg = sum(1 / math.log2(i + 2) for i in range(denom))
    ap, seen = 0.0, 0
    for i, r in enumerate(rel):
        if r:
            seen += 1
            ap += seen / (i + 1)
    first = next((i for i, r in enumerate(rel) if r), None)
    return {
        "recall": n_hits / denom,
        "precision": n_hits / k,
        "ndcg": dcg / idcg,
        "ap": ap / denom,
        "hit_rate": 1.0 if n_hits else 0.0,
        "mrr": 0.0 if first is None else 1.0 / (first + 1),
    }


def reference(dense_true, ranked_lists, k):
    per_row = {name: [] for name in FUNCS}
    skipped = 0
    for r in range(dense_true.shape[0]):
        relevant = set(int(i) for i in np.flatnonzero(dense_true[r]))
        if not relevant:
            skipped += 1
            for name in FUNCS:
                per_row[name].append(float("nan"))
            continue
        for name, value in reference_row(relevant, [int(i) for i in ranked_lists[r]], k).items():
            per_row[name].append(value)
    return per_row, skipped


def reference_ranking(scores_row, k):
    """Top k of one row of scores, ties broken by the lower item index."""
    return sorted(range(len(scores_row)), key=lambda i: (-scores_row[i], i))[:k]


# --------------------------------------------------------------------------- (1) sklearn
@pytest.mark.parametrize("seed", range(5))
def test_ndcg_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, n_items = 12, 15
    dense = (rng.random((n, n_items)) < 0.25).astype(float)
    dense[np.arange(n), rng.integers(0, n_items, n)] = 1.0  # every row has a relevant item
    scores = rng.random((n, n_items))  # continuous: no ties
    assert np.unique(scores).size == scores.size
    for k in (1, 3, 5, 10, n_items):
        expected = ndcg_score(dense, scores, k=k)
        assert ndcg_at_k(sp.csr_matrix(dense), scores, k=k) == pytest.approx(expected, abs=1e-12)
        per_row = ranking_metrics(sp.csr_matrix(dense), scores, [f"ndcg@{k}"], per_row=True)
        for r in range(n):
            row = ndcg_score(dense[r:r + 1], scores[r:r + 1], k=k)
            assert per_row[f"ndcg@{k}"][r] == pytest.approx(row, abs=1e-12)


# --------------------------------------------------------------------------- (2) by hand
@pytest.fixture
def small():
    dense = np.zeros((4, 6))
    dense[0, [0, 2]] = 1       # row 0: {0, 2}
    dense[1, [1, 3, 4, 5]] = 1  # row 1: {1, 3, 4, 5}
    #                            row 2: nothing -> skipped
    dense[3, 5] = 1            # row 3: {5}
    ids = np.array([
        [0, 1, 2, 3],    # hits@3: 1 0 1
        [0, 3, -1, -1],  # hits@3: 0 1 0 (padding)
        [0, 1, 2, 3],
        [1, 2, 3, 5],    # hits@3: 0 0 0, hit at rank 4
    ])
    return sp.csr_matrix(dense), ids


def test_hand_computed_k3(small):
    y, ids = small
    k = 3
    assert recall_at_k(y, ids, k) == pytest.approx((2 / min(3, 2) + 1 / min(3, 4) + 0 / 1) / 3)
    assert precision_at_k(y, ids, k) == pytest.approx((2 / 3 + 1 / 3 + 0 / 3) / 3)
    ndcg0 = (d(1) + d(3)) / (d(1) + d(2))
    ndcg1 = d(2) / (d(1) + d(2) + d(3))
    assert ndcg_at_k(y, ids, k) == pytest.approx((ndcg0 + ndcg1 + 0) / 3)
    ap0 = (1 / 1 + 2 / 3) / min(3, 2)
    ap1 = (1 / 2) / min(3, 4)
    assert average_precision_at_k(y, ids, k) == pytest.approx((ap0 + ap1 + 0) / 3)
    assert hit_rate_at_k(y, ids, k) == pytest.approx((1 + 1 + 0) / 3)
    assert mrr_at_k(y, ids, k) == pytest.approx((1 / 1 + 1 / 2 + 0) / 3)


def test_hand_computed_k4(small):
    y, ids = small
    assert mrr_at_k(y, ids, 4) == pytest.approx((1 / 1 + 1 / 2 + 1 / 4) / 3)
    assert hit_rate_at_k(y, ids, 4) == pytest.approx(1.0)
    assert recall_at_k(y, ids, 4) == pytest.approx((2 / 2 + 1 / 4 + 1 / 1) / 3)
    assert precision_at_k(y, ids, 4) == pytest.approx((2 / 4 + 1 / 4 + 1 / 4) / 3)
    ndcg3 = d(4) / d(1)
    ndcg1 = d(2) / (d(1) + d(2) + d(3) + d(4))
    ndcg0 = (d(1) + d(3)) / (d(1) + d(2))
    assert ndcg_at_k(y, ids, 4) == pytest.approx((ndcg0 + ndcg1 + ndcg3) / 3)
    ap3 = (1 / 4) / 1
    assert average_precision_at_k(y, ids, 4) == pytest.approx(((1 + 2 / 3) / 2 + (1 / 2) / 4 + ap3) / 3)


def test_perfect_ranking_scores_one_with_many_relevant():
    y = sp.csr_matrix(np.array([[1.0, 1, 1, 1, 1, 0]]))
    ids = np.array([[4, 3, 2]])
    for name, f in FUNCS.items():
        assert f(y, ids, 3) == pytest.approx(1.0), name


def test_values_in_y_true_are_binary_relevance():
    ids = np.array([[2, 0, 1]])
    a = sp.csr_matrix(np.array([[5.0, 0, 0.5]]))
    b = sp.csr_matrix(np.array([[1.0, 0, 1.0]]))
    for f in FUNCS.values():
        assert f(a, ids, 3) == f(b, ids, 3)


def test_returns_python_float(small):
    y, ids = small
    for f in FUNCS.values():
        assert type(f(y, ids, 2)) is float


# --------------------------------------------------------------------------- (3) random
def _random_case(rng):
    n = int(rng.integers(1, 15))
    n_items = int(rng.integers(1, 25))
    k = int(rng.integers(1, n_items + 1))
    dense = (rng.random((n, n_items)) < rng.uniform(0.05, 0.6)).astype(float)
    if not dense.any():
        dense[0, 0] = 1.0
    # tie-heavy scores (few distinct values, some -inf) to exercise tie-breaking
    scores = rng.integers(0, 4, (n, n_items)).astype(float)
    scores[rng.random((n, n_items)) < 0.1] = -np.inf
    m = k + int(rng.integers(0, 3))
    ids = np.full((n, m), -1, dtype=np.int64)
    for r in range(n):
        length = int(rng.integers(0, min(m, n_items) + 1))
        ids[r, :length] = rng.permutation(n_items)[:length]
    return dense, scores, ids, k


@pytest.mark.parametrize("seed", range(50))
def test_vectorized_matches_reference(seed):
    rng = np.random.default_rng(1000 + seed)
    dense, scores, ids, k = _random_case(rng)
    y = sp.csr_matrix(dense) if seed % 2 else sp.coo_matrix(dense)
    names = [f"{name}@{k}" for name in FUNCS]

    # ids input (with -1 padding)
    expected, skipped = reference(dense, ids, k)
    got = ranking_metrics(y, ids, names, per_row=True)
    assert got["n_rows_skipped"] == skipped
    assert got["n_rows_evaluated"] == dense.shape[0] - skipped
    means = ranking_metrics(y, ids, names)
    for name in FUNCS:
        np.testing.assert_allclose(got[f"{name}@{k}"], expected[name], rtol=1e-12, atol=1e-15)
        assert means[f"{name}@{k}"] == pytest.approx(np.nanmean(expected[name]), abs=1e-12)
        assert FUNCS[name](y, ids, k) == pytest.approx(means[f"{name}@{k}"], abs=1e-15)

    # scores input == ids computed by the reference ranking
    ranked = np.array([reference_ranking(list(row), k) for row in scores])
    assert np.array_equal(_ranking._topk_from_scores(scores, k), ranked)
    from_scores = ranking_metrics(y, scores, names, per_row=True)
    from_ids = ranking_metrics(y, ranked, names, per_row=True)
    for key in names:
        np.testing.assert_array_equal(from_scores[key], from_ids[key])


@pytest.mark.parametrize("chunk", [1, 7, 1 << 24])
def test_topk_from_scores_equals_stable_argsort(monkeypatch, chunk):
    monkeypatch.setattr(_ranking, "_SCORE_CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(3)
    scores = rng.integers(-2, 3, (40, 17)).astype(np.float32)
    scores[0] = 0.0  # a row of all ties
    scores[1, 3] = -0.0
    for k in (1, 2, 5, 16, 17):
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(_ranking._topk_from_scores(scores, k), expected)


def test_several_k_from_one_call(small):
    y, ids = small
    res = ranking_metrics(y, ids, ["recall@2", "recall@4", "ndcg@3", "average_precision@3", "ap@3"])
    assert res["recall@2"] == pytest.approx(recall_at_k(y, ids, 2))
    assert res["recall@4"] == pytest.approx(recall_at_k(y, ids, 4))
    assert res["ndcg@3"] == pytest.approx(ndcg_at_k(y, ids, 3))
    assert res["average_precision@3"] == res["ap@3"] == pytest.approx(average_precision_at_k(y, ids, 3))


def test_inputs_not_mutated():
    rng = np.random.default_rng(0)
    dense = (rng.random((5, 8)) < 0.4).astype(float)
    dense[:, 0] = 1
    coo = sp.coo_matrix(dense)
    # unsorted CSR with an explicit zero
    y = sp.csr_matrix((np.array([1.0, 0.0, 2.0]), np.array([3, 1, 0]), np.array([0, 3, 3])),
                      shape=(2, 4))
    y_before = (y.data.copy(), y.indices.copy(), y.indptr.copy())
    ids = np.array([[0, 1, -1], [2, 3, 1]], dtype=np.int32)
    ids_before = ids.copy()
    scores = rng.random((5, 8))
    scores_before = scores.copy()
    ranking_metrics(y, ids, ["ndcg@3", "ap@2"])
    ranking_metrics(coo, scores, ["mrr@4"])
    assert np.array_equal(ids, ids_before) and ids.dtype == np.int32
    assert np.array_equal(scores, scores_before)
    for a, b in zip((y.data, y.indices, y.indptr), y_before):
        assert np.array_equal(a, b)
    # canonical float64 CSR with an explicit zero (check_interactions would drop it in place)
    z = sp.csr_matrix((np.array([1.0, 0.0, 2.0]), np.array([0, 1, 2]), np.array([0, 3, 3])),
                      shape=(2, 3))
    for f in (lambda: ndcg_at_k(z, np.array([[0, 1], [1, 2]]), 2), lambda: rmse(z, np.ones((2, 3)))):
        f()
        assert z.nnz == 3 and np.array_equal(z.data, [1.0, 0.0, 2.0])
        assert np.array_equal(z.indices, [0, 1, 2])
    pred = sp.csr_matrix(dense * 2)
    pred_before = pred.data.copy()
    rmse(sp.csr_matrix(dense), pred)
    assert np.array_equal(pred.data, pred_before)


# --------------------------------------------------------------------------- (4) skipped
def test_skipped_rows_counted_and_excluded():
    dense = np.zeros((5, 4))
    dense[1, 2] = 1
    dense[3, 0] = 1
    ids = np.array([[2, 0]] * 5)
    res = ranking_metrics(sp.csr_matrix(dense), ids, ["hit_rate@1", "recall@2"], per_row=True)
    assert res["n_rows_evaluated"] == 2
    assert res["n_rows_skipped"] == 3
    assert np.isnan(res["hit_rate@1"][[0, 2, 4]]).all()
    np.testing.assert_array_equal(res["hit_rate@1"][[1, 3]], [1.0, 0.0])
    means = ranking_metrics(sp.csr_matrix(dense), ids, ["hit_rate@1"])
    assert means["hit_rate@1"] == (1 + 0) / 2
    assert isinstance(means["n_rows_evaluated"], int) and isinstance(means["n_rows_skipped"], int)


def test_no_row_with_relevant_item_raises():
    with pytest.raises(ValueError, match="^y_true must"):
        ndcg_at_k(sp.csr_matrix((3, 4)), np.full((3, 2), -1), k=2)
    with pytest.raises(ValueError, match="^y_true must"):
        ranking_metrics(sp.csr_matrix((3, 4)), np.full((3, 2), -1), ["ndcg@2"], per_row=True)


# --------------------------------------------------------------------------- (5) rmse/mae
def test_rmse_mae_against_numpy():
    rng = np.random.default_rng(7)
    mask = rng.random((20, 9)) < 0.3
    mask[0, 0] = True
    truth = np.where(mask, rng.integers(1, 6, (20, 9)), 0).astype(float)
    pred = rng.normal(3, 1, (20, 9))
    diff = (pred - truth)[mask]
    y = sp.csr_matrix(truth)
    assert rmse(y, pred) == pytest.approx(np.sqrt(np.mean(diff ** 2)))
    assert mae(y, pred) == pytest.approx(np.mean(np.abs(diff)))
    # sparse path: same pattern, built in another format and index order
    sparse_pred = sp.coo_matrix((pred[mask], np.nonzero(mask)), shape=truth.shape).tocsc()
    assert rmse(y, sparse_pred) == pytest.approx(np.sqrt(np.mean(diff ** 2)))
    assert mae(sp.coo_matrix(truth), sparse_pred) == pytest.approx(np.mean(np.abs(diff)))
    assert type(rmse(y, pred)) is float and type(mae(y, pred)) is float


def test_sparse_prediction_of_exactly_zero_is_kept():
    y = sp.csr_matrix(np.array([[4.0, 0, 2.0]]))
    pred = sp.csr_matrix((np.array([0.0, 2.0]), np.array([0, 2]), np.array([0, 2])), shape=(1, 3))
    assert mae(y, pred) == pytest.approx((4 + 0) / 2)
    assert rmse(y, pred) == pytest.approx(math.sqrt((16 + 0) / 2))


def test_sparse_prediction_with_other_pattern_raises():
    y = sp.csr_matrix(np.array([[4.0, 0, 2.0]]))
    with pytest.raises(ValueError, match="^y_pred must .*same sparsity pattern"):
        rmse(y, sp.csr_matrix(np.array([[4.0, 1.0, 0]])))
    with pytest.raises(ValueError, match="^y_pred must .*same sparsity pattern"):
        mae(y, sp.csr_matrix(np.array([[4.0, 1.0, 2.0]])))


# --------------------------------------------------------------------------- (6) scorers
class FakeEstimator:
    """Recommends a fixed ranking to every row; predicts a constant rating."""

    def __init__(self, ranking, rating=3.0):
        self.ranking = np.asarray(ranking)
        self.rating = rating

    def recommend(self, X, k=10, *, exclude_seen=True, items=None):
        ids = np.tile(self.ranking[:k], (X.shape[0], 1))
        return ids, np.zeros(ids.shape)

    def predict_at(self, X, y):
        out = sp.csr_matrix(y, dtype=float, copy=True)
        out.data[:] = self.rating
        return out


def test_scorers_by_value():
    X = sp.csr_matrix((3, 5))
    y = sp.csr_matrix(np.array([[0, 0, 4.0, 0, 1.0], [5.0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0]]))
    est = FakeEstimator([2, 0, 3, 1, 4], rating=3.0)
    ids = np.tile([2, 0, 3, 1, 4], (3, 1))
    for name, f in FUNCS.items():
        for k in (1, 3):
            assert RankingScorer(name, k)(est, X, y) == pytest.approx(f(y, ids, k))
            assert get_scorer(f"{name}@{k}")(est, X, y) == pytest.approx(f(y, ids, k))
    # ndcg@3 by hand: row0 hit at 1 (|rel|=2); row1 hit at 2; row2 no hit within 3
    assert RankingScorer("ndcg", 3)(est, X, y) == pytest.approx((1 / (d(1) + d(2)) + d(2) + 0) / 3)
    assert RegressionScorer()(est, X, y) == pytest.approx(-math.sqrt((1 + 4 + 4 + 1) / 4))
    assert get_scorer("neg_mae")(est, X, y) == pytest.approx(-(1 + 2 + 2 + 1) / 4)
    assert get_scorer("average_precision@2")(est, X, y) == pytest.approx(average_precision_at_k(y, ids, 2))


def test_scorer_repr_pickle_and_passthrough():
    s = get_scorer("ap@5")
    assert repr(s) == "RankingScorer(metric='ap', k=5)"
    assert repr(RegressionScorer("mae")) == "RegressionScorer(metric='mae')"
    s2 = pickle.loads(pickle.dumps(s))
    assert (s2.metric, s2.k) == ("ap", 5)
    r2 = pickle.loads(pickle.dumps(get_scorer("neg_rmse")))
    assert r2.metric == "rmse"

    def custom(est, X, y):
        return 0.0

    assert get_scorer(custom) is custom
    scorers = make_scorers(["ndcg@10", "recall@20", "neg_rmse"])
    assert list(scorers) == ["ndcg@10", "recall@20", "neg_rmse"]
    assert (scorers["recall@20"].metric, scorers["recall@20"].k) == ("recall", 20)
    assert isinstance(scorers["neg_rmse"], RegressionScorer)


class PopularityRecommender(BaseEstimator):
    """Ranks items by training popularity (or its reverse); excludes seen items."""

    def __init__(self, reverse=False):
        self.reverse = reverse

    def fit(self, X, y=None):
        full = sp.csr_matrix(X) if y is None else sp.csr_matrix(X) + sp.csr_matrix(y)
        self.popularity_ = np.asarray((full != 0).sum(axis=0), dtype=float).ravel()
        return self

    def recommend(self, X, k=10, *, exclude_seen=True, items=None):
        X = sp.csr_matrix(X)
        pop = -self.popularity_ if self.reverse else self.popularity_
        scores = np.tile(pop, (X.shape[0], 1))
        if exclude_seen:
            scores[X.nonzero()] = -np.inf
        ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return ids, np.take_along_axis(scores, ids, axis=1)


def test_grid_search_picks_better_setting():
    rng = np.random.default_rng(0)
    n_users, n_items = 90, 30
    prob = 0.6 * np.exp(-np.arange(n_items) / 5.0)  # popularity decays with the item index
    full = rng.random((n_users, n_items)) < prob
    to_y = rng.random((n_users, n_items)) < 0.3
    X = sp.csr_matrix((full & ~to_y).astype(float))
    y = sp.csr_matrix((full & to_y).astype(float))
    search = GridSearchCV(
        PopularityRecommender(),
        {"reverse": [True, False]},
        scoring={"ndcg@10": get_scorer("ndcg@10"), "recall@5": get_scorer("recall@5")},
        refit="ndcg@10",
        cv=KFold(3),
        n_jobs=2,
        error_score="raise",
    )
    search.fit(X, y)
    assert search.best_params_ == {"reverse": False}
    res = search.cv_results_
    assert np.all(res["mean_test_ndcg@10"][1] > res["mean_test_ndcg@10"][0])
    assert np.all(res["mean_test_recall@5"][1] > res["mean_test_recall@5"][0])
    assert 0.0 < search.best_score_ <= 1.0


# --------------------------------------------------------------------------- (7) bad input
Y = sp.csr_matrix(np.array([[1.0, 0, 0, 1.0], [0, 1.0, 0, 0]]))
IDS = np.array([[0, 1, 2], [3, 2, 1]])


@pytest.mark.parametrize("call, exc, match", [
    (lambda: ndcg_at_k(None, IDS, 2), TypeError, "^y_true must"),
    (lambda: ndcg_at_k("abc", IDS, 2), TypeError, "^y_true must"),
    (lambda: ndcg_at_k(Y, IDS.astype(bool), 2), TypeError, "^y_pred must .*integer dtype.*floating dtype"),
    (lambda: ndcg_at_k(Y, np.array([["a", "b"], ["c", "d"]]), 2), TypeError, "^y_pred must"),
    (lambda: ndcg_at_k(Y, {"ids": IDS}, 2), TypeError, "^y_pred must"),
    (lambda: ndcg_at_k(Y, sp.csr_matrix(IDS), 2), TypeError, "^y_pred must"),
    (lambda: ndcg_at_k(Y, IDS[:1], 2), ValueError, r"^y_pred must .*\(2 rows\); got array of shape \(1, 3\)"),
    (lambda: ndcg_at_k(Y, IDS[0], 2), ValueError, "^y_pred must be a 2-D array"),
    (lambda: ndcg_at_k(Y, np.array([[0, 4, 1], [0, 1, 2]]), 2), ValueError, r"^y_pred must .*\[0, 4\)"),
    (lambda: ndcg_at_k(Y, np.array([[0, -2, 1], [0, 1, 2]]), 2), ValueError, r"^y_pred must .*-1 for padding"),
    (lambda: ndcg_at_k(Y, IDS, 4), ValueError, "^y_pred must .*at least k=4 columns"),
    (lambda: ndcg_at_k(Y, np.array([[0, 0, 1], [0, 1, 2]]), 2), ValueError, "^y_pred must .*without repeats"),
    (lambda: ndcg_at_k(Y, np.array([[0.1, np.nan, 0, 0], [0, 0, 0, 0.0]]), 2), ValueError, "^y_pred must .*NaN"),
    (lambda: ndcg_at_k(Y, np.zeros((2, 3)), 2), ValueError, r"^y_pred must .*\(4 columns\)"),
    (lambda: ndcg_at_k(Y, IDS, 0), ValueError, "^k must be an int >= 1"),
    (lambda: ndcg_at_k(Y, IDS, 1.5), TypeError, "^k must be an int"),
    (lambda: ndcg_at_k(Y, np.zeros((2, 4)), 5), ValueError, "^k must be an int >= 1 and <= 4; got 5"),
    (lambda: ranking_metrics(Y, IDS, ["auc@3"]), ValueError, "^metrics must .*'recall', 'precision', 'ndcg'"),
    (lambda: ranking_metrics(Y, IDS, ["ndcg"]), ValueError, "^metrics must"),
    (lambda: ranking_metrics(Y, IDS, ["ndcg@0"]), ValueError, "^metrics must"),
    (lambda: ranking_metrics(Y, IDS, []), ValueError, "^metrics must"),
    (lambda: ranking_metrics(Y, IDS, 10), TypeError, "^metrics must"),
    (lambda: ranking_metrics(Y, IDS, ["ndcg@2"], per_row="yes"), TypeError, "^per_row must be a bool"),
    (lambda: ranking_metrics(Y, np.zeros((2, 4)), ["ndcg@9"]), ValueError, "^k must"),
    (lambda: rmse(Y, np.ones((2, 3))), ValueError, r"^y_pred must .*same shape as y_true \(2, 4\)"),
    (lambda: rmse(Y, [[1.0, 2.0, 3.0, 4.0]] * 2), TypeError, "^y_pred must"),
    (lambda: rmse(Y, np.full((2, 4), np.nan)), ValueError, "^y_pred must be free of NaN"),
    (lambda: rmse(Y, np.full((2, 4), "x")), TypeError, "^y_pred must"),
    (lambda: mae(Y, sp.csr_matrix((2, 5))), ValueError, "^y_pred must .*same shape"),
    (lambda: mae(Y, sp.coo_matrix((np.ones(4), ([0, 0, 0, 1], [0, 0, 3, 1])), shape=(2, 4))),
     ValueError, "^y_pred must .*duplicate"),
    (lambda: mae(sp.csr_matrix((2, 4)), np.ones((2, 4))), ValueError, "^y_true must .*at least one stored"),
    (lambda: rmse(None, np.ones((2, 4))), TypeError, "^y_true must"),
    (lambda: get_scorer("ndgc@10"), ValueError, "^scoring must .*'neg_rmse'"),
    (lambda: get_scorer("ndcg@"), ValueError, "^scoring must"),
    (lambda: get_scorer(3), TypeError, "^scoring must"),
    (lambda: RankingScorer("auc"), ValueError, "^metric must"),
    (lambda: RankingScorer("ndcg", k=0), ValueError, "^k must"),
    (lambda: RegressionScorer("mse"), ValueError, "^metric must be one of 'rmse', 'mae'"),
    (lambda: RankingScorer()(FakeEstimator([0, 1, 2]), Y, None), ValueError, "^y must"),
    (lambda: RegressionScorer()(FakeEstimator([0, 1, 2]), Y, None), ValueError, "^y must"),
    (lambda: make_scorers([]), ValueError, "^names must"),
    (lambda: make_scorers(["ndcg@10", "bogus"]), ValueError, "^names must"),
    (lambda: make_scorers(None), TypeError, "^names must"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --------------------------------------------------------------------------- (8) metric names
# One parser (skrec.metrics._names) behind ranking_metrics, RankingScorer, get_scorer,
# make_scorers and model_selection.evaluate: the same spellings work everywhere.
SPELLINGS = ["NDCG@2", "Ndcg@2", " ndcg@2 ", "ndcg @ 2", "\tNDCG@ 2\n", "ndcg@02"]


def test_one_parser_is_left():
    from skrec.metrics import _names, _scorer
    from skrec.model_selection import _evaluate

    for module, names in [(_ranking, ["_METRIC_RE", "_parse_metrics", "_canonical_name",
                                      "_ALIASES", "_VALID_NAMES"]),
                          (_scorer, ["_SCORING_RE"]),
                          (_evaluate, ["_parse_metrics", "RANKING_METRICS", "_EXPECTED"])]:
        for name in names:
            assert not hasattr(module, name), f"{module.__name__}.{name}"
    assert _names.parse_metric_name("NDCG@10") == ("ndcg", 10)
    assert _names.parse_metric_name(" Average_Precision @ 3 ") == ("ap", 3)
    assert _names.parse_metric_name("AP@3", canonical=False) == ("ap", 3)
    assert _names.parse_metric_name("average_precision@3", canonical=False) == \
        ("average_precision", 3)
    assert _names.parse_metric_name(" RMSE ", extra=("rmse", "mae")) == ("rmse", None)
    assert _names.parse_metric_names(["NDCG@10", "ndcg @ 10", "ap@1", "average_precision@1"],
                                     unique=True, canonical=False) == [
        ("NDCG@10", "ndcg", 10), ("ap@1", "ap", 1), ("average_precision@1", "average_precision", 1)]
    assert _names.canonical_ranking_name(" Hit_Rate ") == "hit_rate"


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_case_and_spaces_accepted_everywhere(spelling):
    from skrec.model_selection import evaluate

    X = sp.csr_matrix((3, 5))
    y = sp.csr_matrix(np.array([[0, 0, 4.0, 0, 1.0], [5.0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0]]))
    est = FakeEstimator([2, 0, 3, 1, 4])
    ids = np.tile([2, 0, 3, 1, 4], (3, 1))
    expected = ndcg_at_k(y, ids, 2)
    # the ranking-metric helpers: results keyed by the name as given
    res = ranking_metrics(y, ids, [spelling, "Recall@3"])
    assert list(res)[:2] == [spelling, "Recall@3"]
    assert res[spelling] == pytest.approx(expected)
    assert res["Recall@3"] == pytest.approx(recall_at_k(y, ids, 3))
    assert ranking_metrics(y, ids, spelling)[spelling] == pytest.approx(expected)
    # scorers
    scorer = get_scorer(spelling)
    assert repr(scorer) == "RankingScorer(metric='ndcg', k=2)"
    assert scorer(est, X, y) == pytest.approx(expected)
    assert make_scorers([spelling])[spelling](est, X, y) == pytest.approx(expected)
    assert RankingScorer(spelling.partition("@")[0], 2)(est, X, y) == pytest.approx(expected)
    # evaluate
    out = evaluate(est, X, y, (spelling, "MAE"))
    assert list(out) == [spelling, "MAE", "n_rows_evaluated", "n_rows_skipped"]
    assert out[spelling] == pytest.approx(expected)


def test_aliases_and_regression_names_case_insensitive():
    X = sp.csr_matrix((3, 5))
    y = sp.csr_matrix(np.array([[0, 0, 4.0, 0, 1.0], [5.0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0]]))
    est = FakeEstimator([2, 0, 3, 1, 4], rating=3.0)
    ids = np.tile([2, 0, 3, 1, 4], (3, 1))
    ap = average_precision_at_k(y, ids, 3)
    assert get_scorer("Average_Precision@3")(est, X, y) == pytest.approx(ap)
    assert repr(get_scorer("AVERAGE_PRECISION@3")) == \
        "RankingScorer(metric='average_precision', k=3)"
    assert repr(get_scorer("AP@3")) == "RankingScorer(metric='ap', k=3)"
    assert ranking_metrics(y, ids, "Average_Precision @3")["Average_Precision @3"] == \
        pytest.approx(ap)
    assert repr(get_scorer(" NEG_RMSE ")) == "RegressionScorer(metric='rmse')"
    assert repr(get_scorer("Neg_MAE")) == "RegressionScorer(metric='mae')"
    assert RankingScorer(" MRR ", 2).metric == " MRR "  # stored as given (sklearn rule)
    assert RankingScorer(" MRR ", 2)(est, X, y) == pytest.approx(mrr_at_k(y, ids, 2))


def test_evaluate_drops_repeats_of_a_name():
    from skrec.model_selection import evaluate

    X = sp.csr_matrix((3, 5))
    y = sp.csr_matrix(np.array([[0, 0, 4.0, 0, 1.0], [5.0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0]]))
    out = evaluate(FakeEstimator([2, 0, 3, 1, 4]), X, y, ("ndcg@2", "NDCG @ 2", "ap@2",
                                                         "average_precision@2"))
    assert list(out) == ["ndcg@2", "ap@2", "average_precision@2", "n_rows_evaluated",
                         "n_rows_skipped"]


LIST = "'recall', 'precision', 'ndcg', 'ap' \\(or 'average_precision'\\), 'hit_rate', 'mrr'"


@pytest.mark.parametrize("call, exc, match", [
    (lambda: get_scorer("NDGC@10"), ValueError,
     f"^scoring must .*{LIST}.*'neg_rmse'.*; got 'NDGC@10'"),
    (lambda: get_scorer("ndcg@ten"), ValueError, "^scoring must .*; got 'ndcg@ten'"),
    (lambda: get_scorer("ndcg@-1"), ValueError, "^scoring must"),
    (lambda: get_scorer("ndcg@1.5"), ValueError, "^scoring must"),
    (lambda: get_scorer("ndcg@\u0661"), ValueError, "^scoring must"),  # non-ASCII digit
    (lambda: get_scorer("nd cg@10"), ValueError, "^scoring must"),
    (lambda: get_scorer("rmse"), ValueError, "^scoring must"),
    (lambda: get_scorer("neg_rmse@5"), ValueError, "^scoring must"),
    (lambda: get_scorer(""), ValueError, "^scoring must"),
    (lambda: get_scorer(None), TypeError, "^scoring must .*callable"),
    (lambda: make_scorers(["NDCG@10", "Ndcg@0"]), ValueError, "^names must .*; got 'Ndcg@0'"),
    (lambda: ranking_metrics(Y, IDS, ["NDCG@2", "AUC@2"]), ValueError,
     rf"^metrics must .*{LIST}.*; got 'AUC@2' in \['NDCG@2', 'AUC@2'\]"),
    (lambda: ranking_metrics(Y, IDS, "rmse"), ValueError, "^metrics must"),
    (lambda: ranking_metrics(Y, IDS, ["NDCG@"]), ValueError, "^metrics must .*; got 'NDCG@'"),
    (lambda: ranking_metrics(Y, IDS, ("ndcg@2", 3)), TypeError, r"^metrics must .*; got 3 in"),
    (lambda: ranking_metrics(Y, IDS, {"ndcg@2"}), TypeError, "^metrics must"),
    (lambda: RankingScorer("NDCG@10"), ValueError, f"^metric must be one of {LIST}"),
    (lambda: RankingScorer(None), TypeError, "^metric must"),
])
def test_bad_metric_names_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("metrics, exc", [
    (("FOO@10",), ValueError), ("Rmse@5", ValueError), ("NDCG", ValueError),
    (" ndcg@0 ", ValueError), ((), ValueError), (["ndcg@2", None], TypeError),
])
def test_evaluate_rejects_bad_names_like_the_rest(metrics, exc):
    from skrec.model_selection import evaluate

    X = sp.csr_matrix((2, 4))
    with pytest.raises(exc, match=f"^metrics must .*{LIST}.*'rmse', 'mae'"):
        evaluate(FakeEstimator([0, 1, 2, 3]), X, Y, metrics)
