"""skrec.sampling: batch indices, negative samplers and row gathering, all on the device."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skrec._torch import DeviceCSR
from skrec.sampling import gather_rows, index_batches, sample_negatives

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
