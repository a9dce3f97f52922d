"""Tests of skrec.model_selection: per-row holdouts, interaction split, user split,
filtering and evaluate(), each checked against a brute-force Python reference."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from skrec.model_selection import (
    evaluate,
    filter_interactions,
    holdout_split,
    split_users,
    train_test_split_interactions,
)

# --------------------------------------------------------------------------- helpers


def random_matrix(seed, n_rows=40, n_cols=30, max_per_row=12, integer_values=False):
    """CSR with very uneven rows: empty rows, 1-item rows and long rows."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for r in range(n_rows):
        n = int(rng.integers(0, min(max_per_row, n_cols) + 1))
        rows += [r] * n
        cols += list(rng.choice(n_cols, size=n, replace=False))
    if integer_values:
        vals = rng.integers(1, 6, size=len(rows)).astype(float)
    else:
        vals = rng.uniform(0.5, 5.0, size=len(rows))
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_cols))


def snapshot(M):
    return M.data.copy(), M.indices.copy(), M.indptr.copy()


def assert_unchanged(M, snap):
    np.testing.assert_array_equal(M.data, snap[0])
    np.testing.assert_array_equal(M.indices, snap[1])
    np.testing.assert_array_equal(M.indptr, snap[2])


def assert_partition(X, A, B):
    """A and B are disjoint CSR matrices of X's shape whose sum is X (values preserved)."""
    X = sp.csr_matrix(X)
    assert A.format == "csr" and B.format == "csr"
    assert A.shape == X.shape and B.shape == X.shape
    assert A.multiply(B).nnz == 0 or (A.multiply(B) != 0).nnz == 0
    assert ((A != 0).astype(int) + (B != 0).astype(int)).max() <= 1
    assert A.nnz + B.nnz == X.nnz
    np.testing.assert_array_equal((A + B).toarray(), X.toarray())


def expected_n_test(n_u, test_size, min_history):
    """Brute-force reference of the per-row held-out count."""
    if isinstance(test_size, float):
        target = max(1, math.floor(test_size * n_u + 0.5))
    else:
        target = test_size
    return max(0, min(target, n_u - min_history))


def last_reference(X, keys, test_size, min_history):
    """Per-row Python reference of strategy='last': largest (key, item index) held out."""
    X = sp.csr_matrix(X)
    held = set()
    for r in range(X.shape[0]):
        items = X.indices[X.indptr[r]:X.indptr[r + 1]]
        ks = keys[X.indptr[r]:X.indptr[r + 1]]
        order = sorted(zip(ks, items))
        n = expected_n_test(len(items), test_size, min_history)
        held |= {(r, int(c)) for _, c in order[len(order) - n:]}
    return held


def stored(M):
    M = sp.coo_matrix(M)
    return {(int(r), int(c)) for r, c in zip(M.row, M.col)}


# --------------------------------------------------------------------------- holdout_split


@pytest.mark.parametrize("strategy", ["random", "last"])
@pytest.mark.parametrize("test_size,min_history", [(0.2, 1), (0.5, 0), (0.34, 3), (1, 1),
                                                   (3, 2), (0.9, 1), (20, 0)])
def test_holdout_partition_and_counts(strategy, test_size, min_history):
    for seed in range(4):
        X = random_matrix(seed)
        hist, y = holdout_split(X, test_size, strategy=strategy, min_history=min_history,
                                random_state=seed)
        assert_partition(X, hist, y)
        n_u = np.diff(X.indptr)
        expected = np.array([expected_n_test(int(n), test_size, min_history) for n in n_u])
        np.testing.assert_array_equal(np.diff(y.indptr), expected)
        # rows with <= min_history items stay wholly in the history
        small = n_u <= min_history
        np.testing.assert_array_equal(np.diff(hist.indptr)[small], n_u[small])


def test_holdout_rounding_is_half_up_and_at_least_one():
    X = sp.csr_matrix(np.ones((4, 10)))
    X[1, 5:] = 0
    X[2, 2:] = 0
    X[3, 1:] = 0
    X.eliminate_zeros()  # rows of 10, 5, 2 and 1 items
    _, y = holdout_split(X, 0.3, min_history=0, random_state=0)
    # 3.0 -> 3, 1.5 -> 2, 0.6 -> 1, 0.3 -> 0 -> at least 1
    np.testing.assert_array_equal(np.diff(y.indptr), [3, 2, 1, 1])
    _, y = holdout_split(X, 0.3, random_state=0)  # min_history=1: the 1-item row is kept
    np.testing.assert_array_equal(np.diff(y.indptr), [3, 2, 1, 0])


def test_holdout_last_uses_order_matrix_with_ties():
    for seed in range(5):
        X = random_matrix(seed, integer_values=True)
        rng = np.random.default_rng(100 + seed)
        # few distinct keys -> many ties, broken by the larger item index being later
        order = X.copy()
        order.data = rng.integers(0, 4, size=X.nnz).astype(float)
        for test_size, min_history in [(0.25, 1), (2, 1), (1, 0)]:
            hist, y = holdout_split(X, test_size, strategy="last", order=order,
                                    min_history=min_history)
            assert_partition(X, hist, y)
            assert stored(y) == last_reference(X, order.data, test_size, min_history)
            # the held-out values are X's values, not the order keys
            np.testing.assert_array_equal(y.toarray()[y.toarray() != 0],
                                          X.toarray()[y.toarray() != 0])


def test_holdout_last_ties_prefer_larger_item_index():
    X = sp.csr_matrix(np.array([[1.0, 1.0, 1.0, 1.0]]))
    order = sp.csr_matrix(np.array([[5.0, 7.0, 7.0, 2.0]]))
    _, y = holdout_split(X, 1, strategy="last", order=order)
    assert stored(y) == {(0, 2)}
    _, y = holdout_split(X, 2, strategy="last", order=order)
    assert stored(y) == {(0, 1), (0, 2)}
    _, y = holdout_split(X, 1, strategy="last")  # all values equal: the last column
    assert stored(y) == {(0, 3)}


def test_holdout_last_order_none_uses_values():
    X = random_matrix(7)
    hist, y = holdout_split(X, 0.3, strategy="last")
    assert stored(y) == last_reference(X, X.data, 0.3, 1)
    # every held-out value is >= every kept value of the same row
    for r in range(X.shape[0]):
        h, t = hist.getrow(r).data, y.getrow(r).data
        if h.size and t.size:
            assert t.min() >= h.max()


def test_holdout_last_order_keys_zero_dense_and_superset():
    X = sp.csr_matrix(np.array([[3.0, 1.0, 2.0, 0.0],
                                [1.0, 1.0, 0.0, 1.0]]))
    dense_order = np.array([[0.0, 2.0, 1.0, 9.0],
                            [5.0, 0.0, 9.0, 4.0]])  # keys of 0 are valid, (r, c) off X ignored
    _, y_dense = holdout_split(X, 1, strategy="last", order=dense_order)
    assert stored(y_dense) == {(0, 1), (1, 0)}
    sparse_order = sp.csr_matrix(dense_order)  # drops the zero keys -> X entries without key
    with pytest.raises(ValueError, match="order"):
        holdout_split(X, 1, strategy="last", order=sparse_order)
    # a timestamp matrix storing more positions than X (X already a history)
    T = sp.csr_matrix(dense_order + 1)
    _, y_sup = holdout_split(X, 1, strategy="last", order=T)
    assert stored(y_sup) == {(0, 1), (1, 0)}


def test_holdout_leave_last_out_twice_p3():
    X = random_matrix(3)
    T = X.copy()
    T.data = np.random.default_rng(0).permutation(X.nnz).astype(float)
    hist, y_test = holdout_split(X, 1, strategy="last", order=T)
    train, y_val = holdout_split(hist, 1, strategy="last", order=T)
    assert_partition(hist, train, y_val)
    for r in range(X.shape[0]):
        keys = T.getrow(r)
        if keys.nnz >= 3:
            ranked = keys.indices[np.argsort(keys.data)]
            assert stored(y_test.getrow(r)) == {(0, ranked[-1])}
            assert stored(y_val.getrow(r)) == {(0, ranked[-2])}


def test_holdout_deterministic_and_seed_dependent():
    X = random_matrix(1, n_rows=60)
    a = holdout_split(X, 0.3, random_state=42)
    b = holdout_split(X, 0.3, random_state=42)
    c = holdout_split(X, 0.3, random_state=43)
    assert stored(a[1]) == stored(b[1])
    assert stored(a[1]) != stored(c[1])
    # numpy generators are accepted and advanced
    g = np.random.default_rng(0)
    assert stored(holdout_split(X, 0.3, random_state=g)[1]) != stored(
        holdout_split(X, 0.3, random_state=g)[1])


def test_holdout_random_is_uniform_within_a_call():
    n_rows, n_items, n_test = 3000, 10, 3
    X = sp.csr_matrix(np.ones((n_rows, n_items)))
    _, y = holdout_split(X, n_test, random_state=0)
    counts = np.asarray((y != 0).sum(axis=0)).ravel()
    assert counts.sum() == n_rows * n_test
    expected = n_rows * n_test / n_items  # 900, binomial sd ~ 25
    assert np.all(np.abs(counts - expected) < 6 * math.sqrt(expected * (1 - n_test / n_items)))
    assert stats.chisquare(counts).pvalue > 1e-4
    # pairs too: each unordered pair of held-out items equally likely within a row
    y_dense = y.toarray() != 0
    pair_counts = (y_dense.T.astype(int) @ y_dense.astype(int))[np.triu_indices(n_items, 1)]
    assert stats.chisquare(pair_counts).pvalue > 1e-4


def test_holdout_random_is_uniform_across_seeds():
    X = sp.csr_matrix(np.arange(1.0, 9.0)[None, :])  # one row of 8 items
    counts = np.zeros(8)
    n_seeds = 800
    for seed in range(n_seeds):
        _, y = holdout_split(X, 0.25, random_state=seed)  # 2 of 8
        counts[y.indices] += 1
    expected = n_seeds * 2 / 8  # 200
    assert np.all(np.abs(counts - expected) < 6 * math.sqrt(expected * 0.75))
    assert stats.chisquare(counts).pvalue > 1e-4


def test_holdout_accepts_any_format_and_does_not_mutate():
    X = random_matrix(2)
    ref = holdout_split(X, 0.3, random_state=5)
    for M in (X.tocoo(), X.tocsc(), X.toarray(), sp.csr_array(X), X.astype(np.float32)):
        out = holdout_split(M, 0.3, random_state=5)
        assert stored(out[1]) == stored(ref[1])
    # unsorted indices and an unsorted order matrix: sorted on copies, never in place
    Xu = X.copy()
    for r in range(Xu.shape[0]):
        s, e = Xu.indptr[r], Xu.indptr[r + 1]
        Xu.indices[s:e] = Xu.indices[s:e][::-1].copy()
        Xu.data[s:e] = Xu.data[s:e][::-1].copy()
    Xu.has_sorted_indices = False
    order = Xu.copy()
    order.data = np.arange(Xu.nnz, dtype=float)
    snap_x, snap_o = snapshot(Xu), snapshot(order)
    hist, y = holdout_split(Xu, 0.3, strategy="last", order=order)
    assert_unchanged(Xu, snap_x)
    assert_unchanged(order, snap_o)
    assert_partition(X, hist, y)
    snap = snapshot(X)
    hist, y = holdout_split(X, 0.5, random_state=0)
    hist.data[:] = -1  # outputs do not share memory with the input
    y.data[:] = -1
    assert_unchanged(X, snap)


def test_holdout_large_is_fast():
    import time

    rng = np.random.default_rng(0)
    n_rows, n_cols, nnz = 20_000, 5_000, 1_000_000
    keys = np.unique(rng.integers(0, n_rows * n_cols, size=nnz))
    X = sp.csr_matrix((rng.random(keys.size) + 0.5, (keys // n_cols, keys % n_cols)),
                      shape=(n_rows, n_cols))
    start = time.perf_counter()
    hist, y = holdout_split(X, 0.2, random_state=0)
    holdout_split(X, 0.2, strategy="last")
    assert time.perf_counter() - start < 5.0  # ~0.3 s expected; generous for slow CI
    assert hist.nnz + y.nnz == X.nnz


# --------------------------------------------------------------------------- train_test_split


def test_interaction_split_sizes_partition_determinism():
    X = random_matrix(4)
    tr, te = train_test_split_interactions(X, 0.2, random_state=0)
    assert_partition(X, tr, te)
    assert te.nnz == math.floor(0.2 * X.nnz + 0.5)
    tr2, te2 = train_test_split_interactions(X, 0.2, random_state=0)
    assert stored(te) == stored(te2)
    assert stored(te) != stored(train_test_split_interactions(X, 0.2, random_state=1)[1])
    tr, te = train_test_split_interactions(X, 7, random_state=0)
    assert te.nnz == 7
    assert_partition(X, tr, te)
    tiny = sp.csr_matrix(np.array([[1.0, 0, 2.0]]))
    assert train_test_split_interactions(tiny, 0.01, random_state=0)[1].nnz == 1


def test_interaction_split_is_uniform():
    X = sp.csr_matrix(np.arange(1.0, 11.0).reshape(2, 5))
    counts = np.zeros(10)
    n_seeds = 600
    for seed in range(n_seeds):
        _, te = train_test_split_interactions(X, 3, random_state=seed)
        counts[(te.toarray().ravel() != 0)] += 1
    expected = n_seeds * 0.3
    assert np.all(np.abs(counts - expected) < 6 * math.sqrt(expected * 0.7))
    assert stats.chisquare(counts).pvalue > 1e-4


def test_interaction_split_does_not_mutate():
    X = random_matrix(5)
    snap = snapshot(X)
    tr, te = train_test_split_interactions(X, 0.5, random_state=0)
    tr.data[:] = 0
    te.data[:] = 0
    assert_unchanged(X, snap)


# --------------------------------------------------------------------------- split_users


def test_split_users_partition_sizes():
    for n, ts, vs, sizes in [(100, 0.1, 0.1, (80, 10, 10)), (10, 0.25, 0.05, (6, 1, 3)),
                             (50, 5, 0, (45, 0, 5)), (7, 0.0, 2, (5, 2, 0))]:
        train, val, test = split_users(n, test_size=ts, validation_size=vs, random_state=0)
        assert (len(train), len(val), len(test)) == sizes
        allr = np.concatenate([train, val, test])
        assert np.array_equal(np.sort(allr), np.arange(n))
        for part in (train, val, test):
            assert part.dtype == np.int64
            assert np.all(np.diff(part) > 0)


def test_split_users_matrix_min_interactions_and_determinism():
    X = random_matrix(6, n_rows=80)
    n_u = np.diff(X.indptr)
    train, val, test = split_users(X, test_size=0.2, validation_size=0.1,
                                   min_interactions=5, random_state=3)
    eligible = np.flatnonzero(n_u >= 5)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), eligible)
    assert len(test) == math.floor(0.2 * eligible.size + 0.5)
    assert len(val) == math.floor(0.1 * eligible.size + 0.5)
    again = split_users(X, test_size=0.2, validation_size=0.1, min_interactions=5,
                        random_state=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    other = split_users(X, test_size=0.2, validation_size=0.1, min_interactions=5,
                        random_state=4)
    assert not np.array_equal(test, other[2])
    # without min_interactions, a matrix splits all its rows (empty rows included)
    train, val, test = split_users(X, random_state=0)
    assert len(train) + len(val) + len(test) == X.shape[0]


def test_split_users_is_uniform():
    counts = np.zeros(10)
    for seed in range(500):
        _, _, test = split_users(10, test_size=2, validation_size=1, random_state=seed)
        counts[test] += 1
    assert stats.chisquare(counts).pvalue > 1e-4


# --------------------------------------------------------------------------- filter_interactions


def filter_reference(X, min_user, min_item, threshold, binarize, iterate):
    D = sp.csr_matrix(X).toarray()
    entries = {(r, c): v for (r, c), v in np.ndenumerate(D) if v != 0}
    if threshold is not None:
        entries = {rc: v for rc, v in entries.items() if v >= threshold}
    if binarize:
        entries = {rc: 1.0 for rc in entries}
    keep_rows, keep_cols = set(range(D.shape[0])), set(range(D.shape[1]))
    while True:
        col_count = {c: 0 for c in keep_cols}
        for (r, c) in entries:
            col_count[c] += 1
        keep_cols = {c for c in keep_cols if col_count[c] >= min_item}
        entries = {rc: v for rc, v in entries.items() if rc[1] in keep_cols}
        row_count = {r: 0 for r in keep_rows}
        for (r, c) in entries:
            row_count[r] += 1
        keep_rows = {r for r in keep_rows if row_count[r] >= min_user}
        entries = {rc: v for rc, v in entries.items() if rc[0] in keep_rows}
        col_count = {c: 0 for c in keep_cols}
        for (r, c) in entries:
            col_count[c] += 1
        if not iterate or all(n >= min_item for n in col_count.values()):
            break
    rows, cols = sorted(keep_rows), sorted(keep_cols)
    out = np.zeros((len(rows), len(cols)))
    rpos = {r: i for i, r in enumerate(rows)}
    cpos = {c: j for j, c in enumerate(cols)}
    for (r, c), v in entries.items():
        out[rpos[r], cpos[c]] = v
    return out, np.array(rows), np.array(cols)


@pytest.mark.parametrize("min_user,min_item,threshold,binarize,iterate", [
    (1, 0, None, False, False),
    (5, 0, 4.0, True, False),
    (3, 3, 3.0, False, False),
    (3, 3, 3.0, False, True),
    (0, 2, None, True, False),
    (4, 4, 2.0, True, True),
    (0, 0, 5.0, False, False),
])
def test_filter_matches_reference(min_user, min_item, threshold, binarize, iterate):
    for seed in range(4):
        X = random_matrix(seed, n_rows=30, n_cols=20, integer_values=True)
        snap = snapshot(X)
        Xf, rows, cols = filter_interactions(X, min_user=min_user, min_item=min_item,
                                             threshold=threshold, binarize=binarize,
                                             iterate=iterate)
        ref, ref_rows, ref_cols = filter_reference(X, min_user, min_item, threshold,
                                                   binarize, iterate)
        np.testing.assert_array_equal(rows, ref_rows)
        np.testing.assert_array_equal(cols, ref_cols)
        assert Xf.format == "csr" and Xf.has_canonical_format
        np.testing.assert_array_equal(Xf.toarray(), ref)
        assert_unchanged(X, snap)
        if min_user and Xf.shape[0]:
            assert np.diff(Xf.indptr).min() >= min_user
        if iterate and Xf.shape[1]:
            assert np.asarray((Xf != 0).sum(axis=0)).min() >= min_item


def test_filter_p2_preparation():
    R = sp.csr_matrix(np.array([[5, 4, 4, 4, 4, 1],
                                [5, 5, 5, 5, 3, 3],
                                [4, 4, 4, 4, 4, 4]], dtype=float))
    Xf, rows, cols = filter_interactions(R, min_user=5, threshold=4, binarize=True)
    np.testing.assert_array_equal(rows, [0, 2])
    np.testing.assert_array_equal(cols, np.arange(6))
    np.testing.assert_array_equal(Xf.toarray(), [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])


# --------------------------------------------------------------------------- evaluate


class FakeRanker:
    """Returns fixed rankings (one row per evaluated row, in call order)."""

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.int64)
        self.calls = []
        self._next = 0

    def recommend(self, X, k=10, *, exclude_seen=True, items=None):
        assert sp.issparse(X)
        self.calls.append((X.shape[0], k, exclude_seen))
        rows = self.table[self._next:self._next + X.shape[0], :k]
        self._next += X.shape[0]
        return rows, -np.arange(rows.shape[1], dtype=np.float32)[None, :].repeat(len(rows), 0)


class FakeRegressor:
    def __init__(self):
        self.predict_calls = 0

    def predict_at(self, X, y):
        self.predict_calls += 1
        out = sp.csr_matrix(y, copy=True)
        out.data = 2 * out.data - 3  # errors = value - 3
        return out


X_EVAL = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0],
                                 [0, 1, 0, 0, 0, 0],
                                 [0, 0, 0, 0, 0, 1]], dtype=float))
Y_EVAL = sp.csr_matrix(np.array([[0, 4, 0, 0, 0, 0],
                                 [0, 0, 3, 0, 5, 0],
                                 [0, 0, 0, 0, 0, 0]], dtype=float))
TABLE = [[1, 3, 2, 4, 5, -1],
         [0, 4, 3, 2, 5, -1],
         [0, 1, 2, 3, 4, -1]]
METRICS = ("NDCG@2", "recall@3", "hit_rate@1", "precision@2", "mrr@3", "ap@3")


def hand_values():
    d = 1 / math.log2(3)
    return {"NDCG@2": (1 + d / (1 + d)) / 2, "recall@3": 0.75, "hit_rate@1": 0.5,
            "precision@2": 0.5, "mrr@3": 0.75, "ap@3": (1 + 0.25) / 2}


def test_evaluate_ranking_by_hand():
    pytest.importorskip("skrec.metrics")
    est = FakeRanker(TABLE)
    snaps = snapshot(X_EVAL), snapshot(Y_EVAL)
    res = evaluate(est, X_EVAL, Y_EVAL, METRICS)
    assert list(res) == list(METRICS) + ["n_rows_evaluated", "n_rows_skipped"]
    for key, value in hand_values().items():
        assert res[key] == pytest.approx(value), key
        assert isinstance(res[key], float)
    assert res["n_rows_evaluated"] == 2 and res["n_rows_skipped"] == 1
    assert est.calls == [(3, 3, True)]  # one call, k = the largest cut-off
    assert_unchanged(X_EVAL, snaps[0])
    assert_unchanged(Y_EVAL, snaps[1])


def test_evaluate_batches_give_the_same_result():
    pytest.importorskip("skrec.metrics")
    est = FakeRanker(TABLE)
    res = evaluate(est, X_EVAL, Y_EVAL, METRICS, batch_size=2, exclude_seen=False)
    assert [c[0] for c in est.calls] == [2, 1]
    assert all(c[1:] == (3, False) for c in est.calls)
    for key, value in hand_values().items():
        assert res[key] == pytest.approx(value)


def test_evaluate_k_larger_than_n_items_is_padded():
    pytest.importorskip("skrec.metrics")
    est = FakeRanker(TABLE)
    res = evaluate(est, X_EVAL, Y_EVAL, ("recall@10", "ndcg@100"))
    assert est.calls == [(3, 6, True)]  # asked for every item
    assert res["recall@10"] == pytest.approx(1.0)
    d = 1 / math.log2(3)
    row1 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + d)
    assert res["ndcg@100"] == pytest.approx((1 + row1) / 2)


def test_evaluate_rating_metrics_and_mixed():
    pytest.importorskip("skrec.metrics")
    reg = FakeRegressor()
    res = evaluate(reg, X_EVAL, Y_EVAL, ("rmse", "mae"))
    # values 4, 3, 5 -> predictions 5, 3, 7 -> errors 1, 0, 2
    assert res["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert res["mae"] == pytest.approx(1.0)
    assert res["n_rows_evaluated"] == 2 and res["n_rows_skipped"] == 1
    assert reg.predict_calls == 1
    res = evaluate(FakeRegressor(), X_EVAL, Y_EVAL, "mae", batch_size=1)
    assert res["mae"] == pytest.approx(1.0)

    class Both(FakeRanker, FakeRegressor):
        def __init__(self, table):
            FakeRanker.__init__(self, table)
            FakeRegressor.__init__(self)

    both = Both(TABLE)
    res = evaluate(both, X_EVAL, Y_EVAL, ("mae", "hit_rate@1"))
    assert list(res)[:2] == ["mae", "hit_rate@1"]
    assert res["mae"] == pytest.approx(1.0) and res["hit_rate@1"] == pytest.approx(0.5)
    assert both.calls == [(3, 1, True)] and both.predict_calls == 1


def test_evaluate_leave_one_out_p3():
    pytest.importorskip("skrec.metrics")
    X = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0]], dtype=float))
    y = sp.csr_matrix(np.array([[0, 0, 0, 1], [1, 0, 0, 0]], dtype=float))
    est = FakeRanker([[2, 3], [3, 0]])
    res = evaluate(est, X, y, ("hit_rate@1", "hit_rate@2", "ndcg@2"))
    assert res["hit_rate@1"] == 0.0 and res["hit_rate@2"] == 1.0
    assert res["ndcg@2"] == pytest.approx(1 / math.log2(3))


# --------------------------------------------------------------------------- bad input

X_BAD = random_matrix(0, n_rows=10, n_cols=8)


class NoMethods:
    pass


BAD_CASES = [
    # holdout_split
    (lambda: holdout_split(X_BAD, 0), ValueError, "test_size"),
    (lambda: holdout_split(X_BAD, 1.0), ValueError, "test_size"),
    (lambda: holdout_split(X_BAD, -0.5), ValueError, "test_size"),
    (lambda: holdout_split(X_BAD, float("nan")), ValueError, "test_size"),
    (lambda: holdout_split(X_BAD, "0.2"), TypeError, "test_size"),
    (lambda: holdout_split(X_BAD, True), TypeError, "test_size"),
    (lambda: holdout_split(X_BAD, strategy="first"), ValueError, "strategy"),
    (lambda: holdout_split(X_BAD, strategy=None), TypeError, "strategy"),
    (lambda: holdout_split(X_BAD, min_history=-1), ValueError, "min_history"),
    (lambda: holdout_split(X_BAD, min_history=1.5), TypeError, "min_history"),
    (lambda: holdout_split(X_BAD, order=X_BAD), ValueError, "order"),
    (lambda: holdout_split(X_BAD, strategy="last", order=np.ones((3, 3))), ValueError, "order"),
    (lambda: holdout_split(X_BAD, strategy="last", order=sp.csr_matrix((10, 8))),
     ValueError, "order"),
    (lambda: holdout_split(X_BAD, strategy="last", order=np.full((10, 8), np.nan)),
     ValueError, "order"),
    (lambda: holdout_split(X_BAD, strategy="last", order="time"), TypeError, "order"),
    (lambda: holdout_split(X_BAD, random_state="seed"), TypeError, "random_state"),
    (lambda: holdout_split(X_BAD, random_state=-3), ValueError, "random_state"),
    (lambda: holdout_split(None), TypeError, "X"),
    (lambda: holdout_split(np.array([[1.0, np.nan]])), ValueError, "X"),
    (lambda: holdout_split(sp.csr_matrix((3, 4))), ValueError, "X"),
    # train_test_split_interactions
    (lambda: train_test_split_interactions(X_BAD, X_BAD.nnz), ValueError, "test_size"),
    (lambda: train_test_split_interactions(X_BAD, 0.0), ValueError, "test_size"),
    (lambda: train_test_split_interactions(sp.csr_matrix(np.array([[1.0]])), 0.5),
     ValueError, "test_size"),
    (lambda: train_test_split_interactions([1, 2, 3]), ValueError, "X"),
    # split_users
    (lambda: split_users(0), ValueError, "X_or_n_users"),
    (lambda: split_users("abc"), TypeError, "X_or_n_users"),
    (lambda: split_users(10.0), TypeError, "X_or_n_users"),
    (lambda: split_users(10, test_size=0.6, validation_size=0.5), ValueError, "test_size"),
    (lambda: split_users(10, validation_size=-1), ValueError, "validation_size"),
    (lambda: split_users(10, test_size=1.5), ValueError, "test_size"),
    (lambda: split_users(10, min_interactions=2), ValueError, "min_interactions"),
    (lambda: split_users(X_BAD, min_interactions=-1), ValueError, "min_interactions"),
    (lambda: split_users(X_BAD, min_interactions=100), ValueError, "min_interactions"),
    (lambda: split_users(2), ValueError, "test_size"),
    # filter_interactions
    (lambda: filter_interactions(X_BAD, min_user=-1), ValueError, "min_user"),
    (lambda: filter_interactions(X_BAD, min_item=0.5), TypeError, "min_item"),
    (lambda: filter_interactions(X_BAD, threshold="4"), TypeError, "threshold"),
    (lambda: filter_interactions(X_BAD, threshold=np.inf), ValueError, "threshold"),
    (lambda: filter_interactions(X_BAD, binarize=1), TypeError, "binarize"),
    (lambda: filter_interactions(X_BAD, iterate="yes"), TypeError, "iterate"),
    # evaluate (argument checks come before skrec.metrics is imported)
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, Y_EVAL, ("foo@10",)), ValueError, "metrics"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, Y_EVAL, "ndcg@0"), ValueError, "metrics"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, Y_EVAL, "ndcg"), ValueError, "metrics"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, Y_EVAL, "rmse@5"), ValueError, "metrics"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, Y_EVAL, []), ValueError, "metrics"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, Y_EVAL, 10), TypeError, "metrics"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, Y_EVAL, [10]), TypeError, "metrics"),
    (lambda: evaluate(NoMethods(), X_EVAL, Y_EVAL), TypeError, "estimator"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, Y_EVAL, "rmse"), TypeError, "estimator"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, Y_EVAL[:2]), ValueError, "y"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, X_EVAL), ValueError, "y"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, sp.csr_matrix(X_EVAL.shape)), ValueError, "y"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, Y_EVAL, batch_size=0), ValueError,
     "batch_size"),
    (lambda: evaluate(FakeRanker(TABLE), X_EVAL, Y_EVAL, exclude_seen="no"), TypeError,
     "exclude_seen"),
]


@pytest.mark.parametrize("call,exc,name", BAD_CASES,
                         ids=[f"{i}-{c[2]}" for i, c in enumerate(BAD_CASES)])
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=rf"^{name} must be"):
        call()


def test_evaluate_rejects_malformed_recommend_output():
    pytest.importorskip("skrec.metrics")

    class Wrong:
        def recommend(self, X, k=10, *, exclude_seen=True, items=None):
            return np.zeros((X.shape[0] + 1, k), dtype=np.int64), None

    with pytest.raises(ValueError, match="^estimator must be"):
        evaluate(Wrong(), X_EVAL, Y_EVAL)


def test_public_api():
    import skrec.model_selection as ms

    assert sorted(ms.__all__) == ["HeldOut", "evaluate", "filter_interactions", "holdout_split",
                                  "split_users", "time_split", "train_test_split_interactions"]
    for name in ms.__all__:
        obj = getattr(ms, name)
        doc = obj.__doc__
        assert "Examples" in doc and "Parameters" in doc
        assert isinstance(obj, type) or "Returns" in doc
