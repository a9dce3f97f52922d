"""BPRRanker: ranking quality on planted structure, fold-in, sampling, similar items, errors."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skrec import MFRegressor, Popularity
from skrec._torch import DeviceCSR, pairwise_fold_in, ridge_fold_in
from skrec.datasets import make_interactions
from skrec.factorization import BPRRanker
from skrec.factorization import _bpr
from skrec.factorization._bpr import ADAPTIVE_FOLD_IN_NEGATIVES, FOLD_IN_NEGATIVES, BPRModule
from skrec.sampling import AdaptiveNegatives
from skrec.metrics import ndcg_at_k
from skrec.model_selection import holdout_split, split_users

FAST = dict(n_factors=16, learning_rate=0.05, batch_size=1024, max_iter=20, fold_in_steps=20,
            random_state=0, device="cpu")


@pytest.fixture(scope="module")
def planted():
    b = make_interactions(300, 100, n_clusters=5, density=0.08, noise=0.1, random_state=0)
    X_hist, y = holdout_split(b.X, 0.25, random_state=0)
    return b, X_hist, y


@pytest.fixture(scope="module")
def model(planted):
    _, X_hist, _ = planted
    return BPRRanker(**FAST).fit(X_hist)


def learned_ndcg(model, X_hist, y, k=10):
    """NDCG@k of the factors learned in fit for the training rows (no fold-in)."""
    scores = model.user_factors_ @ model.item_factors_.T + model.item_bias_
    scores[X_hist.nonzero()] = -np.inf
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ndcg_at_k(y, ids, k=k)


def test_beats_the_popularity_baseline_on_planted_clusters(planted, model):
    _, X_hist, y = planted
    pop = Popularity(damping=1.0, device="cpu").fit(X_hist)
    bpr, base = model.score(X_hist, y), pop.score(X_hist, y)
    assert bpr > base + 0.1, (bpr, base)


def test_new_users_fold_in_beats_popularity(planted):
    """Strong generalization: users never seen in fit are served through fold-in."""
    b, _, _ = planted
    tr, _, te = split_users(b.X, test_size=0.25, validation_size=0.0, random_state=0)
    hist, held = holdout_split(b.X[te], 0.25, random_state=1)
    for extra in (dict(fold_in="gradient"), dict(fold_in="ridge"), dict(negatives="adaptive", adaptive_rank=0.2)):
        bpr = BPRRanker(**dict(FAST, **extra)).fit(b.X[tr])
        pop = Popularity(damping=1.0, device="cpu").fit(b.X[tr])
        assert bpr.score(hist, held) > pop.score(hist, held) + 0.1


def test_fold_in_of_training_rows_keeps_the_learned_ndcg(planted, model):
    """The default (gradient) fold-in serves a training row as well as its learned vector."""
    _, X_hist, y = planted
    learned = learned_ndcg(model, X_hist, y)
    folded = model.score(X_hist, y)
    assert folded >= 0.95 * learned, (folded, learned)
    ridge = BPRRanker(**dict(FAST, fold_in="ridge")).fit(X_hist)  # the starting point: not as good
    assert ridge.score(X_hist, y) < folded


def test_gradient_fold_in_moves_towards_the_history(planted, model):
    """Fold-in vectors score the row's own items above the rest."""
    _, X_hist, _ = planted
    P = model.predict(X_hist[:50])
    own = np.asarray([P[r, X_hist[r].indices].mean() for r in range(50)])
    other = np.asarray([np.delete(P[r], X_hist[r].indices).mean() for r in range(50)])
    assert (own > other).all()


@pytest.mark.parametrize("negatives", ["uniform", "popularity"])
@pytest.mark.parametrize("n_negatives", [1, 3])
def test_negatives_never_include_the_users_positives(planted, monkeypatch, negatives, n_negatives):
    _, X_hist, _ = planted
    drawn = []
    original = _bpr.sample_negatives

    def recording(users, *args, **kwargs):
        neg = original(users, *args, **kwargs)
        drawn.append((users.clone(), neg.clone()))
        return neg

    monkeypatch.setattr(_bpr, "sample_negatives", recording)
    BPRRanker(**dict(FAST, max_iter=3, negatives=negatives, n_negatives=n_negatives)).fit(X_hist)
    users = torch.cat([u.unsqueeze(1).expand_as(n) for u, n in drawn]).flatten().numpy().copy()
    neg = torch.cat([n for _, n in drawn]).flatten().numpy().copy()
    assert neg.size == 3 * X_hist.nnz * n_negatives
    assert np.asarray(X_hist[users, neg]).ravel().sum() == 0
    if negatives == "popularity":  # drawn by popularity: the most popular items come up most
        counts = np.bincount(neg, minlength=X_hist.shape[1])
        pop = np.bincount(X_hist.indices, minlength=X_hist.shape[1])
        assert np.corrcoef(counts, pop)[0, 1] > 0.8


def test_adaptive_negatives_are_harder_than_uniform_and_never_positives(planted, monkeypatch):
    _, X_hist, _ = planted
    drawn = []
    original = _bpr.AdaptiveNegatives.sample

    def recording(self, user_vectors, generator, **kwargs):
        neg = original(self, user_vectors, generator, **kwargs)
        drawn.append((kwargs["users"].clone(), neg.clone()))
        return neg

    monkeypatch.setattr(_bpr.AdaptiveNegatives, "sample", recording)
    model = BPRRanker(**dict(FAST, max_iter=4, negatives="adaptive", adaptive_rank=0.1, n_negatives=2)).fit(X_hist)
    users = torch.cat([u.unsqueeze(1).expand_as(n) for u, n in drawn]).flatten().numpy().copy()
    neg = torch.cat([n for _, n in drawn]).flatten().numpy().copy()
    assert neg.size == 4 * X_hist.nnz * 2
    assert np.asarray(X_hist[users, neg]).ravel().sum() == 0
    # the last epoch's negatives score above a uniform non-positive under the fitted factors
    scores = model.user_factors_ @ model.item_factors_.T
    last = slice(len(neg) * 3 // 4, None)
    free = np.ma.masked_array(scores, X_hist.toarray() > 0).mean(1).data
    assert (scores[users[last], neg[last]] - free[users[last]]).mean() > 0.1 * scores.std()  # uniform: 0 +- 0.02


def test_dynamic_negative_sampling_trains_on_the_highest_scored_candidate(planted, monkeypatch):
    """With ``n_candidates=M`` each negative is the candidate of its group of ``M`` draws that
    the model scores highest at that step (Zhang et al., 2013), never a positive."""
    _, X_hist, _ = planted
    seen = []
    original = _bpr.BPRTrainer._hardest

    def recording(self, users, candidates, M):
        chosen = original(self, users, candidates, M)
        m = self.module
        s = m(users, candidates.view(len(users), -1)).view(len(users), -1, M)  # every candidate's score
        seen.append((s, m(users, chosen), candidates.view(len(users), -1, M), chosen, users))
        return chosen

    monkeypatch.setattr(_bpr.BPRTrainer, "_hardest", recording)
    BPRRanker(**dict(FAST, max_iter=2, n_negatives=2, n_candidates=4)).fit(X_hist)
    assert seen
    for s, chosen_scores, candidates, chosen, users in seen:
        assert chosen.shape == (len(users), 2)
        torch.testing.assert_close(chosen_scores, s.amax(2))
        assert ((candidates == chosen.unsqueeze(2)).any(2)).all()  # one of its own group
        rows = users.unsqueeze(1).expand_as(chosen).flatten().numpy().copy()
        assert np.asarray(X_hist[rows, chosen.flatten().numpy().copy()]).sum() == 0


def test_negatives_may_hit_positives_without_rejection(planted, monkeypatch):
    _, X_hist, _ = planted
    calls = []
    original = _bpr.sample_negatives

    def recording(users, *args, **kwargs):
        calls.append(kwargs.get("exclude"))
        return original(users, *args, **kwargs)

    monkeypatch.setattr(_bpr, "sample_negatives", recording)
    BPRRanker(**dict(FAST, max_iter=1, negatives="uniform", exclude_positives=False)).fit(X_hist)
    assert calls and all(c is None for c in calls)
    adaptive = []
    original_adaptive = _bpr.AdaptiveNegatives.sample

    def recording_adaptive(self, *args, **kwargs):
        adaptive.append(kwargs.get("exclude"))
        return original_adaptive(self, *args, **kwargs)

    monkeypatch.setattr(_bpr.AdaptiveNegatives, "sample", recording_adaptive)
    BPRRanker(**dict(FAST, max_iter=1, negatives="adaptive", exclude_positives=False)).fit(X_hist)
    assert adaptive and all(c is None for c in adaptive)


def test_sparse_adam_trains_as_well(planted, model):
    _, X_hist, y = planted
    sparse = BPRRanker(**dict(FAST, optimizer="sparse_adam", fold_in="ridge")).fit(X_hist)
    dense = BPRRanker(**dict(FAST, fold_in="ridge")).fit(X_hist)
    assert sparse.module_.item_factors.sparse and not dense.module_.item_factors.sparse
    assert sparse.score(X_hist, y) > 0.9 * dense.score(X_hist, y)


def test_confidence_weights_are_scale_free_and_used(planted):
    _, X_hist, _ = planted
    rng = np.random.default_rng(0)
    Xw = X_hist.copy()
    Xw.data = rng.integers(1, 6, Xw.nnz).astype(float)
    params = dict(FAST, max_iter=3, confidence=True)
    a = BPRRanker(**params).fit(Xw)
    b = BPRRanker(**params).fit(Xw * 10.0)
    np.testing.assert_allclose(a.predict(Xw[:5]), b.predict(Xw[:5] * 10.0), rtol=1e-4, atol=1e-4)
    unweighted = BPRRanker(**dict(params, confidence=False)).fit(Xw)
    assert not np.allclose(a.item_factors_, unweighted.item_factors_)
    with pytest.raises(ValueError, match="X must be non-negative values when confidence=True"):
        BPRRanker(**params).fit(-Xw)


def test_transform_returns_the_fold_in_vectors(planted, model):
    _, X_hist, _ = planted
    Z = model.transform(X_hist[:8])
    assert Z.shape == (8, 16)
    np.testing.assert_allclose(Z @ model.item_factors_.T + model.item_bias_, model.predict(X_hist[:8]),
                               rtol=1e-4, atol=1e-4)


def reference_fold_in(model, X_fit, rows):
    """BPRRanker's gradient fold-in rebuilt from the public pieces: the ridge projection of the
    history onto the item factors, refined by :func:`pairwise_fold_in` against every item (the
    catalogue is below ``FOLD_IN_NEGATIVES``), weighted by the training negative distribution
    (for adaptive negatives, the sampler's distribution for the current vector)."""
    assert model.n_items_ <= FOLD_IN_NEGATIVES
    batch = DeviceCSR.from_scipy(rows, torch.device("cpu"))
    Q = torch.as_tensor(model.item_factors_)
    b = torch.as_tensor(model.item_bias_)
    weights = batch.values / float(X_fit.data.mean()) if model.confidence else None
    init = ridge_fold_in(batch, Q, torch.ones_like(batch.values), model.fold_in_alpha, weights=weights)
    omega = None
    if model.negatives == "popularity":
        counts = np.bincount(X_fit.indices, minlength=X_fit.shape[1])
        omega = torch.as_tensor(counts / counts.sum() * X_fit.shape[1], dtype=torch.float32)
    if model.negatives == "adaptive":
        sampler = AdaptiveNegatives(model.adaptive_rank).refresh(Q)
        tables = sampler.rank_probabilities(torch.arange(model.n_items_))
        omega = lambda u: sampler.probabilities(u, tables)  # noqa: E731
    return pairwise_fold_in(batch, init, Q, b, torch.arange(model.n_items_), alpha=model.alpha,
                            negative_weights=omega, weights=weights, exclude_positives=model.exclude_positives,
                            n_steps=model.fold_in_steps, learning_rate=model.fold_in_learning_rate).numpy()


@pytest.mark.parametrize("params", [
    dict(negatives="uniform"),
    dict(negatives="popularity", confidence=True, fold_in_learning_rate=0.1),
    dict(negatives="uniform", exclude_positives=False, fold_in_steps=7, fold_in_learning_rate=0.02),
    dict(),
    dict(exclude_positives=False, fold_in_steps=7),
], ids=["uniform", "popularity-confidence", "no-exclusion", "adaptive", "adaptive-no-exclusion"])
def test_transform_is_the_pairwise_fold_in_of_the_ridge_projection(planted, params):
    _, X_hist, _ = planted
    Xw = X_hist.copy()
    Xw.data = 1.0 + (Xw.indices % 3)  # values matter only with confidence=True
    model = BPRRanker(**dict(FAST, max_iter=3, **params)).fit(Xw)
    rows = Xw[:40]
    np.testing.assert_allclose(model.transform(rows), reference_fold_in(model, Xw, rows), rtol=1e-4, atol=1e-5)


def test_fold_in_learning_rate_steers_only_the_fold_in(planted):
    _, X_hist, _ = planted
    slow = BPRRanker(**dict(FAST, max_iter=2, fold_in_learning_rate=0.001)).fit(X_hist)
    fast = BPRRanker(**dict(FAST, max_iter=2, fold_in_learning_rate=0.2)).fit(X_hist)
    np.testing.assert_array_equal(slow.item_factors_, fast.item_factors_)  # training does not read it
    ridge = BPRRanker(**dict(FAST, max_iter=2, fold_in="ridge")).fit(X_hist).transform(X_hist[:20])
    moved_slow = np.abs(slow.transform(X_hist[:20]) - ridge).max()
    moved_fast = np.abs(fast.transform(X_hist[:20]) - ridge).max()
    assert 0 < moved_slow < moved_fast  # Adam moves each coordinate by about the rate per step


@pytest.mark.parametrize("negatives, size", [("uniform", FOLD_IN_NEGATIVES),
                                             ("adaptive", ADAPTIVE_FOLD_IN_NEGATIVES)])
def test_fold_in_of_a_large_catalogue_uses_one_fixed_negative_sample(negatives, size):
    """Above FOLD_IN_NEGATIVES items (ADAPTIVE_FOLD_IN_NEGATIVES with adaptive negatives) the
    negatives are a fixed draw: every call, and every row whatever the rows passed with it,
    gets the same vector."""
    X = make_interactions(120, size + 88, n_clusters=4, density=0.03, random_state=1).X
    model = BPRRanker(**dict(FAST, max_iter=2, negatives=negatives)).fit(X)
    assert model._fold_in_negatives()[0].shape == (size,)
    Z = model.transform(X[:12])
    np.testing.assert_array_equal(Z, model.transform(X[:12]))
    np.testing.assert_allclose(Z[5:6], model.transform(X[5:6]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Z[[3, 7]], model.transform(X[[7, 3]])[::-1], rtol=1e-5, atol=1e-6)


def test_the_fold_in_sample_is_drawn_on_the_cpu_whatever_the_device(monkeypatch):
    """A model fitted on a GPU and loaded on the CPU (or the reverse) folds in against the same
    negatives: they come from a CPU generator seeded by the fit, never from ``device_``'s stream."""
    from skrec.factorization import _bpr

    X = make_interactions(120, FOLD_IN_NEGATIVES + 88, n_clusters=4, density=0.03, random_state=1).X
    model = BPRRanker(**dict(FAST, max_iter=2, negatives="uniform")).fit(X)
    S, _ = model._fold_in_negatives()
    drawn, real = [], _bpr.make_generator
    monkeypatch.setattr(_bpr, "make_generator", lambda seed, device: drawn.append(device) or real(seed, device))
    model.device_ = torch.device("meta")  # pretend it lives elsewhere: the draw must not follow
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **k: self)  # keep the tensors usable
    S_elsewhere, _ = model._fold_in_negatives()
    assert drawn == [torch.device("cpu")]
    assert torch.equal(S_elsewhere, S)


def reference_neighbours(V, items, k, metric):
    """Top-k items by cosine or dot product of the rows of ``V``, the query excluded (numpy)."""
    V = V.astype(np.float64)
    if metric == "cosine":
        V = V / np.linalg.norm(V, axis=1, keepdims=True)
    S = V[items] @ V.T
    S[np.arange(len(items)), items] = -np.inf
    ids = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(S, ids, axis=1)


@pytest.fixture(scope="module")
def mf_model():
    b = make_interactions(200, 60, kind="explicit", n_clusters=3, density=0.3, random_state=0)
    return MFRegressor(n_factors=6, max_iter=10, learning_rate=0.02, batch_size=512, random_state=0,
                       device="cpu").fit(b.X)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("which", ["bpr", "mf"])
def test_similar_items_are_the_nearest_item_factors_on_every_factor_model(model, mf_model, which, metric):
    """similar_items is FactorMixin's: MFRegressor ranks its item factors as BPRRanker does."""
    est = model if which == "bpr" else mf_model
    items = np.array([0, 7, 7, est.n_items_ - 1])
    ids, scores = est.similar_items(items, k=4, metric=metric)
    ref_ids, ref_scores = reference_neighbours(est.item_factors_, items, 4, metric)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-4, atol=1e-5)
    assert scores.dtype == np.float32 and ids.dtype == np.int64


def test_similar_items_of_mf_validates_like_bpr(mf_model):
    with pytest.raises(ValueError, match="k must be an int >= 1 and <= 59"):
        mf_model.similar_items([1], k=60)
    with pytest.raises(ValueError, match="metric must be one of 'cosine', 'dot'"):
        mf_model.similar_items([1], metric="euclid")
    with pytest.raises(ValueError, match=r"items must be item indices in \[0, 60\)"):
        mf_model.similar_items([60])
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        MFRegressor().similar_items([0])


def test_similar_items_follow_the_planted_clusters(planted, model):
    b, _, _ = planted
    ids, scores = model.similar_items(np.arange(100), k=5)
    assert ids.shape == scores.shape == (100, 5)
    assert (ids != np.arange(100)[:, None]).all(), "the query item is never its own neighbour"
    assert np.all(np.diff(scores, axis=1) <= 0)
    same = (b.item_cluster[ids] == b.item_cluster[:, None]).mean()
    assert same > 0.7
    V = model.item_factors_ / np.linalg.norm(model.item_factors_, axis=1, keepdims=True)
    np.testing.assert_allclose(scores[3], V[ids[3]] @ V[3], rtol=1e-4, atol=1e-5)
    dot_ids, dot_scores = model.similar_items([3, 3], k=2, metric="dot")
    np.testing.assert_allclose(dot_scores[0], model.item_factors_[dot_ids[0]] @ model.item_factors_[3], rtol=1e-4)
    np.testing.assert_array_equal(dot_ids[0], dot_ids[1])


@pytest.mark.parametrize("items, k, match, exc", [
    (np.array([0, 200]), 3, r"items must be item indices in \[0, 100\)", ValueError),
    (np.array([0.5]), 3, "items must be integer item indices", TypeError),
    (np.array([], dtype=int), 3, "items must be an item index or a non-empty 1-D array", ValueError),
    ([1, 2], 100, "k must be an int >= 1 and <= 99", ValueError),
    ([1, 2], 0, "k must be an int >= 1", ValueError),
])
def test_similar_items_validates_its_arguments(model, items, k, match, exc):
    with pytest.raises(exc, match=match):
        model.similar_items(items, k)


def test_similar_items_validates_metric_and_needs_fit(model):
    with pytest.raises(ValueError, match="metric must be one of 'cosine', 'dot'"):
        model.similar_items([0], 2, metric="euclid")
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        BPRRanker().similar_items([0], 2)


@pytest.mark.parametrize("param, value, match, exc", [
    ("n_factors", 0, "n_factors must be an int >= 1; got 0.", ValueError),
    ("alpha", -1.0, "alpha must be a float >= 0; got -1.0.", ValueError),
    ("n_negatives", 1.5, "n_negatives must be an int >= 1; got 1.5.", TypeError),
    ("negatives", "hard", "negatives must be one of 'uniform', 'popularity', 'adaptive'; got 'hard'.", ValueError),
    ("adaptive_rank", 1.5, "adaptive_rank must be a float > 0 and <= 1; got 1.5.", ValueError),
    ("fold_in", "exact", "fold_in must be one of 'gradient', 'ridge'; got 'exact'.", ValueError),
    ("fold_in_alpha", 0.0, "fold_in_alpha must be a float > 0; got 0.0.", ValueError),
    ("fold_in_learning_rate", 0.0, "fold_in_learning_rate must be a float > 0; got 0.0.", ValueError),
    ("fold_in_learning_rate", "fast", "fold_in_learning_rate must be a float > 0; got 'fast'.", TypeError),
    ("optimizer", "lbfgs", "optimizer must be one of", ValueError),
])
def test_bad_hyper_parameters_are_rejected(planted, param, value, match, exc):
    _, X_hist, _ = planted
    with pytest.raises(exc, match=match):
        BPRRanker(**{**FAST, param: value}).fit(X_hist)


def test_hyper_parameters_of_the_fit_are_used_after_set_params(planted):
    _, X_hist, _ = planted
    model = BPRRanker(**dict(FAST, max_iter=2)).fit(X_hist)
    before = model.predict(X_hist[:3])
    model.set_params(fold_in="ridge", fold_in_steps=1, fold_in_learning_rate=1.0, alpha=5.0)
    np.testing.assert_array_equal(model.predict(X_hist[:3]), before)


@pytest.mark.cuda
def test_cpu_and_cuda_agree(planted):
    _, X_hist, y = planted
    cpu = BPRRanker(**FAST).fit(X_hist)
    gpu = BPRRanker(**dict(FAST, device="cuda")).fit(X_hist)
    assert gpu.device_.type == "cuda"
    # different random streams on each device: equal quality, not equal numbers
    assert abs(gpu.score(X_hist, y) - cpu.score(X_hist, y)) < 0.05
    sp_rows = sp.csr_matrix(X_hist[:10])
    assert np.isfinite(gpu.predict(sp_rows)).all()


@pytest.mark.parametrize("alpha", [0.3, (0.3, 0.05)])  # one L2 strength, or the negatives' apart
@pytest.mark.parametrize("n_negatives", [1, 4])  # one negative takes an elementwise path
@pytest.mark.parametrize("weighted", [False, True])
def test_pair_loss_backward_is_the_gradient(weighted, n_negatives, alpha):
    from skrec.factorization._bpr import PairLoss

    g = torch.Generator().manual_seed(0)
    tables = [torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in [(4, 3), (7, 3), (7, 1)]]
    u, i = torch.tensor([0, 3, 3, 1, 2]), torch.tensor([1, 6, 0, 0, 2])
    j = torch.randint(7, (5, n_negatives), generator=g)
    w = torch.rand(5, generator=g, dtype=torch.float64) if weighted else None
    assert torch.autograd.gradcheck(lambda *t: PairLoss.apply(*t, u, i, j, w, alpha, False, None), tables)
    if isinstance(alpha, tuple):  # the negatives' strength reaches only the negatives' penalty
        split = PairLoss.apply(*tables, u, i, j, w, alpha, False, None)
        same = PairLoss.apply(*tables, u, i, j, w, alpha[0], False, None)
        assert not torch.allclose(split, same)


def test_pair_loss_equals_autograd_through_the_lookups_dense_and_sparse():
    from skrec.losses import bpr_loss

    u, i, j = torch.tensor([0, 5, 2, 5]), torch.tensor([1, 8, 3, 1]), torch.tensor([[2, 4], [0, 0], [7, 1], [1, 8]])
    w = torch.tensor([1.0, 2.0, 0.5, 1.5])
    for sparse in (False, True):
        torch.manual_seed(0)
        m = BPRModule(6, 9, 4, sparse=sparse)
        m.item_bias.weight.data.normal_()
        loss = m.pair_loss(u, i, j, w, 0.2, workspace={})
        loss.backward()
        got = [t.weight.grad.to_dense() for t in (m.user_factors, m.item_factors, m.item_bias)]
        for t in (m.user_factors, m.item_factors, m.item_bias):
            t.weight.grad = None
        p, qi, bi = m.user_factors(u), m.item_factors(i), m.item_bias(i).squeeze(-1)
        qj, bj = m.item_factors(j), m.item_bias(j).squeeze(-1)
        pos, neg = (p * qi).sum(-1) + bi, torch.einsum("bd,bkd->bk", p, qj) + bj
        reg = (p.square().sum(-1) + qi.square().sum(-1) + bi.square() + qj.square().sum(-1).mean(1)
               + bj.square().mean(1))
        expected = bpr_loss(pos, neg, w) + 0.2 * reg.mean()
        expected.backward()
        torch.testing.assert_close(loss, expected)
        for a, t in zip(got, (m.user_factors, m.item_factors, m.item_bias)):
            torch.testing.assert_close(a, t.weight.grad.to_dense())
            assert t.weight.grad.is_sparse == sparse


@pytest.mark.parametrize("adaptive", [False, True])
def test_pairwise_fold_in_follows_the_autograd_gradient_of_its_loss(adaptive):
    from skrec._torch import gradient_fold_in

    g = torch.Generator().manual_seed(0)
    X = sp.csr_matrix(make_interactions(6, 12, density=0.3, random_state=0).X)
    batch = DeviceCSR.from_scipy(X, torch.device("cpu"))
    Q, b = torch.randn(12, 3, generator=g), torch.randn(12, generator=g)
    negatives, omega = torch.tensor([0, 3, 5, 7, 11]), torch.rand(5, generator=g)
    if adaptive:  # weights that follow the current vector, held constant in the gradient
        sampler = AdaptiveNegatives(0.3).refresh(Q)
        tables = sampler.rank_probabilities(negatives)
        omega = lambda u: sampler.probabilities(u, tables)  # noqa: E731
    weights = torch.rand(X.nnz, generator=g)
    init = torch.randn(6, 3, generator=g)
    got = pairwise_fold_in(batch, init, Q, b, negatives, alpha=0.1, negative_weights=omega, weights=weights,
                           n_steps=7, learning_rate=0.05)
    rows = np.repeat(np.arange(6), np.diff(X.indptr))

    def loss(u):  # the documented objective, row by row, through autograd
        total = 0.0
        for r in range(6):
            items = torch.as_tensor(X.indices[rows == r])
            w = weights[torch.as_tensor(np.flatnonzero(rows == r))]
            neg_w = omega(u[r:r + 1].detach())[0] if adaptive else omega
            keep = neg_w * ~torch.isin(negatives, items)
            si, sj = Q[items] @ u[r] + b[items], Q[negatives] @ u[r] + b[negatives]
            pairs = torch.nn.functional.softplus(sj.unsqueeze(0) - si.unsqueeze(1)) * w.unsqueeze(1) * keep
            total = total + pairs.sum() / (len(items) * keep.sum()) + 0.1 * u[r].square().sum()
        return total

    expected = gradient_fold_in(init, loss, n_steps=7, learning_rate=0.05)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
