"""skrec.sampling: batch indices, negative samplers and row gathering, all on the device."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skrec._torch import DeviceCSR
from skrec.sampling import AdaptiveNegatives, gather_rows, index_batches, is_positive, sample_negatives

CPU = torch.device("cpu")


def test_index_batches_cover_everything_once():
    g = torch.Generator().manual_seed(3)
    batches = index_batches(103, 10, g)
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert sorted(torch.cat(batches).tolist()) == list(range(103))


def test_index_batches_shuffle_with_the_generator_and_keep_order_without():
    first = torch.cat(index_batches(50, 7, torch.Generator().manual_seed(0))).tolist()
    again = torch.cat(index_batches(50, 7, torch.Generator().manual_seed(0))).tolist()
    other = torch.cat(index_batches(50, 7, torch.Generator().manual_seed(1))).tolist()
    assert first == again and first != other and first != list(range(50))
    kept = torch.cat(index_batches(50, 7, torch.Generator().manual_seed(0), shuffle=False)).tolist()
    assert kept == list(range(50))


def test_gather_rows_matches_scipy():
    X = sp.random(9, 7, density=0.4, format="csr", random_state=1)
    D = DeviceCSR.from_scipy(X, CPU)
    rows = torch.tensor([8, 0, 3, 3])
    np.testing.assert_allclose(gather_rows(D, rows).numpy(), X[[8, 0, 3, 3]].toarray(), rtol=1e-6)


@pytest.mark.parametrize("density", [0.1, 0.5, 0.95])
def test_uniform_negatives_are_exact_and_uniform_over_non_positives(density):
    n_users, n_items = 40, 20
    X = sp.random(n_users, n_items, density=density, format="csr", random_state=0)
    X.data[:] = 1
    X = X.tolil()
    X[3, :] = 1  # a user who liked everything but one item
    X[3, 7] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    liked = DeviceCSR.from_scipy(X, CPU)
    users = torch.tensor(np.repeat(np.arange(n_users), 500))
    neg = sample_negatives(users, n_items, torch.Generator().manual_seed(0), n_negatives=3, exclude=liked)
    dense = X.toarray() > 0
    ok_rows = dense.sum(1) < n_items
    hit = dense[users.numpy()[:, None], neg.numpy()]
    assert not hit[ok_rows[users.numpy()]].any()
    assert (neg.numpy()[users.numpy() == 3] == 7).all()
    # uniform within each user's non-positives
    for u in np.flatnonzero(dense.sum(1) <= n_items - 2)[:2]:
        free = np.flatnonzero(~dense[u])
        freq = np.bincount(neg.numpy()[users.numpy() == u].ravel(), minlength=n_items)[free] / 1500
        np.testing.assert_allclose(freq, 1 / len(free), atol=4 * np.sqrt(1 / len(free) / 1500))


def test_popularity_negatives_follow_probabilities_and_reject_positives():
    n_items = 20
    p = torch.arange(1, n_items + 1, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    draws = sample_negatives(torch.zeros(200000, dtype=torch.long), n_items, g, probabilities=p)
    freq = np.bincount(draws.numpy().ravel(), minlength=n_items) / 200000
    np.testing.assert_allclose(freq, (p / p.sum()).numpy(), atol=0.005)
    X = sp.random(30, n_items, density=0.3, format="csr", random_state=1)
    users = torch.tensor(np.repeat(np.arange(30), 100))
    neg = sample_negatives(users, n_items, g, probabilities=p, exclude=DeviceCSR.from_scipy(X, CPU))
    assert not (X.toarray() > 0)[users.numpy()[:, None], neg.numpy()].any()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_adaptive_negatives_draw_geometric_ranks_along_the_users_factor(sign):
    # one factor carries the whole user vector: every draw is along it, at a geometric rank of
    # the items ordered by sign * q_i0, descending
    n_items, mean_rank = 40, 0.1
    g = torch.Generator().manual_seed(0)
    Q = torch.randn(n_items, 3, generator=g)
    sampler = AdaptiveNegatives(mean_rank).refresh(Q)
    draws = sampler.sample(torch.tensor([[sign, 0.0, 0.0]]).repeat(100000, 1), g).numpy().ravel()
    order = np.argsort(-sign * Q[:, 0].numpy())
    rank_of = np.empty(n_items, dtype=int)
    rank_of[order] = np.arange(n_items)
    freq = np.bincount(rank_of[draws], minlength=n_items) / draws.size
    p = 1 / (mean_rank * n_items)
    expected = p * (1 - p) ** np.arange(n_items)
    expected[-1] = (1 - p) ** (n_items - 1)  # ranks past the end are clamped to the last item
    np.testing.assert_allclose(freq, expected, atol=0.004)


def test_adaptive_negatives_pick_factors_by_weight_and_never_a_positive():
    g = torch.Generator().manual_seed(1)
    Q = torch.randn(30, 2, generator=g) * torch.tensor([1.0, 3.0])
    sampler = AdaptiveNegatives(0.05).refresh(Q)
    X = sp.random(50, 30, density=0.3, format="csr", random_state=2)
    X.data[:] = 1
    users = torch.tensor(np.repeat(np.arange(50), 200))
    P = torch.tensor([[1.0, 1.0]]).repeat(len(users), 1)
    neg = sampler.sample(P, g, n_negatives=2, users=users, exclude=DeviceCSR.from_scipy(X, CPU))
    assert not (X.toarray() > 0)[users.numpy()[:, None], neg.numpy()].any()
    # without exclusion: factor 1 (3x the spread) is chosen 3 times in 4, so its top items dominate
    top0, top1 = int(Q[:, 0].argmax()), int(Q[:, 1].argmax())
    free = sampler.sample(P[:40000], g).numpy().ravel()
    p = 1 / (0.05 * 30)
    assert abs(np.mean(free == top1) - 0.75 * p) < 0.02
    assert abs(np.mean(free == top0) - 0.25 * p) < 0.02


def test_adaptive_negatives_refresh_after_n_log_n_samples():
    sampler = AdaptiveNegatives(0.1)
    assert sampler.due(1)  # nothing ranked yet
    sampler.refresh(torch.randn(100, 4))
    assert not sampler.due(400)
    assert sampler.due(100)  # 500 >= 100 ln 100 = 460.5


def test_is_positive_matches_the_dense_matrix():
    X = sp.random(20, 15, density=0.3, format="csr", random_state=3)
    users = torch.arange(20).repeat_interleave(15)
    items = torch.arange(15).repeat(20).unsqueeze(1)
    hit = is_positive(DeviceCSR.from_scipy(X, CPU), users, items).numpy().ravel()
    np.testing.assert_array_equal(hit, (X.toarray() > 0).ravel())


def test_adaptive_probabilities_are_the_samplers_distribution():
    g = torch.Generator().manual_seed(4)
    Q = torch.randn(25, 3, generator=g)
    sampler = AdaptiveNegatives(0.2).refresh(Q)
    P = torch.tensor([[0.5, -1.0, 2.0], [-0.3, 0.0, 0.1]])
    probs = sampler.probabilities(P, sampler.rank_probabilities(torch.arange(25)))
    np.testing.assert_allclose(probs.sum(1).numpy(), 1.0, rtol=1e-5)
    for b in range(2):
        draws = sampler.sample(P[b:b + 1].repeat(200000, 1), g).numpy().ravel()
        freq = np.bincount(draws, minlength=25) / draws.size
        np.testing.assert_allclose(freq, probs[b].numpy(), atol=0.004)
