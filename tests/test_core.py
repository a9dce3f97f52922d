"""The shared core: top-k, device CSR, samplers, the training loop and pickling."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skrec import BaselineBiases
from skrec._torch import DeviceCSR, resolve_device, topk_items
from skrec._torch.training import lr_factor
from skrec.sampling import gather_rows, index_batches, sample_negatives

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


@pytest.mark.parametrize("seed", range(25))
def test_topk_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n_rows, n_items = rng.integers(1, 8), rng.integers(2, 30)
    scores = rng.integers(0, 4, size=(n_rows, n_items)).astype(np.float32)  # many ties
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


def test_device_csr_slices_and_gathers():
    X = sp.random(9, 7, density=0.4, format="csr", random_state=1)
    D = DeviceCSR.from_scipy(X, CPU)
    np.testing.assert_allclose(D.slice_rows(2, 6).to_dense().numpy(), X[2:6].toarray(), rtol=1e-6)
    rows = torch.tensor([8, 0, 3, 3])
    np.testing.assert_allclose(gather_rows(D, rows).numpy(), X[[8, 0, 3, 3]].toarray(), rtol=1e-6)
    np.testing.assert_allclose(D.row_sum(D.values).numpy(), np.asarray(X.sum(1)).ravel(), rtol=1e-6)


def test_index_batches_cover_everything_once():
    g = torch.Generator().manual_seed(3)
    batches = index_batches(103, 10, g)
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert sorted(torch.cat(batches).tolist()) == list(range(103))


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


def test_lr_schedules_shape():
    cos = [lr_factor("cosine", s, 10) for s in range(20)]
    assert cos[0] == 1.0 and cos[10] == 1.0 and min(cos) >= 0.1 and cos[9] < cos[1]
    tri = [lr_factor("triangular", s, 10) for s in range(10)]
    assert tri[0] == pytest.approx(0.1) and max(tri) == 1.0 and tri[5] == 1.0
    assert lr_factor(None, 7, 10) == 1.0


def test_resolve_device():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(torch.device("cpu")) == CPU


# ----------------------------------------------------------------- training loop
def ratings(seed=0, n_users=80, n_items=30):
    rng = np.random.default_rng(seed)
    bu, bi = rng.normal(0, 0.5, n_users), rng.normal(0, 0.8, n_items)
    X = sp.random(n_users, n_items, density=0.4, format="coo", random_state=seed)
    vals = np.clip(np.round(3.5 + bu[X.row] + bi[X.col] + rng.normal(0, 0.3, X.nnz)), 1, 5)
    return sp.csr_matrix((vals, (X.row, X.col)), shape=X.shape)


def adam(**kw):
    params = dict(solver="adam", learning_rate=0.05, batch_size=64, max_iter=60, alpha=1.0, random_state=0,
                  device="cpu")
    params.update(kw)
    return BaselineBiases(**params)


def test_early_stopping_restores_the_best_epoch():
    model = adam(early_stopping=True, n_iter_no_change=3, learning_rate=0.3, max_iter=200).fit(ratings())
    val = [h["val_loss"] for h in model.history_]
    assert model.n_iter_ == len(val) < 200, "training must stop early"
    best = int(np.argmin(val))
    assert model.best_iteration_ == best + 1
    assert model.n_iter_ - model.best_iteration_ >= 3
    # the restored parameters reproduce the best validation loss, not the last one
    X = ratings()
    Xtr, Xval = model._validation_split(X, model._seed)
    data = model._training_data(Xval)
    with torch.no_grad():
        again = float(model._validation_loss(data, torch.Generator().manual_seed(0)))
    assert again == pytest.approx(val[best], rel=1e-5)


def test_history_and_schedules_are_recorded():
    model = adam(max_iter=4, lr_schedule="cosine", lr_cycle=1, tol=0.0, n_iter_no_change=10).fit(ratings())
    assert [h["epoch"] for h in model.history_] == [1, 2, 3, 4]
    assert all({"loss", "lr", "time"} <= set(h) for h in model.history_)
    assert all(h["time"] > 0 for h in model.history_)
    assert model.history_[0]["lr"] < 0.05  # annealed within the epoch


def test_warm_start_continues_training():
    X = ratings()
    cold = adam(max_iter=3, tol=0.0).fit(X)
    warm = adam(max_iter=3, tol=0.0, warm_start=True).fit(X)
    first = warm.item_bias_
    warm.fit(X)
    assert len(warm.history_) == 6 and warm.n_iter_ == 6
    assert [h["epoch"] for h in warm.history_] == list(range(1, 7))
    assert not np.allclose(warm.item_bias_, first)
    assert warm.history_[-1]["loss"] < cold.history_[-1]["loss"]


def test_checkpoints_are_resumable(tmp_path):
    X = ratings()
    path = str(tmp_path / "ckpt-{epoch}.joblib")
    adam(max_iter=4, tol=0.0, checkpoint_every=2, checkpoint_path=path).fit(X)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-2.joblib", "ckpt-4.joblib"]
    snap = joblib.load(tmp_path / "ckpt-2.joblib")
    assert snap.n_iter_ == 2 and snap.predict(X).shape == X.shape
    snap.set_params(warm_start=True, max_iter=1).fit(X)
    assert snap.n_iter_ == 3


def test_ctrl_c_keeps_the_best_model(monkeypatch):
    X = ratings()
    model = adam(max_iter=50, early_stopping=True, tol=0.0, n_iter_no_change=100)
    calls = {"n": 0}
    original = BaselineBiases._loss

    def interrupting(self, data, idx, generator):
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt
        return original(self, data, idx, generator)

    monkeypatch.setattr(BaselineBiases, "_loss", interrupting)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        model.fit(X)
    assert model.n_iter_ >= 1 and model.n_iter_ < 50
    assert np.isfinite(model.predict(X)).all()


def test_verbose_shows_progress(capsys):
    adam(max_iter=2, verbose=1).fit(ratings())
    err = capsys.readouterr().err
    assert "BaselineBiases" in err and "loss" in err
    adam(max_iter=2, verbose=0).fit(ratings())
    assert capsys.readouterr().err == ""


def test_unpickles_on_cpu_and_drops_the_optimizer():
    model = adam(max_iter=2).fit(ratings())
    state = model.__getstate__()
    assert "_optimizer" not in state and state["device_"] == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(model))


@pytest.mark.cuda
def test_cuda_fit_matches_cpu_and_unpickles_to_cpu(monkeypatch):
    X = ratings()
    cpu = BaselineBiases(device="cpu").fit(X)
    gpu = BaselineBiases(device="cuda").fit(X)
    assert gpu.device_.type == "cuda"
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(gpu.recommend(X, k=5)[0], cpu.recommend(X, k=5)[0])
    blob = pickle.dumps(gpu)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="loaded on the CPU"):
        restored = pickle.loads(blob)
    assert restored.device_.type == "cpu"
    np.testing.assert_allclose(restored.predict(X), cpu.predict(X), rtol=1e-4, atol=1e-4)
    adam_gpu = adam(device="cuda", max_iter=5).fit(X)
    adam_cpu = adam(device="cpu", max_iter=5).fit(X)
    assert np.isfinite(adam_gpu.predict(X)).all()
    assert abs(adam_gpu.history_[-1]["loss"] - adam_cpu.history_[-1]["loss"]) < 0.1


# ------------------------------------------------ warm starts and failed fits (review findings)
def test_warm_fits_restart_the_schedule_from_the_current_learning_rate():
    X = ratings()
    m = adam(learning_rate=0.1, max_iter=3, lr_schedule="cosine", lr_cycle=1, tol=0.0, n_iter_no_change=9).fit(X)
    first = [h["lr"] for h in m.history_]
    m.set_params(warm_start=True).fit(X)
    assert [h["lr"] for h in m.history_[3:]] == pytest.approx(first)
    m.set_params(lr_schedule=None, learning_rate=0.5).fit(X)
    assert m.history_[-1]["lr"] == 0.5


def test_warm_gradient_fit_after_a_closed_form_refit_trains_the_new_module():
    X = ratings()
    m = adam(max_iter=2).fit(X)
    m.set_params(solver="als").fit(X)
    before = m.item_bias_
    m.set_params(solver="adam", warm_start=True, learning_rate=0.5, max_iter=3).fit(X)
    assert not np.allclose(before, m.item_bias_)


def test_warm_fit_needs_the_same_shape():
    X = ratings()
    m = BaselineBiases(warm_start=True, device="cpu").fit(X[:10])
    with pytest.raises(ValueError, match=r"^X must be a matrix of shape \(10, 30\)"):
        m.fit(X)


def test_a_failed_fit_leaves_no_half_fitted_model():
    from sklearn.exceptions import NotFittedError

    from skrec._torch import TrainingDiverged

    X = ratings()
    m = adam(max_iter=2).fit(X)
    huge = X.copy()
    huge.data = huge.data * 1e30
    with pytest.raises(TrainingDiverged):
        m.set_params(solver="sgd", learning_rate=1e6).fit(huge)
    with pytest.raises(NotFittedError):
        m.predict(X)


def test_warm_fits_keep_the_same_validation_interactions(monkeypatch):
    X = ratings()
    seen = []
    original = BaselineBiases._validation_split

    def spy(self, X_, seed):
        parts = original(self, X_, seed)
        seen.append(parts[1])
        return parts

    monkeypatch.setattr(BaselineBiases, "_validation_split", spy)
    m = adam(max_iter=2, early_stopping=True, validation_fraction=0.3).fit(X)
    m.set_params(warm_start=True).fit(X)
    assert (seen[0] != seen[1]).nnz == 0


def test_warm_fit_widens_the_rating_range_and_set_params_does_not_change_a_fitted_model():
    X = ratings()
    m = BaselineBiases(alpha=1.0, warm_start=True, device="cpu").fit(X)
    before = m.predict(X)
    m.set_params(alpha=100.0, clip=False)
    np.testing.assert_array_equal(m.predict(X), before)
    m.set_params(clip=True).fit(X * 2)
    assert m.rating_range_ == (1.0, 10.0)
    assert m.predict(X * 2).max() > 5.0


def test_topk_never_recommends_nan_scores():
    ids, top = topk_items(torch.tensor([[np.nan, 2.0, 1.0, 0.0]]), 2)
    assert ids.tolist() == [[1, 2]]
