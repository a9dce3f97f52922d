"""Tests for skrec._torch.ranking: on-device NDCG/Recall against skrec.metrics."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skrec._torch import DeviceCSR, topk_items
from skrec._torch.ranking import ndcg_on_device, recall_on_device
from skrec.metrics import ndcg_at_k, recall_at_k

CPU = torch.device("cpu")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def csr(dense, device=CPU):
    return DeviceCSR.from_scipy(sp.csr_matrix(np.asarray(dense, dtype=float)), torch.device(device))


def reference_ids(scores, excluded, k):
    """Top k of each row by (-score, item index), excluded items and -inf never ranked."""
    s = np.where(excluded, -np.inf, scores)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(s, order, axis=1)
    ids = np.where(np.isneginf(top), -1, order)
    if ids.shape[1] < k:  # k > n_items: pad, as evaluate does
        ids = np.hstack([ids, np.full((ids.shape[0], k - ids.shape[1]), -1)])
    return ids


def random_case(seed, n_rows=40, n_items=25, n_levels=4):
    """Integer-valued scores (many ties), a history and a disjoint-or-not held-out set."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, n_levels, size=(n_rows, n_items)).astype(np.float32)
    history = rng.random((n_rows, n_items)) < 0.3
    held = (rng.random((n_rows, n_items)) < 0.15) & ~history
    held[rng.random(n_rows) < 0.25] = False  # some rows without a held-out item
    held[0] = False
    held[1, :3] = True
    # ratings as values: relevance is binary whatever is stored
    held_vals = np.where(held, rng.integers(1, 6, size=held.shape), 0).astype(float)
    return scores, history, held_vals


def run(fn, scores, history, held, k, device="cpu", use_exclude=True):
    t = torch.as_tensor(scores, device=device)
    exclude = csr(history, device) if use_exclude else None
    total, count = fn(t, csr(held, device), k, exclude=exclude)
    return total, count


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 3, 10, 25])
@pytest.mark.parametrize("use_exclude", [True, False])
def test_ndcg_equals_ndcg_at_k_with_ties(seed, k, use_exclude):
    scores, history, held = random_case(seed)
    excluded = history if use_exclude else np.zeros_like(history)
    total, count = run(ndcg_on_device, scores, history, held, k, use_exclude=use_exclude)
    n_eval = int((held != 0).any(axis=1).sum())
    assert total.dtype == torch.float32 and total.ndim == 0
    assert count.ndim == 0 and int(count) == n_eval
    expected = ndcg_at_k(sp.csr_matrix(held), reference_ids(scores, excluded, k), k)
    assert float(total) / int(count) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    if not use_exclude:  # the score path of ndcg_at_k breaks ties the same way
        assert float(total) / int(count) == pytest.approx(
            ndcg_at_k(sp.csr_matrix(held), scores, k), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 5, 25])
def test_recall_equals_recall_at_k_with_ties(seed, k):
    scores, history, held = random_case(seed)
    total, count = run(recall_on_device, scores, history, held, k)
    expected = recall_at_k(sp.csr_matrix(held), reference_ids(scores, history, k), k)
    assert int(count) == int((held != 0).any(axis=1).sum())
    assert float(total) / int(count) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_uses_the_tie_rule_of_topk_items():
    # every score equal: the list is items 0, 1, ... (lower index first)
    scores = torch.zeros((2, 6))
    held = csr([[0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 1]])
    ids, _ = topk_items(scores.clone(), 3)
    assert ids.tolist() == [[0, 1, 2], [0, 1, 2]]
    total, count = ndcg_on_device(scores, held, 3)
    d = 1 / np.log2(np.arange(2, 5))
    assert int(count) == 2
    assert float(total) == pytest.approx(d[2] / d[0] + d[0] / (d[0] + d[1]), rel=1e-6)


def test_row_batches_add_up():
    scores, history, held = random_case(7, n_rows=50)
    t, hist, hld = torch.as_tensor(scores), csr(history), csr(held)
    total, count = ndcg_on_device(t, hld, 10, exclude=hist)
    acc_total, acc_count = torch.zeros(()), torch.zeros((), dtype=torch.int64)
    for start in range(0, 50, 16):
        stop = min(start + 16, 50)
        s, c = ndcg_on_device(t[start:stop], hld.slice_rows(start, stop), 10,
                              exclude=hist.slice_rows(start, stop))
        acc_total, acc_count = acc_total + s, acc_count + c
    assert int(acc_count) == int(count)
    assert float(acc_total) == pytest.approx(float(total), rel=1e-5)


def test_rows_without_held_items_are_skipped():
    scores = torch.tensor([[1.0, 0.0, 2.0], [5.0, 4.0, 3.0], [0.0, 1.0, 2.0]])
    held = csr([[0, 0, 0], [1, 0, 0], [0, 0, 0]])
    total, count = ndcg_on_device(scores, held, 2)
    assert int(count) == 1 and float(total) == pytest.approx(1.0)
    total, count = ndcg_on_device(scores, csr(np.zeros((3, 3))), 2)
    assert int(count) == 0 and float(total) == 0.0
    total, count = recall_on_device(scores, csr(np.zeros((3, 3))), 2)
    assert int(count) == 0 and float(total) == 0.0


def test_empty_batch():
    total, count = ndcg_on_device(torch.zeros((0, 4)), csr(np.zeros((0, 4))), 2)
    assert float(total) == 0.0 and int(count) == 0


def test_input_tensor_unchanged_and_not_aliased():
    scores, history, held = random_case(3)
    scores[2, 4] = np.nan
    t = torch.as_tensor(scores.copy())
    before = t.clone()
    ndcg_on_device(t, csr(held), 10, exclude=csr(history))
    recall_on_device(t, csr(held), 10, exclude=csr(history))
    assert torch.equal(torch.isnan(t), torch.isnan(before))
    assert torch.equal(torch.nan_to_num(t), torch.nan_to_num(before))


def test_excluded_items_are_never_hits():
    scores = torch.tensor([[9.0, 1.0, 0.0, 8.0]])
    held = csr([[1, 0, 0, 1]])  # both relevant items are seen: neither can be a hit
    total, count = ndcg_on_device(scores, held, 4, exclude=csr([[1, 0, 0, 1]]))
    assert int(count) == 1 and float(total) == 0.0
    # IDCG still counts both relevant items: a hit at rank 1 gives 1 / (1 + 1/log2(3))
    total, _ = ndcg_on_device(torch.tensor([[0.0, 0.0, 0.0, 5.0]]), held, 4,
                              exclude=csr([[1, 0, 0, 0]]))
    assert float(total) == pytest.approx(1 / (1 + 1 / np.log2(3)), rel=1e-6)


def test_nan_scores_rank_last():
    scores = torch.tensor([[float("nan"), 1.0, 0.0]])
    total, _ = ndcg_on_device(scores, csr([[1, 0, 0]]), 2)
    assert float(total) == 0.0


def test_k_larger_than_n_items_ranks_every_item():
    scores, history, held = random_case(11, n_items=8)
    total, count = run(ndcg_on_device, scores, history, held, 100)
    expected = ndcg_at_k(sp.csr_matrix(held), reference_ids(scores, history, 100), 100)
    assert float(total) / int(count) == pytest.approx(expected, rel=1e-5)


def test_float64_scores_keep_their_precision():
    # distinct in float64, equal in float32: item 1 must win
    scores = torch.tensor([[1.0, 1.0 + 1e-12, 0.0]], dtype=torch.float64)
    total, _ = ndcg_on_device(scores, csr([[0, 1, 0]]), 1)
    assert float(total) == 1.0


def test_gradient_free():
    scores = torch.randn(4, 6, requires_grad=True)
    total, _ = ndcg_on_device(scores, csr(np.eye(4, 6)), 3)
    assert not total.requires_grad
    assert scores.grad is None


@pytest.mark.parametrize("device", DEVICES)
def test_stays_on_device(device):
    scores, history, held = random_case(5)
    total, count = run(ndcg_on_device, scores, history, held, 10, device=device)
    assert total.device.type == device and count.device.type == device
    cpu_total, cpu_count = run(ndcg_on_device, scores, history, held, 10)
    assert int(count) == int(cpu_count)
    assert float(total) == pytest.approx(float(cpu_total), rel=1e-5)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: ndcg_on_device(torch.zeros(2, 3), csr(np.zeros((2, 3))), 0), ValueError, "^k must"),
    (lambda: ndcg_on_device(torch.zeros(2, 3), csr(np.zeros((2, 3))), 1.5), TypeError, "^k must"),
    (lambda: ndcg_on_device(torch.zeros(2, 3), csr(np.zeros((2, 4))), 1), ValueError,
     r"^held must .*\(2, 3\)"),
    (lambda: ndcg_on_device(torch.zeros(2, 3), None, 1), ValueError, "^held must"),
    (lambda: ndcg_on_device(torch.zeros(2, 3), csr(np.zeros((2, 3))), 1,
                            exclude=csr(np.zeros((1, 3)))), ValueError, "^exclude must"),
    (lambda: ndcg_on_device(np.zeros((2, 3)), csr(np.zeros((2, 3))), 1), TypeError,
     "^scores must"),
    (lambda: ndcg_on_device(torch.zeros(3), csr(np.zeros((1, 3))), 1), TypeError, "^scores must"),
    (lambda: ndcg_on_device(torch.zeros(2, 3, dtype=torch.int64), csr(np.zeros((2, 3))), 1),
     TypeError, "^scores must"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
