"""SequenceTransformer: sequences from order keys, masking, objectives, losses, rating head."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

from skrec import Popularity
from skrec._torch import make_generator
from skrec.metrics import ndcg_at_k
from skrec.model_selection import evaluate, holdout_split
from skrec.sequence import SequenceModule, SequenceTransformer
from skrec.sequence import _transformer
from skrec.sequence._module import _attention
from skrec.sequence._sequences import build_sequences, time_gap_buckets
from skrec.sequence._transformer import ADAM_BETAS, SequenceTrainer


def markov(n_users=300, n_items=40, length=12, p_follow=0.8, seed=0):
    """First-order Markov walks: each item has one likely successor (a random permutation)."""
    rng = np.random.default_rng(seed)
    succ = rng.permutation(n_items)
    rows, cols, keys = [], [], []
    for u in range(n_users):
        cur = int(rng.integers(n_items))
        seen = [cur]
        while len(seen) < length:
            nxt = int(succ[cur]) if rng.random() < p_follow else int(rng.integers(n_items))
            if nxt in seen:  # a row stores an item once: draw an unseen one instead
                nxt = int(rng.choice(np.setdiff1d(np.arange(n_items), seen)))
            seen.append(nxt)
            cur = nxt
        rows += [u] * length
        cols += seen
        keys += list(range(1, length + 1))
    return sp.csr_matrix((np.array(keys, float), (rows, cols)), shape=(n_users, n_items))


@pytest.fixture(scope="module")
def walks():
    X = markov()
    hist, held = holdout_split(X, 1, strategy="last")
    return X, hist, held


SMALL = dict(n_factors=32, max_seq_len=12, n_layers=1, dropout=0.1, learning_rate=0.01, batch_size=64,
             max_iter=40, n_iter_no_change=5, random_state=0, device="cpu")


def cooccurrence_ndcg(hist, held):
    """An order-blind ranker: items co-occurring with the history (item-item counts)."""
    B = (hist > 0).astype(float)
    C = (B.T @ B).toarray()
    np.fill_diagonal(C, 0)
    S = np.asarray(B @ C)
    S[B.toarray() > 0] = -np.inf
    return ndcg_at_k(held, np.argsort(-S, axis=1, kind="stable")[:, :10], k=10)


# ---------------------------------------------------------------- sequences
def test_build_sequences_matches_a_per_row_reference():
    rng = np.random.default_rng(0)
    X = sp.random(30, 25, density=0.4, random_state=0, format="csr")
    X.data = rng.integers(1, 6, X.nnz).astype(float)  # many ties
    items, keys, lengths, extra = build_sequences(
        torch.as_tensor(X.indptr, dtype=torch.int64), torch.as_tensor(X.indices, dtype=torch.int64),
        torch.as_tensor(X.data), 4, pad=-1, extra=torch.as_tensor(X.data * 10))
    for r in range(X.shape[0]):
        idx, val = X[r].indices, X[r].data
        order = np.lexsort((idx, val))  # by key, then item index
        want = idx[order][-4:]
        assert lengths[r] == want.size
        np.testing.assert_array_equal(items[r, :want.size].numpy(), want)
        assert (items[r, want.size:] == -1).all()
        np.testing.assert_array_equal(keys[r, :want.size].numpy(), val[order][-4:])
        np.testing.assert_array_equal(extra[r, :want.size].numpy(), 10 * val[order][-4:])


def test_time_gap_buckets_are_log_scaled_and_zero_at_padding():
    keys = torch.tensor([[100.0, 101.0, 101.0, 1e6, 0.0]], dtype=torch.float64)
    b = time_gap_buckets(keys, torch.tensor([4]), 64)[0].tolist()
    assert b[0] == 0 and b[4] == 0
    assert b[2] == 1 and b[1] == 3 and b[3] > b[1]


def test_truncation_keeps_the_latest_items(walks):
    _, hist, _ = walks
    model = SequenceTransformer(**dict(SMALL, max_seq_len=4, max_iter=3)).fit(hist)
    rows = hist[:20]
    _, latest = holdout_split(rows, 4, strategy="last", min_history=0)  # the latest 4 items only
    assert (np.diff(latest.indptr) == 4).all() and (np.diff(rows.indptr) > 4).all()
    np.testing.assert_allclose(model.predict(rows), model.predict(latest), rtol=1e-5, atol=1e-5)
    _, latest3 = holdout_split(rows, 3, strategy="last", min_history=0)
    assert not np.allclose(model.predict(rows), model.predict(latest3))


def test_ties_are_broken_by_item_index(walks):
    _, hist, _ = walks
    model = SequenceTransformer(**dict(SMALL, max_iter=3)).fit(hist)
    rows = hist[:10]
    tied = rows.copy()
    tied.data[:] = 7.0  # every key equal: the order is the item index
    by_index = rows.copy()
    by_index.data = by_index.indices + 1.0
    np.testing.assert_array_equal(model.predict(tied), model.predict(by_index))
    assert not np.allclose(model.predict(rows), model.predict(tied))


def test_timestamps_keep_their_order_exactly():
    """Unix timestamps one second apart are ordered exactly (float64 keys, not float32)."""
    X = markov(n_users=40, n_items=12, length=5, seed=1)
    model = SequenceTransformer(**dict(SMALL, max_iter=2, early_stopping=False, time_features=True)).fit(X)
    base = 1.6e9
    late_first = sp.csr_matrix(([base + 1, base], ([0, 0], [3, 5])), shape=(1, 12))  # 5 then 3
    by_rank = sp.csr_matrix(([2.0, 1.0], ([0, 0], [3, 5])), shape=(1, 12))
    other = sp.csr_matrix(([1.0, 2.0], ([0, 0], [3, 5])), shape=(1, 12))
    np.testing.assert_array_equal(model.transform(late_first), model.transform(by_rank))
    assert not np.allclose(model.transform(late_first), model.transform(other))


# ---------------------------------------------------------------- attention
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_causal_attention_cannot_see_the_future(device):
    torch.manual_seed(0)  # test data only; the module itself is initialised by the estimator
    m = SequenceModule(20, 8, 16, 2, 2, 16, 0.0, causal=True, tied=True).to(device).eval()
    tokens = torch.randint(20, (3, 8), device=device)
    lengths = torch.tensor([8, 5, 8], device=device)
    tokens[1, 5:] = m.pad
    h = m.encode(tokens, lengths)
    changed = tokens.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % 20
    changed[1, 5:] = m.pad
    h2 = m.encode(changed, lengths)
    torch.testing.assert_close(h[:, :4], h2[:, :4])
    assert not torch.allclose(h[:, 4:], h2[:, 4:])
    assert torch.isfinite(h).all()
    # the bidirectional module does see later items (the check above can fail)
    b = SequenceModule(20, 8, 16, 2, 2, 16, 0.0, causal=False, tied=True).to(device).eval()
    assert not torch.allclose(b.encode(tokens, lengths)[:, :4], b.encode(changed, lengths)[:, :4])


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("causal", [True, False])
def test_training_attention_masks_exactly_as_the_fused_kernel(device, causal):
    """The materialised attention of training (seeded dropout) masks as the fused kernel does."""
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 2, 6, 4, device=device)
    real = torch.arange(6, device=device) < torch.tensor([[6], [3]], device=device)  # 6 and 3 real keys
    mask = None if causal else real[:, None, None, :]
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    nothing_dropped = _attention(q, k, v, mask, causal, 1e-12, torch.Generator(device).manual_seed(0))
    torch.testing.assert_close(nothing_dropped, fused)
    dropped = _attention(q, k, v, mask, causal, 0.5, torch.Generator(device).manual_seed(1))
    assert torch.isfinite(dropped).all() and not torch.allclose(dropped, fused)
    if causal:  # with dropout, later keys still never reach earlier queries
        k2, v2 = k.clone(), v.clone()
        k2[..., 3:, :] += 5
        v2[..., 3:, :] += 5
        again = _attention(q, k2, v2, None, True, 0.5, torch.Generator(device).manual_seed(1))
        torch.testing.assert_close(again[..., :3, :], dropped[..., :3, :])
        assert not torch.allclose(again[..., 3:, :], dropped[..., 3:, :])


@pytest.mark.parametrize("causal", [True, False])
def test_padding_never_changes_a_sequence_and_never_makes_nan(causal):
    torch.manual_seed(0)
    m = SequenceModule(20, 10, 16, 2, 2, 16, 0.0, causal=causal, tied=False).eval()
    seq = torch.tensor([[3, 7, 1]])
    alone = m.encode(seq, torch.tensor([3]))
    padded = torch.cat([seq, torch.full((1, 7), m.pad)], 1)
    batch = torch.cat([padded, torch.randint(20, (1, 10))])
    out = m.encode(batch, torch.tensor([3, 10]))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, :3], alone[0], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- learning
def test_learns_markov_sequences_far_above_popularity_and_order_blind(walks):
    _, hist, held = walks
    model = SequenceTransformer(**SMALL).fit(hist)
    ndcg = evaluate(model, hist, held, metrics=("ndcg@10",))["ndcg@10"]
    pop = evaluate(Popularity(damping=1.0).fit(hist), hist, held, metrics=("ndcg@10",))["ndcg@10"]
    blind = cooccurrence_ndcg(hist, held)
    assert ndcg > 3 * pop, (ndcg, pop)
    assert ndcg > blind + 0.2, (ndcg, blind)
    val = [h["val_loss"] for h in model.history_]
    assert model.best_iteration_ == int(np.argmin(val)) + 1 and model.best_score_ == pytest.approx(-min(val))
    assert model.score(hist, held) == pytest.approx(ndcg)


@pytest.mark.parametrize("params", [dict(objective="masked", max_iter=30), dict(loss="bce", max_iter=15),
                                    dict(loss="sampled", n_shared_negatives=10, max_iter=15)],
                         ids=["masked", "bce", "sampled"])
def test_objectives_and_losses_learn_the_order(walks, params):
    _, hist, held = walks
    model = SequenceTransformer(**dict(SMALL, **params)).fit(hist)
    assert evaluate(model, hist, held, metrics=("ndcg@10",))["ndcg@10"] > cooccurrence_ndcg(hist, held) + 0.15


def test_validation_holds_out_each_rows_last_item(walks):
    X, _, _ = walks
    # The split itself is the _validation_split hook of the training seam: nothing public returns it.
    model = SequenceTransformer(**dict(SMALL, max_iter=1))
    train, (val_hist, val_held) = model._validation_split(X, 0)
    _, last = holdout_split(X, 1, strategy="last")
    assert (val_held != last).nnz == 0  # every row has 12 items: every row validates
    assert (train + last != X).nnz == 0
    assert (val_hist != train).nnz == 0  # the history of a validation row is its training row
    train, (val_hist, val_held) = clone(model).set_params(validation_fraction=0.5)._validation_split(X, 0)
    assert 0.3 * X.shape[0] < val_held.shape[0] < 0.7 * X.shape[0]
    assert (np.diff(val_held.indptr) == 1).all()
    held_rows = np.flatnonzero(np.diff(train.indptr) == 11)  # the rows that lost their last item
    assert held_rows.size == val_held.shape[0]
    assert (val_held != last[held_rows]).nnz == 0 and (val_hist != train[held_rows]).nnz == 0
    kept = np.setdiff1d(np.arange(X.shape[0]), held_rows)
    assert (train[kept] != X[kept]).nnz == 0


def test_best_score_is_the_validation_ndcg_of_the_restored_model(walks):
    """With validation_fraction=1 the monitored split is each row's last item: best_score_ is
    the NDCG@10 that score() gives on it, for the best epoch's (restored) parameters."""
    _, hist, _ = walks
    model = SequenceTransformer(**dict(SMALL, max_iter=30, n_iter_no_change=2)).fit(hist)
    assert model.n_iter_ < 30 and model.best_iteration_ == model.n_iter_ - 2  # stopped: the best is restored
    val_hist, val_held = holdout_split(hist, 1, strategy="last")
    assert model.best_score_ == pytest.approx(model.score(val_hist, val_held), abs=1e-5)
    assert model.best_score_ == pytest.approx(-min(h["val_loss"] for h in model.history_))


def test_trainer_learns_from_rows_of_two_items_and_validates_by_ndcg(walks):
    """The trainer holds the sequences (the latest max_seq_len + 1 items of each row that has
    a next item to predict) and measures minus the NDCG@10 of the held-out items."""
    _, hist, held = walks
    model = SequenceTransformer(**dict(SMALL, max_seq_len=5, max_iter=2, early_stopping=False)).fit(hist)
    singles = sp.csr_matrix((np.ones(4), (np.arange(4), np.arange(4))), shape=(4, hist.shape[1]))
    X = sp.vstack([hist[:30], singles]).tocsr()
    # No public API builds a trainer: it is given the fitted module and the fit's spec (_spec).
    trainer = SequenceTrainer(model.module_, X, (hist[:30], held[:30]), None, make_generator(0, torch.device("cpu")),
                              model._spec, 64, optimizer="adam", learning_rate=0.01, batch_size=16, betas=ADAM_BETAS)
    assert trainer.n_samples == 30 and trainer.has_validation
    for r in range(30):
        row = X[r]
        want = row.indices[np.argsort(row.data, kind="stable")][-6:]
        np.testing.assert_array_equal(trainer.items[r, :6].numpy(), want)
    ndcg = evaluate(model, hist[:30], held[:30], metrics=("ndcg@10",))["ndcg@10"]
    assert trainer.validate() == pytest.approx(-ndcg, abs=1e-5)
    assert np.isfinite(trainer.train_epoch())


def test_sampled_softmax_shares_its_negatives_and_drops_those_equal_to_the_target(walks, monkeypatch):
    _, hist, _ = walks
    model = SequenceTransformer(**dict(SMALL, loss="sampled", n_shared_negatives=30, max_iter=1,
                                       early_stopping=False)).fit(hist)
    # No public API builds a trainer: it is given the fitted module and the fit's spec (_spec).
    trainer = SequenceTrainer(model.module_, hist, None, None, make_generator(0, torch.device("cpu")), model._spec,
                              64, optimizer="adam", learning_rate=0.01, batch_size=16)
    seen = {}
    original = _transformer.sampled_softmax_loss

    def recording(pos, neg, collide=None, valid=None):
        seen.update(neg=neg.detach().clone(), collide=collide.clone())
        return original(pos, neg, collide, valid)

    monkeypatch.setattr(_transformer, "sampled_softmax_loss", recording)  # the trainer's reference
    gen = torch.Generator().manual_seed(1)
    h = torch.randn(200, 32, generator=gen)
    target = torch.randint(40, (200,), generator=gen)
    valid = torch.rand(200, generator=gen) < 0.8
    with torch.no_grad():
        loss = float(trainer._item_loss(h, target, valid))
        W = model.module_.output_weights().float()
        all_logits = (h @ W.T).numpy()  # [200, n_items]
    neg = seen["neg"].numpy()
    assert neg.shape == (200, 30)  # one set of 30 negatives for the whole batch
    # Which item each shared negative is: the column of all_logits it equals.
    ids = np.array([np.abs(all_logits - neg[:, [k]]).sum(0).argmin() for k in range(30)])
    np.testing.assert_allclose(neg, all_logits[:, ids], rtol=1e-5, atol=1e-5)
    t, v = target.numpy(), valid.numpy()
    collide = ids[None, :] == t[:, None]
    np.testing.assert_array_equal(seen["collide"].numpy()[v], collide[v])  # padding rows do not count
    assert collide[v].any()  # 30 draws from 40 items: the removal is exercised
    pos = all_logits[np.arange(200), t]
    per = [np.logaddexp(pos[r], np.logaddexp.reduce(neg[r][~collide[r]])) - pos[r] if (~collide[r]).any() else 0.0
           for r in range(200)]
    assert loss == pytest.approx(np.mean(np.asarray(per)[v]), rel=1e-4)


def test_bce_negatives_are_never_the_target(monkeypatch):
    """SASRec's one negative per position is drawn among the other items: its logit is never the
    target's (on a 4-item catalogue a plain uniform draw would hit the target a quarter of the time)."""
    X = markov(n_users=60, n_items=4, length=4, seed=4)
    seen = []
    original = _transformer.bce_loss

    def recording(pos, neg, valid=None):
        seen.append((pos.detach().clone(), neg.detach().clone(), valid.clone()))
        return original(pos, neg, valid)

    monkeypatch.setattr(_transformer, "bce_loss", recording)  # the trainer's reference to the loss
    SequenceTransformer(**dict(SMALL, loss="bce", max_iter=2, early_stopping=False, dropout=0.0)).fit(X)
    pos = torch.cat([p[v] for p, _, v in seen])
    neg = torch.cat([n[v] for _, n, v in seen])
    assert pos.numel() == 2 * 60 * 3  # every next item of every epoch
    assert not (pos == neg).any()


def test_score_without_y_holds_out_the_last_item(walks):
    X, _, _ = walks
    model = SequenceTransformer(**dict(SMALL, max_iter=3)).fit(X)
    assert model.score(X) == pytest.approx(model.score(*holdout_split(X, 1, strategy="last")))
    assert model.transform(X[:5]).shape == (5, 32)


def test_rating_head_learns_item_ratings():
    X = markov(n_users=200, n_items=20, length=8, seed=2)
    R = X.copy()
    R.data = 1.0 + (R.indices % 5)  # each item has its own rating
    model = SequenceTransformer(**dict(SMALL, max_iter=30, early_stopping=False)).fit(X, ratings=R)
    pred = model.predict_rating(X[:50])
    truth = 1.0 + np.arange(20) % 5
    assert np.corrcoef(pred.mean(0), truth)[0, 1] > 0.9
    plain = SequenceTransformer(**dict(SMALL, max_iter=1, early_stopping=False)).fit(X)
    with pytest.raises(ValueError, match="predict_rating needs a model fitted with ratings"):
        plain.predict_rating(X)


def test_ratings_align_with_x_plus_y(walks):
    X, hist, held = walks
    R = X.copy()
    R.data[:] = 3.0
    model = SequenceTransformer(**dict(SMALL, max_iter=1, early_stopping=False))
    model.fit(hist, held, ratings=R)
    assert model.predict_rating(hist[:2]).shape == (2, X.shape[1])
    with pytest.raises(ValueError, match="ratings must be a matrix with a stored rating at exactly"):
        clone(model).fit(hist, ratings=R)
    # the held-out side wrapped for sklearn's tools aligns the same way
    from skrec.model_selection import HeldOut

    wrapped = clone(model).set_params(random_state=0).fit(hist, HeldOut(held), ratings=R)
    plain = clone(model).set_params(random_state=0).fit(hist, held, ratings=R)
    np.testing.assert_array_equal(wrapped.predict_rating(hist[:2]), plain.predict_rating(hist[:2]))


def test_grid_search_slices_the_ratings_with_the_rows():
    from sklearn.model_selection import GridSearchCV, KFold

    X = markov(n_users=60, n_items=15, length=6, seed=3)
    R = X.copy()
    R.data = 1.0 + R.indices % 5
    hist, held = holdout_split(X, 1, strategy="last")
    est = SequenceTransformer(n_factors=8, max_iter=2, early_stopping=False, device="cpu", random_state=0)
    search = GridSearchCV(est, {"dropout": [0.0, 0.1]}, cv=KFold(3)).fit(hist, held, ratings=R)
    assert search.best_estimator_.predict_rating(hist[:3]).shape == (3, 15)


def test_warm_start_continues_training(walks):
    _, hist, _ = walks
    model = SequenceTransformer(**dict(SMALL, max_iter=2, early_stopping=False)).fit(hist)
    before = model.predict(hist[:3])
    model.set_params(warm_start=True, max_iter=3).fit(hist)
    assert len(model.history_) == 5 and model.n_iter_ == 5
    assert not np.allclose(model.predict(hist[:3]), before)


# ---------------------------------------------------------------- errors
def test_bad_parameters_and_data_are_named():
    X = markov(n_users=20, n_items=10, length=4)
    with pytest.raises(ValueError, match="n_heads must be a divisor of n_factors=8; got 3."):
        SequenceTransformer(n_factors=8, n_heads=3).fit(X)
    with pytest.raises(ValueError, match="objective must be one of 'causal', 'masked'; got 'bert'."):
        SequenceTransformer(objective="bert").fit(X)
    single = sp.csr_matrix(np.eye(5))
    with pytest.raises(ValueError, match="X must be a matrix with rows of at least 2 interactions"):
        SequenceTransformer(n_factors=8, max_iter=1).fit(single)
    with pytest.raises(ValueError, match="X must be a matrix with at least one row of 2 or more"):
        SequenceTransformer(n_factors=8, max_iter=1, early_stopping=False).fit(single)


# ---------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.parametrize("objective", ["causal", "masked"])
def test_cuda_training_is_finite_and_learns(walks, objective):
    _, hist, held = walks
    model = SequenceTransformer(**dict(SMALL, device="cuda", objective=objective)).fit(hist)
    assert all(np.isfinite(h["loss"]) for h in model.history_)
    ndcg = evaluate(model, hist, held, metrics=("ndcg@10",))["ndcg@10"]
    assert ndcg > cooccurrence_ndcg(hist, held) + 0.15
    cpu = SequenceTransformer(**dict(SMALL, objective=objective)).fit(hist)
    assert abs(ndcg - evaluate(cpu, hist, held, metrics=("ndcg@10",))["ndcg@10"]) < 0.1
