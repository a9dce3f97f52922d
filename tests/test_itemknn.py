"""ItemKNN: the similarity against a dense reference, top-k with ties, blocks, scoring, peers."""

import numpy as np
import pytest
import scipy.sparse as sp

import skrec
from skrec.datasets import make_interactions
from skrec.metrics import ndcg_at_k
from skrec.model_selection import holdout_split
from skrec.neighbors import ItemKNN
from skrec.neighbors import _itemknn


def counts(n_users=50, n_items=20, density=0.3, seed=0):
    """Random positive real values: no two similarities tie by accident."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    return sp.csr_matrix(mask * rng.uniform(1.0, 5.0, (n_users, n_items)))


def reference_similarity(X, k, similarity="cosine", shrinkage=0.0, weighting="none", k1=1.2, b=0.75):
    """Dense numpy ItemKNN: weights, full WᵀW, the kept top-k per row (ties to the lower index)."""
    D = X.toarray()
    n_items = D.shape[1]
    held = D != 0
    idf = np.log(n_items) - np.log(1.0 + held.sum(axis=1, keepdims=True))
    if weighting == "tfidf":
        D = np.where(held, np.sqrt(D) * idf, 0.0)
    elif weighting == "bm25":
        length = (1 - b) + b * D.sum(axis=0) / D.sum(axis=0).mean()
        D = np.where(held, D * (k1 + 1) / (k1 * length[None, :] + D) * idf, 0.0)
    G = D.T @ D
    if similarity == "cosine":
        norms = np.sqrt((D * D).sum(axis=0))
        denom = np.outer(norms, norms) + shrinkage
        G = np.divide(G, denom, out=np.zeros_like(G), where=denom > 0)
    np.fill_diagonal(G, -np.inf)
    S = np.zeros_like(G)
    for i in range(n_items):
        order = np.lexsort((np.arange(n_items), -G[i]))[:min(k, n_items - 1)]  # value desc, index asc
        S[i, order] = G[i, order]
    S[~np.isfinite(S)] = 0.0
    return S


@pytest.mark.parametrize("similarity,shrinkage", [("cosine", 0.0), ("cosine", 3.0), ("dot", 0.0)])
@pytest.mark.parametrize("weighting", ["none", "tfidf", "bm25"])
def test_similarity_equals_dense_reference(similarity, shrinkage, weighting):
    X = counts()
    kw = dict(similarity=similarity, shrinkage=shrinkage, weighting=weighting, bm25_k1=0.9, bm25_b=0.4)
    model = ItemKNN(n_neighbors=6, device="cpu", **kw).fit(X)
    want = reference_similarity(X, 6, similarity, shrinkage, weighting, k1=0.9, b=0.4)
    S = model.similarity_
    assert isinstance(S, sp.csr_matrix) and S.shape == (20, 20)
    np.testing.assert_allclose(S.toarray(), want, rtol=1e-5, atol=1e-6)
    assert (S.getnnz(axis=1) == 6).all() and (S.diagonal() == 0).all()


def test_top_k_keeps_ties_by_lower_index():
    # Items 1..4 share item 0's users equally (identical columns): equal cosine to item 0.
    base = np.array([1, 1, 0, 1, 0, 1, 1, 0], dtype=float)
    cols = [base, base, base, base, base, np.array([1, 0, 0, 0, 0, 0, 1, 1.0]), np.array([0, 0, 1, 0, 1, 0, 0, 1.0])]
    X = sp.csr_matrix(np.column_stack(cols))
    model = ItemKNN(n_neighbors=3, similarity="cosine", weighting="none", device="cpu").fit(X)
    S = model.similarity_
    np.testing.assert_array_equal(S[0].indices, [1, 2, 3])  # not 4, the higher index of the tie
    np.testing.assert_array_equal(S[4].indices, [0, 1, 2])
    ids, scores = model.similar_items([0, 4], k=3)
    np.testing.assert_array_equal(ids, [[1, 2, 3], [0, 1, 2]])
    np.testing.assert_allclose(scores, 1.0, rtol=1e-6)
    # Item 6 shares a user with item 5 only: its other similarities are 0, never stored.
    np.testing.assert_array_equal(S[6].indices, [5])
    want = reference_similarity(X, 3)
    np.testing.assert_allclose(S.toarray(), want, rtol=1e-6, atol=1e-7)
    assert S.nnz == np.count_nonzero(want)


@pytest.mark.parametrize("kw", [dict(), dict(similarity="cosine", shrinkage=2.0)])
def test_block_size_does_not_change_the_result(monkeypatch, kw):
    X = counts(n_users=70, n_items=33, seed=1)
    whole = ItemKNN(n_neighbors=7, device="cpu", **kw).fit(X).similarity_
    for budget in (1, 5 * (70 + 33)):  # one item per block; 5 items per block (a ragged last block)
        monkeypatch.setattr(_itemknn, "BLOCK_ELEMENTS", budget)
        S = ItemKNN(n_neighbors=7, device="cpu", **kw).fit(X).similarity_
        np.testing.assert_array_equal(S.indptr, whole.indptr)
        np.testing.assert_array_equal(S.indices, whole.indices)
        np.testing.assert_allclose(S.data, whole.data, rtol=1e-6)


def test_scores_are_x_times_s_for_any_history():
    X = counts()
    new_rows = counts(n_users=9, seed=5)  # users the model has not seen
    for kw in (dict(similarity="cosine", weighting="bm25", shrinkage=1.0), dict(weighting="none")):
        model = ItemKNN(n_neighbors=5, device="cpu", **kw).fit(X)
        S = model.similarity_
        for H in (X, new_rows):
            np.testing.assert_allclose(model.predict(H), (H @ S).toarray(), rtol=1e-5, atol=1e-5)
        ids, scores = model.recommend(new_rows, k=4)
        P = (new_rows @ S).toarray()
        for r in range(new_rows.shape[0]):
            np.testing.assert_allclose(scores[r], P[r, ids[r]], rtol=1e-5, atol=1e-5)
            assert not set(ids[r]) & set(new_rows[r].indices)


def test_similar_items_lists_the_kept_neighbours():
    X = counts(seed=2)
    model = ItemKNN(n_neighbors=4, device="cpu").fit(X)
    S = model.similarity_.toarray()
    ids, scores = model.similar_items(np.array([3, 7, 3]), k=4)
    for row, q in enumerate([3, 7, 3]):
        assert set(ids[row]) == set(np.flatnonzero(S[q]))
        np.testing.assert_allclose(scores[row], S[q, ids[row]], rtol=1e-6)
        assert np.all(np.diff(scores[row]) <= 0) and q not in ids[row]
    # Past the kept neighbours: score 0, by item index, never the query.
    ids, scores = model.similar_items(3, k=19)
    assert set(ids[0]) == set(range(20)) - {3}
    np.testing.assert_array_equal(scores[0, 4:], 0.0)
    assert np.all(np.diff(ids[0, 4:]) > 0)


def test_beats_popularity_on_planted_clusters():
    X = make_interactions(300, 120, n_clusters=6, density=0.08, noise=0.1, random_state=0)
    X_hist, y = holdout_split(X.X, 0.25, random_state=0)
    knn = ItemKNN(n_neighbors=20, device="cpu").fit(X_hist)
    pop = skrec.Popularity(device="cpu").fit(X_hist)
    ndcg = {name: ndcg_at_k(y, m.recommend(X_hist, k=10)[0], k=10) for name, m in (("knn", knn), ("pop", pop))}
    assert ndcg["knn"] > ndcg["pop"] + 0.05, ndcg


def _implicit_recommendations(model, X, N):
    model.fit(sp.csr_matrix(X, dtype=np.float32), show_progress=False)
    return model.recommend(np.arange(X.shape[0]), sp.csr_matrix(X, dtype=np.float32), N=N)


@pytest.mark.filterwarnings("ignore:Method expects CSR input")  # implicit's own conversion notice
@pytest.mark.parametrize("peer,kw", [
    ("CosineRecommender", dict(similarity="cosine", weighting="none")),
    ("TFIDFRecommender", dict(similarity="cosine", weighting="tfidf")),
    ("BM25Recommender", dict(similarity="dot", weighting="bm25", bm25_k1=0.7, bm25_b=0.6)),
])
def test_agrees_with_implicit(peer, kw):
    nn = pytest.importorskip("implicit.nearest_neighbours", reason="implicit is not installed")
    X = counts(n_users=60, n_items=25)
    # Cosine: the item itself is always its own best neighbour in implicit, so K = k + 1.
    # BM25's raw dot product need not rank the item itself first: compare untruncated.
    k = 5 if peer != "BM25Recommender" else 24
    extra = dict(K1=kw["bm25_k1"], B=kw["bm25_b"]) if peer == "BM25Recommender" else {}
    peer_model = getattr(nn, peer)(K=k + 1, num_threads=1, **extra)
    peer_ids, peer_scores = _implicit_recommendations(peer_model, X, N=5)
    model = ItemKNN(n_neighbors=k, device="cpu", **kw).fit(X)
    ids, scores = model.recommend(X, k=5)
    np.testing.assert_array_equal(ids, peer_ids)
    np.testing.assert_allclose(scores, peer_scores, rtol=1e-4, atol=1e-5)
    theirs = peer_model.similarity.toarray()
    np.fill_diagonal(theirs, 0.0)
    np.testing.assert_allclose(model.similarity_.toarray(), theirs, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("params,name,exc", [
    (dict(n_neighbors=0), "n_neighbors", ValueError),
    (dict(n_neighbors=2.5), "n_neighbors", TypeError),
    (dict(similarity="jaccard"), "similarity", ValueError),
    (dict(shrinkage=-1.0), "shrinkage", ValueError),
    (dict(similarity="dot", shrinkage=1.0), "shrinkage", ValueError),
    (dict(weighting="bm15"), "weighting", ValueError),
    (dict(bm25_k1=-0.1), "bm25_k1", ValueError),
    (dict(bm25_b=1.5), "bm25_b", ValueError),
    (dict(device="tpu"), "device", ValueError),
])
def test_bad_parameters_are_named(params, name, exc):
    with pytest.raises(exc, match=rf"^{name} must be"):
        ItemKNN(**params).fit(counts())


def test_bad_input_is_named():
    signed = counts().toarray()
    signed[0, np.flatnonzero(signed[0])[0]] = -1.0
    with pytest.raises(ValueError, match=r"^X must be interactions >= 0 with weighting='bm25'"):
        ItemKNN(device="cpu").fit(signed)
    ItemKNN(weighting="none", device="cpu").fit(signed)  # unweighted similarities take signed values
    model = ItemKNN(n_neighbors=3, device="cpu").fit(counts())
    with pytest.raises(ValueError, match=r"^items must be item indices in \[0, 20\)"):
        model.similar_items(20)
    with pytest.raises(TypeError, match=r"^items must be integer item indices"):
        model.similar_items([1.5])
    with pytest.raises(ValueError, match=r"^k must be"):
        model.similar_items(0, k=20)


def test_a_single_item_has_no_neighbours():
    model = ItemKNN(device="cpu").fit(np.ones((4, 1)))
    assert model.similarity_.nnz == 0
    np.testing.assert_array_equal(model.predict(np.ones((2, 1))), 0.0)
    with pytest.raises(ValueError, match=r"^k must be at most n_items_ - 1"):
        model.similar_items(0, k=1)


def test_history_is_one_closed_form_record():
    model = ItemKNN(n_neighbors=3, device="cpu").fit(counts())
    assert len(model.history_) == 1 and model.n_iter_ == 1
    record = model.history_[0]
    assert set(record) == {"epoch", "loss", "val_loss", "lr", "time"}
    assert record["epoch"] == 1 and record["loss"] is None and record["val_loss"] is None and record["lr"] is None
    assert record["time"] >= 0
    assert not any(hasattr(ItemKNN(), p) for p in ("learning_rate", "max_iter", "batch_size"))
