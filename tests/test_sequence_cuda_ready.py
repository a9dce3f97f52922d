"""SequenceTransformer on CUDA: what the CPU can check of it (autocast choice, bounded loss and
inference memory, float32 scores, deterministic attention), and the same on a GPU where one is."""

import warnings
from contextlib import nullcontext

import numpy as np
import pytest
import torch

from skrec import losses
from skrec._torch import device as device_module
from skrec._torch import make_generator
from skrec.model_selection import holdout_split
from skrec.sequence import SequenceModule, SequenceTransformer
from skrec.sequence import _module, _transformer
from skrec.sequence._module import _attention, _fused
from skrec.sequence._transformer import (ADAM_BETAS, CE_ELEMENTS, SequenceTrainer, _autocast,
                                         _check_mixed_precision, exact_scores, full_softmax_pieces,
                                         inference_rows)
from test_sequence import SMALL, markov

CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def ragged():
    """Markov walks of lengths 3 to 12: batches carry padding."""
    X = markov(n_users=90, n_items=30, length=12, seed=7).tolil()
    for r in range(90):
        drop = X.rows[r][: r % 10]  # row r keeps 12 - r % 10 items
        if drop:
            X[r, drop] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    return X


def trainer_for(model, X, ratings=None, X_val=None, device="cpu"):
    # No public API builds a trainer: it is given the fitted module and the fit's spec (_spec).
    return SequenceTrainer(model.module_, X, X_val, ratings, make_generator(0, torch.device(device)), model._spec,
                           64, optimizer="adam", learning_rate=0.01, batch_size=16, betas=ADAM_BETAS)


def loss_and_grads(trainer, idx, *, compact, budget):
    trainer.compact, trainer.ce_elements = compact, budget
    trainer.generator.manual_seed(3)  # the same masks and negatives for every variant
    trainer.module.zero_grad(set_to_none=True)
    loss = trainer.loss(idx)
    loss.backward()
    return float(loss.detach()), [p.grad.clone() for p in trainer.module.parameters() if p.grad is not None]


def record_pieces(monkeypatch):
    pieces = []
    original = losses._ce_piece

    def recording(h, W, target):
        pieces.append(h.shape[0] * W.shape[0])
        return original(h, W, target)

    monkeypatch.setattr(losses, "_ce_piece", recording)
    return pieces


# ------------------------------------------------------------- bfloat16 autocast
@pytest.mark.parametrize("capability, on", [((6, 1), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_autocast_only_on_gpus_that_run_bfloat16(monkeypatch, capability, on):
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: asked.append(device) or capability)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # building a CUDA autocast on a CPU-only machine warns
        ctx = _autocast(CUDA, True)
    if on:
        assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16 and ctx.device == "cuda"
    else:
        assert isinstance(ctx, nullcontext)
    assert asked == [CUDA]
    monkeypatch.setattr(device_module, "cpu_bf16_native", lambda: False)
    assert isinstance(_autocast(CUDA, False), nullcontext) and isinstance(_autocast(torch.device("cpu"), True),
                                                                          nullcontext)
    assert asked == [CUDA]  # neither the CPU nor mixed_precision=False asks the device


@pytest.mark.parametrize("native", [False, True])
def test_autocast_on_cpus_with_bfloat16_instructions(monkeypatch, native):
    """A CPU with AVX512-BF16 or AMX runs the forward pass under bfloat16 autocast, silently;
    any other CPU in float32, silently."""
    monkeypatch.setattr(device_module, "cpu_bf16_native", lambda: native)
    cpu = torch.device("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _check_mixed_precision(cpu, True) is native
        ctx = _autocast(cpu, True)
    if native:
        assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16 and ctx.device == "cpu"
    else:
        assert isinstance(ctx, nullcontext)
    assert _check_mixed_precision(cpu, False) is False and isinstance(_autocast(cpu, False), nullcontext)


def test_the_fused_softmax_runs_its_products_in_the_autocast_dtype(monkeypatch):
    """Under autocast the loss's products take its dtype (their inputs cast to it), the softmax
    stays float32, and the loss and gradients stay close to the float32 ones."""
    dtypes = []
    original = losses._ce_piece

    def recording(h, W, target):
        dtypes.append((h.dtype, W.dtype))
        return original(h, W, target)

    monkeypatch.setattr(losses, "_ce_piece", recording)
    torch.manual_seed(0)  # test data only
    m = SequenceModule(40, 6, 16, 1, 2, 16, 0.0, causal=True, tied=True)
    h = torch.randn(50, 16, requires_grad=True)
    target, valid = torch.randint(40, (50,)), torch.ones(50, dtype=torch.bool)
    results = []
    for context in (nullcontext(), torch.autocast("cpu", dtype=torch.bfloat16)):
        h.grad = None
        m.zero_grad(set_to_none=True)
        with context:
            loss = full_softmax_pieces(m, h, target, valid, 7 * 40)
        loss.backward()
        results.append((loss.detach(), h.grad.clone(), m.item_emb.weight.grad.clone()))
    assert set(dtypes[:8]) == {(torch.float32, torch.float32)} and set(dtypes[8:]) == {(torch.bfloat16, torch.bfloat16)}
    assert results[1][0].dtype == torch.float32 and results[1][1].dtype == torch.float32
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0.05, atol=0.02)


def test_fit_warns_once_when_the_gpu_cannot_run_bfloat16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    with pytest.warns(RuntimeWarning, match=r"mixed_precision=True needs a CUDA device of compute capability "
                                            r"8\.0 or higher .* has 7\.0, so the model runs in float32") as seen:
        assert _check_mixed_precision(CUDA, True) is False
    assert len(seen) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all below
        assert _check_mixed_precision(CUDA, False) is False
        assert isinstance(_autocast(CUDA, True), nullcontext)  # inference falls back silently
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
        assert _check_mixed_precision(CUDA, True) is True


def test_each_fit_checks_mixed_precision_once(monkeypatch, ragged):
    calls = []
    original = _transformer._check_mixed_precision
    monkeypatch.setattr(_transformer, "_check_mixed_precision",
                        lambda device, on: calls.append((device, on)) or original(device, on))
    SequenceTransformer(**dict(SMALL, max_iter=3, batch_size=16)).fit(ragged)  # several batches, 3 epochs
    assert calls == [(torch.device("cpu"), True)]


# ------------------------------------------------------------- bounded full softmax
def test_full_softmax_in_pieces_equals_the_whole_loss_and_its_gradients(monkeypatch):
    torch.manual_seed(0)  # test data only
    m = SequenceModule(40, 6, 16, 1, 2, 16, 0.0, causal=True, tied=True)
    h = torch.randn(50, 16, requires_grad=True)
    target = torch.randint(40, (50,))
    valid = torch.rand(50) < 0.7

    def run(budget):
        m.zero_grad(set_to_none=True)
        h.grad = None
        loss = full_softmax_pieces(m, h, target, valid, budget)
        loss.backward()
        return loss.detach(), h.grad.clone(), m.item_emb.weight.grad.clone()

    pieces = record_pieces(monkeypatch)
    whole = run(CE_ELEMENTS)
    assert pieces == [50 * 40]  # under the budget: one piece
    h.grad = None
    m.zero_grad(set_to_none=True)
    reference = torch.nn.functional.cross_entropy(h @ m.output_weights().t(), torch.where(valid, target, -100))
    reference.backward()  # autograd through the materialised logits
    for a, b in zip(whole, (reference.detach(), h.grad, m.item_emb.weight.grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    pieces.clear()
    small = run(7 * 40)
    assert len(pieces) == 8 and max(pieces) <= 7 * 40  # 50 rows in 8 pieces, none run again in backward
    for a, b in zip(whole, small):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("objective", ["causal", "masked"])
def test_padded_batches_train_the_same_in_bounded_pieces(monkeypatch, ragged, objective):
    """The loss without the CPU's compaction (the CUDA path, padding kept) and in pieces of at
    most 5 rows of logits gives the loss and gradients of the compact, whole loss."""
    R = ragged.copy()
    R.data = 1.0 + R.indices % 5
    model = SequenceTransformer(**dict(SMALL, max_iter=1, dropout=0.0, early_stopping=False, objective=objective,
                                       mixed_precision=False)).fit(ragged, ratings=R)  # exact arithmetic
    trainer = trainer_for(model, ragged, R)
    idx = torch.arange(40)
    pieces = record_pieces(monkeypatch)
    compact, padded = [[loss_and_grads(trainer, idx, compact=c, budget=CE_ELEMENTS)] for c in (True, False)]
    pieces.clear()
    for c, runs in ((True, compact), (False, padded)):
        runs.append(loss_and_grads(trainer, idx, compact=c, budget=5 * 30))
    # The masked objective draws its masks at the batch's width: padded and compact batches
    # mask other positions, so only the causal one compares across them.
    pairs = [(compact[1], compact[0]), (padded[1], padded[0])]
    if objective == "causal":
        pairs += [(padded[0], compact[0])]
    for (loss, grads), (want, want_grads) in pairs:
        assert loss == pytest.approx(want, rel=1e-5)
        for a, b in zip(grads, want_grads):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert pieces and max(pieces) <= 5 * 30


def test_padded_batch_logits_stay_within_the_budget(monkeypatch, ragged):
    """Without compaction a batch has 16 rows x 12 positions; its logits come in pieces."""
    model = SequenceTransformer(**dict(SMALL, max_iter=1, early_stopping=False)).fit(ragged)
    trainer = trainer_for(model, ragged)
    trainer.compact, trainer.ce_elements = False, 32 * 30
    pieces = record_pieces(monkeypatch)
    assert np.isfinite(trainer.train_epoch())
    assert len(pieces) >= 6 * (90 // 16) and max(pieces) <= 32 * 30


def test_the_trainer_drops_columns_no_row_reaches():
    X = markov(n_users=30, n_items=20, length=5, seed=2)
    model = SequenceTransformer(**dict(SMALL, max_seq_len=50, max_iter=1, early_stopping=False)).fit(X)
    assert trainer_for(model, X).items.shape == (30, 5)  # not 51 columns of padding


# ------------------------------------------------------------- inference batches
def test_inference_rows_bound_scores_and_activations():
    assert inference_rows(500, 200, 64, 64) == 2**24 // (200 * 128)  # activations, not 500 scores
    assert inference_rows(100_000, 50, 64, 64) == 2**24 // 100_000  # scores
    assert inference_rows(10, 10, 8, 1000) == 2**24 // (10 * 1000)  # the feed-forward layer
    assert inference_rows(10**9, 2, 2, 2) == 1 and inference_rows(1, 1, 1, 1, budget=0) == 1
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, L, d, ff = (int(v) for v in rng.integers(1, [10**6, 500, 1024, 4096]))
        rows = inference_rows(n, L, d, ff)
        widest = max(n, L * max(2 * d, ff))
        assert rows * widest <= 2**24 < (rows + 1) * widest or rows == 1


def test_inference_and_validation_batches_follow_the_bound(monkeypatch, ragged):
    base = SequenceTransformer(**dict(SMALL, max_iter=2, n_factors=16)).fit(ragged)
    assert base._rows_per_batch() == inference_rows(30, 12, 16, 16)
    monkeypatch.setattr(SequenceTransformer, "_inference_elements", 12 * 32 * 7)  # 7 rows per batch
    sizes = []
    original = _transformer.last_hidden
    monkeypatch.setattr(_transformer, "last_hidden",
                        lambda module, spec, batch: sizes.append(batch.n_rows) or original(module, spec, batch))
    small = SequenceTransformer(**dict(SMALL, max_iter=2, n_factors=16)).fit(ragged)
    assert small._rows_per_batch() == 7 and max(sizes) == 7 and len(sizes) >= 2 * 90 // 7  # validation
    assert small.best_score_ == pytest.approx(base.best_score_, abs=1e-6)
    sizes.clear()
    np.testing.assert_allclose(small.predict(ragged), base.predict(ragged), rtol=1e-5, atol=1e-5)
    assert max(sizes) == 7


# ------------------------------------------------------------- float32 scores
def test_scores_are_float32_even_inside_an_autocast(monkeypatch, ragged):
    R = ragged.copy()
    R.data = 1.0 + R.indices % 5
    model = SequenceTransformer(**dict(SMALL, max_iter=2)).fit(ragged, ratings=R)
    W = model.module_.output_weights().detach()
    rows = ragged[:20]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.bfloat16  # the autocast is on
        _, batch = next(model._row_batches(rows))
        h = model._last_hidden(batch)
        scores = model._score_batch(batch)
        pred, hidden = model.predict(rows), model.transform(rows)
        ratings = model.predict_rating(rows)
        ids, top = model.recommend(rows, k=5)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores, h @ W.T, rtol=1e-6, atol=1e-6)  # a bfloat16 GEMM is off by ~1e-2
    np.testing.assert_allclose(pred, hidden @ W.numpy().T, rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        want = model.module_.rating(torch.as_tensor(hidden)).numpy()
    np.testing.assert_allclose(ratings, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(top, np.take_along_axis(pred, ids, 1), rtol=1e-6)
    # the validation ranking of early stopping too
    seen = []
    original = _transformer.ndcg_on_device
    monkeypatch.setattr(_transformer, "ndcg_on_device", lambda s, *a, **k: seen.append(s.dtype) or original(s, *a, **k))
    trainer = trainer_for(model, ragged, X_val=holdout_split(ragged, 1, strategy="last"))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        trainer.validation_loss()
    assert seen and all(dtype == torch.float32 for dtype in seen)


def test_scores_of_a_bfloat16_encoder_are_float32_products(monkeypatch, ragged):
    """The regime of a GPU: the encoder under bfloat16 autocast, the scores GEMM outside it."""
    model = SequenceTransformer(**dict(SMALL, max_iter=2)).fit(ragged)
    monkeypatch.setattr(_transformer, "_autocast", lambda device, on: torch.autocast("cpu", dtype=torch.bfloat16))
    rows = ragged[:20]
    with torch.no_grad():
        _, batch = next(model._row_batches(rows))
        scores = model._score_batch(batch)
    assert scores.dtype == torch.float32
    W = model.module_.output_weights().detach().numpy()
    np.testing.assert_allclose(scores.numpy(), model.transform(rows) @ W.T, rtol=1e-6, atol=1e-6)
    h = torch.as_tensor(model.transform(rows))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert exact_scores(model.module_, h).dtype == torch.float32
        assert model.module_.scores(h).dtype == torch.bfloat16  # what training uses: bfloat16 logits


# ------------------------------------------------------------- deterministic attention
def test_attention_is_fused_unless_dropout_or_a_deterministic_cuda_backward(monkeypatch):
    g = torch.Generator()
    cpu = torch.device("cpu")
    assert _fused(CUDA, True, 0.0, g) and _fused(CUDA, True, 0.3, None) and _fused(cpu, True, 0.0, None)
    assert not _fused(cpu, False, 0.3, g) and not _fused(CUDA, False, 0.3, g)
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    assert not _fused(CUDA, True, 0.0, g) and not _fused(CUDA, True, 0.0, None)
    assert _fused(CUDA, False, 0.0, None)  # inference: the forward pass is deterministic
    assert _fused(cpu, True, 0.0, g)  # the CPU is left as it is


@pytest.mark.parametrize("causal", [True, False])
def test_the_deterministic_path_is_the_same_attention(monkeypatch, causal):
    torch.manual_seed(0)
    q, k, v = (t.requires_grad_() for t in torch.randn(3, 2, 2, 6, 4))
    real = torch.arange(6) < torch.tensor([[6], [3]])
    mask = None if causal else real[:, None, None, :]
    asked = []
    original = _module._fused

    def choose(device, needs_grad, p, generator, fused=True):
        asked.append(needs_grad)
        return fused and original(device, needs_grad, p, generator)

    monkeypatch.setattr(_module, "_fused", choose)
    with torch.no_grad():
        _attention(q, k, v, mask, causal, 0.0, None)
    fused = _attention(q, k, v, mask, causal, 0.0, None)
    assert asked == [False, True]
    grads = torch.autograd.grad(fused.square().sum(), (q, k, v))
    monkeypatch.setattr(_module, "_fused", lambda *a: choose(*a, fused=False))
    plain = _attention(q, k, v, mask, causal, 0.0, None)
    torch.testing.assert_close(plain, fused)
    for a, b in zip(torch.autograd.grad(plain.square().sum(), (q, k, v)), grads):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------- on a GPU
@pytest.mark.cuda
def test_cuda_autocast_follows_the_device_capability():
    ctx = _autocast(CUDA, True)
    assert isinstance(ctx, torch.autocast) == (torch.cuda.get_device_capability(CUDA) >= (8, 0))


@pytest.mark.cuda
def test_cuda_attention_backward_is_reproducible_in_deterministic_mode():
    torch.manual_seed(0)
    q, k, v = (t.requires_grad_() for t in torch.randn(3, 8, 2, 64, 16, device="cuda"))
    was, was_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
        runs = [torch.autograd.grad(_attention(q, k, v, None, True, 0.0, None).square().sum(), (q, k, v))
                for _ in range(3)]
    finally:
        torch.use_deterministic_algorithms(was, warn_only=was_warn)
    for run in runs[1:]:
        for a, b in zip(run, runs[0]):
            assert torch.equal(a, b)
    fused = torch.autograd.grad(_attention(q, k, v, None, True, 0.0, None).square().sum(), (q, k, v))
    for a, b in zip(fused, runs[0]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.cuda
def test_cuda_full_softmax_in_pieces_matches_and_scores_are_float32(ragged):
    model = SequenceTransformer(**dict(SMALL, max_iter=2, device="cuda")).fit(ragged)
    trainer = trainer_for(model, ragged, device="cuda")
    assert not trainer.compact
    idx = torch.arange(40, device="cuda")
    whole = loss_and_grads(trainer, idx, compact=False, budget=CE_ELEMENTS)
    pieces = loss_and_grads(trainer, idx, compact=False, budget=5 * 30)
    assert pieces[0] == pytest.approx(whole[0], rel=1e-3)
    for a, b in zip(pieces[1], whole[1]):
        torch.testing.assert_close(a, b, rtol=2e-2, atol=1e-3)
    rows = ragged[:20]
    with torch.no_grad():
        _, batch = next(model._row_batches(rows))
        scores = model._score_batch(batch)
    assert scores.dtype == torch.float32
    W = model.module_.output_weights().detach().cpu().numpy()
    np.testing.assert_allclose(scores.cpu().numpy(), model.transform(rows) @ W.T, rtol=1e-4, atol=1e-4)
