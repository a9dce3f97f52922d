"""skrec._torch.topk: batched top-k with seen-item masking, an allow-list and exact ties."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skrec._torch import DeviceCSR, topk_items

CPU = torch.device("cpu")


def brute_topk(scores, k, seen=None, items=None):
    """Per-row reference: sort by (-score, item id), skip seen items and items not allowed."""
    out = []
    for r, row in enumerate(scores):
        cand = [(float(-s), i) for i, s in enumerate(row)
                if (seen is None or i not in seen[r]) and (items is None or i in items)]
        cand.sort()
        ids = [i for _, i in cand[:k]]
        out.append(ids + [-1] * (k - len(ids)))
    return np.array(out)


@pytest.mark.parametrize("seed", range(36))
def test_topk_matches_brute_force_with_ties(seed):
    """Rows tied across the k-th place (taken exactly) and rows without (the fast path) mix."""
    rng = np.random.default_rng(seed)
    n_rows, n_items = rng.integers(1, 12), rng.integers(2, 30)
    levels = (4, 40, 10**6)[seed % 3]  # many ties, some, hardly any
    scores = rng.integers(0, levels, size=(n_rows, n_items)).astype(np.float32)
    X = sp.random(n_rows, n_items, density=rng.uniform(0, 0.9), format="csr", random_state=seed)
    X.data[:] = 1
    seen = [set(X[r].indices) for r in range(n_rows)]
    items = np.sort(rng.choice(n_items, size=rng.integers(1, n_items + 1), replace=False)) if seed % 2 else None
    n_cand = n_items if items is None else len(items)
    k = int(rng.integers(1, n_cand + 1))
    batch = DeviceCSR.from_scipy(X, CPU)
    ids, top = topk_items(torch.tensor(scores), k, exclude=batch,
                          items=None if items is None else torch.tensor(items))
    expected = brute_topk(scores, k, seen, None if items is None else set(items.tolist()))
    np.testing.assert_array_equal(ids.numpy(), expected)
    valid = expected >= 0
    np.testing.assert_array_equal(top.numpy()[valid], np.take_along_axis(scores, np.maximum(expected, 0), 1)[valid])
    assert np.isneginf(top.numpy()[~valid]).all()


def test_topk_never_recommends_nan_scores():
    ids, top = topk_items(torch.tensor([[np.nan, 2.0, 1.0, 0.0]]), 2)
    assert ids.tolist() == [[1, 2]]
    assert top.tolist() == [[2.0, 1.0]]


def test_a_row_with_every_item_seen_gets_only_minus_one():
    X = sp.csr_matrix(np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]))
    ids, top = topk_items(torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]]), 2, exclude=DeviceCSR.from_scipy(X, CPU))
    assert ids.tolist() == [[-1, -1], [0, 2]]
    assert np.isneginf(top[0].numpy()).all()
