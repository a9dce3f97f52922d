"""skrec.losses: every loss against its formula written out directly in numpy."""

import numpy as np
import pytest
import torch

from skrec.losses import (bce_loss, bpr_loss, full_softmax_loss, kl_divergence, mse_loss, multinomial_loss,
                          reconstruction_loss, sampled_softmax_loss)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def t(a, dtype=torch.float32):
    return torch.as_tensor(np.asarray(a), dtype=dtype)


# ------------------------------------------------------------------ pairwise / pointwise
@pytest.mark.parametrize("weighted", [False, True])
def test_bpr_loss_is_the_mean_negative_log_sigmoid_of_the_score_gaps(rng, weighted):
    pos, neg = rng.normal(size=6), rng.normal(size=(6, 3))
    w = rng.random(6) + 0.5 if weighted else np.ones(6)
    ref = np.mean([w[b] * np.mean([-np.log(sigmoid(pos[b] - neg[b, k])) for k in range(3)]) for b in range(6)])
    got = bpr_loss(t(pos), t(neg), t(w) if weighted else None)
    assert got.dim() == 0 and float(got) == pytest.approx(ref, rel=1e-5)


def test_bpr_loss_is_stable_for_large_gaps():
    got = bpr_loss(torch.tensor([0.0, 100.0]), torch.tensor([[100.0], [0.0]]))
    assert float(got) == pytest.approx(50.0, rel=1e-6)  # (100 + ~0) / 2, no overflow


@pytest.mark.parametrize("n_neg", [None, 4])
def test_bce_loss_pushes_positives_to_one_and_negatives_to_zero_over_valid_rows(rng, n_neg):
    N = 10
    pos = rng.normal(size=N)
    neg = rng.normal(size=N if n_neg is None else (N, n_neg))
    valid = rng.random(N) < 0.6
    valid[0] = True
    per = -np.log(sigmoid(pos)) - np.log(1 - sigmoid(neg)).reshape(N, -1).sum(1)
    got = bce_loss(t(pos), t(neg), t(valid, torch.bool))
    assert float(got) == pytest.approx(per[valid].mean(), rel=1e-5)  # padding never counts
    assert float(bce_loss(t(pos), t(neg))) == pytest.approx(per.mean(), rel=1e-5)


def test_bce_loss_of_only_padding_is_zero_not_nan():
    got = bce_loss(torch.ones(3), torch.ones(3), torch.zeros(3, dtype=torch.bool))
    assert float(got) == 0.0


# ------------------------------------------------------------------ softmax
def test_sampled_softmax_removes_the_negatives_equal_to_the_target(rng):
    N, K = 8, 5
    pos, neg = rng.normal(size=N), rng.normal(size=(N, K))
    collide = rng.random((N, K)) < 0.3
    collide[2] = True  # every negative is the target: only the target is left, the loss is 0
    valid = np.ones(N, dtype=bool)
    valid[5] = False
    per = np.array([-pos[r] + np.log(np.exp(pos[r]) + np.exp(neg[r][~collide[r]]).sum()) for r in range(N)])
    got = sampled_softmax_loss(t(pos), t(neg), t(collide, torch.bool), t(valid, torch.bool))
    assert per[2] == pytest.approx(0.0, abs=1e-12)
    assert float(got) == pytest.approx(per[valid].mean(), rel=1e-5)
    kept = np.array([-pos[r] + np.log(np.exp(pos[r]) + np.exp(neg[r]).sum()) for r in range(N)])
    assert float(sampled_softmax_loss(t(pos), t(neg))) == pytest.approx(kept.mean(), rel=1e-5)
    assert kept.mean() > per.mean()  # the collisions did count as negatives without the mask


def test_sampled_softmax_reads_half_precision_logits_in_float32():
    pos, neg = torch.tensor([1.0, -2.0]), torch.tensor([[0.5, 3.0], [1.0, 0.0]])
    got = sampled_softmax_loss(pos.bfloat16(), neg.bfloat16())
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(float(sampled_softmax_loss(pos, neg)), rel=1e-2)


def test_full_softmax_loss_is_the_cross_entropy_ignoring_minus_100(rng):
    logits = rng.normal(size=(7, 9)) * 3
    targets = rng.integers(0, 9, 7)
    targets[[1, 4]] = -100
    keep = targets != -100
    ref = -log_softmax(logits)[np.flatnonzero(keep), targets[keep]].mean()
    got = full_softmax_loss(t(logits), t(targets, torch.int64))
    assert got.dtype == torch.float32 and float(got) == pytest.approx(ref, rel=1e-5)


# ------------------------------------------------------------------ autoencoder terms
def test_multinomial_loss_is_the_count_weighted_log_softmax(rng):
    logits, x = rng.normal(size=(4, 6)), rng.integers(0, 3, (4, 6)).astype(float)
    got = multinomial_loss(t(logits), t(x))
    assert got.shape == (4,)
    np.testing.assert_allclose(got.numpy(), -(log_softmax(logits) * x).sum(1), rtol=1e-5)


def test_kl_divergence_is_the_gaussian_kl_to_the_standard_normal(rng):
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    got = kl_divergence(t(mu), t(logvar))
    ref = 0.5 * (np.exp(logvar) + mu ** 2 - 1 - logvar).sum(1)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5)
    q = torch.distributions.Normal(t(mu), torch.exp(0.5 * t(logvar)))
    p = torch.distributions.Normal(torch.zeros(5, 3), torch.ones(5, 3))
    np.testing.assert_allclose(got.numpy(), torch.distributions.kl_divergence(q, p).sum(1).numpy(), rtol=1e-5)


def test_mse_loss_sums_the_squared_errors_of_each_row(rng):
    x, pred = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    np.testing.assert_allclose(mse_loss(t(x), t(pred)).numpy(), ((x - pred) ** 2).sum(1), rtol=1e-5)


def test_reconstruction_loss_names_each_formula(rng):
    logits = rng.normal(size=(4, 6))
    x = rng.integers(0, 4, (4, 6)).astype(float)  # counts: bce binarises them, mse keeps them
    y = (x > 0).astype(float)
    refs = {
        "multinomial": -(log_softmax(logits) * x).sum(1),
        "bce": -(y * np.log(sigmoid(logits)) + (1 - y) * np.log(1 - sigmoid(logits))).sum(1),
        "mse": ((x - logits) ** 2).sum(1),
    }
    for name, ref in refs.items():
        got = reconstruction_loss(name, t(logits), t(x))
        assert got.shape == (4,)
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, err_msg=name)


def test_reconstruction_loss_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="loss must be one of 'multinomial', 'bce', 'mse'; got 'logistic'."):
        reconstruction_loss("logistic", torch.zeros(1, 2), torch.zeros(1, 2))


@pytest.mark.parametrize("rows", [1, 3, 7, 50])
def test_linear_cross_entropy_is_the_summed_cross_entropy_and_its_gradients(rows):
    """Pieces of any size, the last one overlapping the one before, give autograd's loss and
    gradients through the materialised logits."""
    from skrec.losses import linear_cross_entropy

    g = torch.Generator().manual_seed(0)
    h = torch.randn(20, 4, generator=g, requires_grad=True)
    W = torch.randn(9, 4, generator=g, requires_grad=True)
    targets = torch.randint(9, (20,), generator=g)
    targets[::6] = -100
    loss = linear_cross_entropy(h, W, targets, rows)
    loss.backward()
    got = (loss.detach(), h.grad.clone(), W.grad.clone())
    h.grad, W.grad = None, None
    want = torch.nn.functional.cross_entropy(h @ W.T, targets, ignore_index=-100, reduction="sum")
    want.backward()
    for a, b in zip(got, (want.detach(), h.grad, W.grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
