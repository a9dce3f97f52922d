"""``time_split``: the global temporal split (history before a moment, held out after it)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.model_selection import GridSearchCV, KFold

from skrec import Popularity
from skrec.datasets import load_movielens
from skrec.model_selection import HeldOut, evaluate, time_split

# users 0-3, items 0-4; rows: (item, time, rating)
#   user 0: i0 t1 r5, i1 t4 r3, i2 t6 r4, i3 t9 r2
#   user 1: i1 t2 r4, i2 t5 r1, i4 t8 r5          (item 4 is only seen after t = 5)
#   user 2: i0 t7 r3, i2 t10 r4                    (no interaction before t = 5: cold user)
#   user 3: i2 t3 r2, i3 t2 r1                     (nothing after the cut)
RATINGS = np.array([[5, 3, 4, 2, 0],
                    [0, 4, 1, 0, 5],
                    [3, 0, 4, 0, 0],
                    [0, 0, 2, 1, 0]], dtype=float)
TIMES = np.array([[1, 4, 6, 9, 0],
                  [0, 2, 5, 0, 8],
                  [7, 0, 10, 0, 0],
                  [0, 0, 3, 2, 0]], dtype=float)


def tiny():
    return sp.csr_matrix(RATINGS), sp.csr_matrix(TIMES)


def reference(X, T, cut, n_heldout=None, filter_cold_items=True):
    """Entry-by-entry reference of the rule the function documents."""
    X, T = X.toarray(), T.toarray()
    stored = X != 0
    hist = np.where(stored & (T < cut), X, 0)
    warm_users = (hist != 0).any(axis=1)
    warm_items = (hist != 0).any(axis=0)
    held = np.zeros_like(X)
    for u in range(X.shape[0]):
        if not warm_users[u]:
            continue
        items = [i for i in range(X.shape[1]) if stored[u, i] and T[u, i] >= cut
                 and (warm_items[i] or not filter_cold_items)]
        items.sort(key=lambda i: (T[u, i], i))
        for i in items[:n_heldout]:
            held[u, i] = X[u, i]
    return hist, held


def test_time_split_hand_built_known_answer():
    X, T = tiny()
    X_hist, y = time_split(X, T, cut=5)
    np.testing.assert_array_equal(X_hist.toarray(), [[5, 3, 0, 0, 0],
                                                     [0, 4, 0, 0, 0],
                                                     [0, 0, 0, 0, 0],
                                                     [0, 0, 2, 1, 0]])
    # user 0: i2 (t6), i3 (t9); user 1: i2 (t5, at the cut: held out); i4 is cold (first seen
    # at t8) and user 2 is cold (no history): both dropped
    np.testing.assert_array_equal(y.toarray(), [[0, 0, 4, 2, 0],
                                                [0, 0, 1, 0, 0],
                                                [0, 0, 0, 0, 0],
                                                [0, 0, 0, 0, 0]])
    assert sp.isspmatrix_csr(X_hist) and sp.isspmatrix_csr(y) and X_hist.shape == y.shape == X.shape
    assert X_hist.multiply(y).nnz == 0


def test_time_split_keeps_cold_items_on_request():
    X, T = tiny()
    _, y = time_split(X, T, cut=5, filter_cold_items=False)
    assert y[1, 4] == 5 and y.nnz == 4  # item 4 is held out now; the cold user still is not
    assert y[2].nnz == 0


def test_time_split_first_n_after_the_cut():
    X, T = tiny()
    _, y1 = time_split(X, T, cut=5, n_heldout=1)
    np.testing.assert_array_equal(y1.toarray()[:2], [[0, 0, 4, 0, 0], [0, 0, 1, 0, 0]])  # the next item only
    _, y1_cold = time_split(X, T, cut=5, n_heldout=1, filter_cold_items=False)
    assert y1_cold[1, 2] == 1 and y1_cold[1, 4] == 0  # t5 comes before the cold item's t8
    _, y_big = time_split(X, T, cut=5, n_heldout=10)
    assert (y_big != time_split(X, T, cut=5)[1]).nnz == 0
    # equal times: the lower item index comes first
    Xt = sp.csr_matrix(np.ones((2, 4)))
    Tt = sp.csr_matrix(np.array([[1, 5, 5, 5], [1, 2, 6, 6]], dtype=float))
    _, y = time_split(Xt, Tt, cut=5, n_heldout=2, filter_cold_items=False)
    np.testing.assert_array_equal(y.toarray(), [[0, 1, 1, 0], [0, 0, 1, 1]])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_heldout, filter_cold_items", [(None, True), (None, False), (2, True), (1, False)])
def test_time_split_matches_reference(seed, n_heldout, filter_cold_items):
    rng = np.random.default_rng(seed)
    X = sp.random(40, 25, density=0.2, format="csr", random_state=seed)
    X.data = rng.integers(1, 6, X.nnz).astype(float)
    T = X.copy()
    T.data = rng.integers(0, 50, X.nnz).astype(float)  # many equal times
    cut = 35.0
    X_hist, y = time_split(X, T, cut=cut, n_heldout=n_heldout, filter_cold_items=filter_cold_items)
    hist, held = reference(X, T, cut, n_heldout, filter_cold_items)
    np.testing.assert_array_equal(X_hist.toarray(), hist)
    np.testing.assert_array_equal(y.toarray(), held)


def test_time_split_quantile_equals_explicit_cut():
    rng = np.random.default_rng(3)
    X = sp.random(60, 30, density=0.2, format="csr", random_state=3)
    T = X.copy()
    T.data = rng.uniform(1e9, 1.5e9, X.nnz).round()
    for q in (0.5, 0.8, 0.95):
        cut = np.quantile(T.data, q)
        a_hist, a_y = time_split(X, T, quantile=q)
        b_hist, b_y = time_split(X, T, cut=cut)
        assert (a_hist != b_hist).nnz == 0 and (a_y != b_y).nnz == 0
        assert abs((T.data >= cut).mean() - (1 - q)) < 0.01  # about 1 - q held back before filtering


def test_time_split_does_not_mutate_inputs_any_format():
    X, T = tiny()
    for fmt in ("csr", "csc", "coo"):
        Xf, Tf = X.asformat(fmt), T.asformat(fmt)
        Xc, Tc = Xf.copy(), Tf.copy()
        X_hist, y = time_split(Xf, Tf, cut=5)
        X_hist.data[:] = -1
        y.data[:] = -1
        assert (Xf != Xc).nnz == 0 and (Tf != Tc).nnz == 0
    dense_x, dense_t = RATINGS.copy(), TIMES.copy()
    X_hist, y = time_split(dense_x, dense_t, cut=5)
    assert np.array_equal(dense_x, RATINGS) and np.array_equal(dense_t, TIMES)
    assert (y != time_split(X, T, cut=5)[1]).nnz == 0  # dense input gives the same split


def test_time_split_timestamps_superset_and_as_heldout():
    X, T = tiny()
    T_more = T.toarray()
    T_more[3, 0] = 99  # a time at a position X does not store: ignored
    assert (time_split(X, sp.csr_matrix(T_more), cut=5)[1] != time_split(X, T, cut=5)[1]).nnz == 0
    _, h = time_split(X, T, cut=5, as_heldout=True)
    assert isinstance(h, HeldOut) and (h.matrix != time_split(X, T, cut=5)[1]).nnz == 0


def test_time_split_pair_goes_to_evaluate_and_grid_search():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((120, 40)) < np.linspace(0.5, 0.02, 40)).astype(float))
    T = X.copy()
    T.data = rng.uniform(0, 100, X.nnz)
    X_hist, y = time_split(X, T, quantile=0.7)
    est = Popularity(device="cpu").fit(X_hist)
    out = evaluate(est, X_hist, y, ["ndcg@10"])
    assert out["n_rows_evaluated"] == int((np.diff(y.indptr) > 0).sum()) and out["ndcg@10"] > 0
    search = GridSearchCV(Popularity(device="cpu"), {"damping": [0.0, 10.0]}, cv=KFold(3),
                          error_score="raise").fit(X_hist, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


BAD = sp.csr_matrix(RATINGS), sp.csr_matrix(TIMES)


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(), ValueError, "cut"),
    (dict(cut=5, quantile=0.5), ValueError, "cut"),
    (dict(cut=1), ValueError, "cut"),  # nothing before the earliest time
    (dict(cut=10.5), ValueError, "cut"),  # after the latest time
    (dict(cut=np.nan), ValueError, "cut"),
    (dict(cut="2020-01-01"), TypeError, "cut"),
    (dict(cut=True), TypeError, "cut"),
    (dict(quantile=0.0), ValueError, "quantile"),
    (dict(quantile=1.0), ValueError, "quantile"),
    (dict(quantile=80), ValueError, "quantile"),
    (dict(quantile="0.8"), TypeError, "quantile"),
    (dict(cut=5, n_heldout=0), ValueError, "n_heldout"),
    (dict(cut=5, n_heldout=1.5), TypeError, "n_heldout"),
    (dict(cut=5, filter_cold_items="yes"), TypeError, "filter_cold_items"),
    (dict(cut=5, as_heldout=1), TypeError, "as_heldout"),
])
def test_time_split_bad_arguments(kwargs, exc, name):
    with pytest.raises(exc, match=rf"^{name} must be"):
        time_split(*BAD, **kwargs)


def test_time_split_bad_inputs():
    X, T = BAD
    with pytest.raises(ValueError, match=r"^timestamps must be a sparse matrix or 2-D array of shape \(4, 5\)"):
        time_split(X, sp.csr_matrix(np.ones((4, 6))), cut=5)
    with pytest.raises(ValueError, match=r"^timestamps must be a matrix storing a key at every stored entry "
                                         r"of X; got 1 entries of X without"):
        T_missing = TIMES.copy()
        T_missing[0, 0] = 0  # dense zero: sparse input without that entry
        time_split(X, sp.csr_matrix(T_missing), cut=5)
    with pytest.raises(ValueError, match="^timestamps must be free of NaN"):
        T_nan = T.copy()
        T_nan.data[0] = np.nan
        time_split(X, T_nan, cut=5)
    with pytest.raises(TypeError, match="^timestamps must be"):
        time_split(X, "time", cut=5)
    with pytest.raises(TypeError, match="^X must be"):
        time_split(None, T, cut=5)
    # all times equal: the quantile's cut is the earliest time, nothing trains
    with pytest.raises(ValueError, match="^quantile must be a fraction whose cut leaves interactions before"):
        time_split(X, (T != 0).astype(float), quantile=0.5)
    # the only interactions after the cut belong to a cold user: nothing is held out
    Xc = sp.csr_matrix(np.array([[1.0, 0], [0, 1.0]]))
    Tc = sp.csr_matrix(np.array([[1.0, 0], [0, 5.0]]))
    with pytest.raises(ValueError, match="^cut must be a cut after which some user .*; got 3: nothing"):
        time_split(Xc, Tc, cut=3)


@pytest.mark.data
def test_time_split_movielens_latest_small(data_home):
    b = load_movielens("latest-small", data_home=data_home, download=False)
    R, T = b["ratings"], b["timestamps"]
    R_before, T_before = R.copy(), T.copy()
    cut = float(np.quantile(T.data, 0.8))
    X_hist, y = time_split(R, T, quantile=0.8)
    assert (R != R_before).nnz == 0 and (T != T_before).nnz == 0
    t_hist = T.multiply(X_hist != 0).tocsr()
    t_held = T.multiply(y != 0).tocsr()
    assert t_hist.nnz == X_hist.nnz and t_held.nnz == y.nnz > 0  # timestamps read at every entry
    assert t_hist.data.max() < cut <= t_held.data.min()
    assert X_hist.multiply(y).nnz == 0 and ((X_hist + y) != R.multiply((X_hist + y) != 0)).nnz == 0
    warm_users = np.diff(X_hist.indptr) > 0
    assert np.all(warm_users[np.diff(y.indptr) > 0])  # every held-out user has a history
    assert np.all(X_hist.getnnz(axis=0)[np.unique(y.indices)] > 0)  # every held-out item was seen before
    # the same rule on dense arrays: in this data set most ratings after the cut come from users
    # who join after it (a user rates in a burst), so few of the last 20 % are held out
    Rd, Td = R.toarray(), T.toarray()
    stored = Rd != 0
    before = stored & (Td < cut)
    held = stored & (Td >= cut) & before.any(axis=1)[:, None] & before.any(axis=0)[None, :]
    np.testing.assert_array_equal(X_hist.toarray() != 0, before)
    np.testing.assert_array_equal(y.toarray() != 0, held)
    assert 1000 < y.nnz < (Td[stored] >= cut).sum()
    _, y1 = time_split(R, T, quantile=0.8, n_heldout=1)
    assert y1.getnnz(axis=1).max() == 1 and y1.nnz == int((np.diff(y.indptr) > 0).sum())
