"""skrec.base: the estimator contract every model keeps (fit, warm starts, pickling, history).

Most checks run on :class:`skrec.BaselineBiases` with the gradient solver, the smallest model
that uses every part of the loop; the contract checks run on every registered estimator.
"""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import planted_groups, planted_ratings
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from skrec import BaselineBiases, BPRRanker, MFRegressor
from skrec._torch import TrainingDiverged
from skrec.base import all_estimators

CASES = [est for cls in all_estimators() for est in cls._test_instances()]
IDS = [f"{type(e).__name__}-{i}" for i, e in enumerate(CASES)]
HISTORY_KEYS = ("epoch", "loss", "val_loss", "lr", "time")


def gradient(**kw):
    params = dict(solver="gradient", optimizer="adam", learning_rate=0.05, batch_size=64, max_iter=60,
                  damping=1.0, random_state=0, device="cpu")
    params.update(kw)
    return BaselineBiases(**params)


def on_cpu(est):
    params = {k: v for k, v in (("random_state", 0), ("device", "cpu")) if k in est.get_params()}
    return clone(est).set_params(**params)


def diverging(X):
    """Ratings so large that a huge SGD step overflows on the first batch."""
    huge = X.copy()
    huge.data = huge.data * 1e30
    return huge


def tensors_in(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from tensors_in(v)


@pytest.fixture(scope="module")
def groups():
    return planted_groups()


# ------------------------------------------------------------------ the history contract
@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_history_records_and_best_score_of_every_estimator(est, groups):
    model = on_cpu(est).fit(groups)
    history = model.history_
    assert history and all(sorted(h) == sorted(HISTORY_KEYS) for h in history)
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1)) and model.n_iter_ == len(history)
    for h in history:
        assert h["loss"] is None or np.isfinite(h["loss"])
        assert h["lr"] is None or h["lr"] > 0
        assert isinstance(h["time"], float) and h["time"] >= 0
    validating = any(h["val_loss"] is not None for h in history)
    monitor = "val_loss" if validating else "loss"
    values = [h[monitor] for h in history if h[monitor] is not None]
    if values:
        assert model.best_score_ == pytest.approx(-min(values))
        assert history[model.best_iteration_ - 1][monitor] == min(values)
    else:  # a closed-form solve with nothing to monitor
        assert model.best_score_ is None and model.best_iteration_ is None


def test_early_stopping_best_score_is_minus_the_best_validation_loss():
    model = gradient(early_stopping=True, n_iter_no_change=3, learning_rate=0.3, max_iter=200).fit(planted_ratings())
    val = [h["val_loss"] for h in model.history_]
    assert model.n_iter_ < 200, "training must stop early"
    assert model.best_score_ == -min(val) and model.best_iteration_ == int(np.argmin(val)) + 1


# ------------------------------------------------------------------ set_params after fit
def changed(name, value, specs):
    """Another value of a hyper-parameter (``None`` when no simple change exists)."""
    options = specs.get(name, {}).get("options")
    if isinstance(value, str) and options:
        return next(o for o in options if o != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 3
    if isinstance(value, float):
        return value * 3 + 0.5
    if isinstance(value, tuple) and value and all(isinstance(v, (int, float)) for v in value):
        return tuple(v * 3 + 1 for v in value)
    return None


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_set_params_after_fit_does_not_change_the_fitted_model(est, groups):
    model = on_cpu(est).fit(groups)
    scores, (ids, _) = model.predict(groups), model.recommend(groups, k=5)
    vectors = model.transform(groups) if hasattr(model, "transform") else None
    specs = model._param_specs
    new = {k: changed(k, v, specs) for k, v in model.get_params(deep=False).items()
           if k not in ("device", "random_state", "verbose")}
    new = {k: v for k, v in new.items() if v is not None}
    assert new or type(model).__name__ == "ResidualRegressor"
    model.set_params(**new)
    np.testing.assert_array_equal(model.predict(groups), scores)
    np.testing.assert_array_equal(model.recommend(groups, k=5)[0], ids)
    if vectors is not None:
        np.testing.assert_array_equal(model.transform(groups), vectors)


# ------------------------------------------------------------------ failed fits
def test_a_failed_fit_leaves_no_half_fitted_model():
    X = planted_ratings()
    m = gradient(max_iter=2).fit(X)
    with pytest.raises(TrainingDiverged):
        m.set_params(optimizer="sgd", learning_rate=1e6).fit(diverging(X))
    with pytest.raises(NotFittedError):
        m.predict(X)
    assert set(vars(m)) == set(m.get_params(deep=False)), "only the constructor parameters are left"
    fresh = gradient(optimizer="sgd", learning_rate=1e6)
    with pytest.raises(TrainingDiverged):
        fresh.fit(diverging(X))
    assert set(vars(fresh)) == set(fresh.get_params(deep=False))


def test_a_failed_warm_fit_leaves_the_model_of_the_last_fit():
    X = planted_ratings()
    m = gradient(max_iter=3, warm_start=True).fit(X)
    scores, history, bias = m.predict(X), list(m.history_), m.item_bias_
    m.set_params(optimizer="sgd", learning_rate=1e6, clip=False)
    with pytest.raises(TrainingDiverged):
        m.fit(diverging(X))
    assert m.history_ == history and m.n_iter_ == 3
    np.testing.assert_array_equal(m.item_bias_, bias)
    np.testing.assert_array_equal(m.predict(X), scores)  # parameters, clip of the fit and range unchanged
    m.set_params(optimizer="adam", learning_rate=0.05).fit(X)  # and training continues from there
    assert m.n_iter_ == 6 and np.isfinite(m.predict(X)).all()


def test_ctrl_c_keeps_a_usable_model(monkeypatch):
    from skrec.baseline import _biases

    X = planted_ratings()
    calls = {"n": 0}
    original = _biases.BiasGradientTrainer.train_epoch

    def interrupting(self):  # Ctrl-C arrives during the third epoch (no public hook exists)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(_biases.BiasGradientTrainer, "train_epoch", interrupting)
    model = gradient(max_iter=50, early_stopping=True, tol=0.0, n_iter_no_change=100)
    with pytest.warns(RuntimeWarning, match="interrupted after 2 epochs"):
        model.fit(X)
    assert model.n_iter_ == 2 and model.best_iteration_ in (1, 2)
    assert np.isfinite(model.predict(X)).all()


# ------------------------------------------------------------------ warm starts
def test_warm_start_continues_training():
    X = planted_ratings()
    cold = gradient(max_iter=3, tol=0.0).fit(X)
    warm = gradient(max_iter=3, tol=0.0, warm_start=True).fit(X)
    first, steps = warm.item_bias_, warm.n_steps_
    warm.fit(X)
    assert len(warm.history_) == 6 and warm.n_iter_ == 6 and warm.n_steps_ == 2 * steps
    assert [h["epoch"] for h in warm.history_] == list(range(1, 7))
    assert not np.allclose(warm.item_bias_, first)
    assert warm.history_[-1]["loss"] < cold.history_[-1]["loss"]


def test_a_warm_fit_on_another_device_moves_the_fitted_state_there(monkeypatch):
    """Resumed where ``device`` now points (a CPU checkpoint on a GPU box, or set_params(device=...)):
    every fitted tensor and module is sent to the new device before training continues, the
    optimizer state is left to load_state_dict. Simulated here: the model claims to have been
    fitted on cuda:0, and the move is recorded."""
    from skrec import MFRegressor, base as base_module

    X = planted_ratings()
    model = MFRegressor(n_factors=2, max_iter=1, device="cpu", warm_start=True).fit(X)
    model.device_ = torch.device("cuda", 0)
    moved, real = [], base_module._tree_to
    monkeypatch.setattr(base_module, "_tree_to", lambda v, d: moved.append((type(v), str(d))) or real(v, d))
    model.fit(X)
    assert model.n_iter_ == 2 and model.device_ == torch.device("cpu")
    modules = [d for t, d in moved if issubclass(t, torch.nn.Module)]
    assert modules == ["cpu"]  # module_ went to the new device once
    assert {d for _, d in moved} == {"cpu"}
    moved.clear()
    model.fit(X)  # same device as the last fit: the module is not copied
    assert not [t for t, _ in moved if issubclass(t, torch.nn.Module)]


def test_a_warm_start_continues_with_the_optimizer_state():
    # Full batch (every rating in one batch): an epoch is deterministic, so 2 + 2 warm epochs
    # equal 4 epochs in one fit only if Adam's moments are carried over.
    X = planted_ratings()
    straight = gradient(batch_size=65536, max_iter=4, learning_rate=0.1).fit(X)
    split = gradient(batch_size=65536, max_iter=2, learning_rate=0.1, warm_start=True).fit(X).fit(X)
    np.testing.assert_allclose(split.item_bias_, straight.item_bias_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose([h["loss"] for h in split.history_], [h["loss"] for h in straight.history_],
                               rtol=1e-5)
    # a warm fit with another optimizer starts that optimizer afresh (and still trains)
    before = split.item_bias_
    split.set_params(optimizer="sgd").fit(X)
    assert split.n_iter_ == 6 and not np.allclose(split.item_bias_, before)


def test_warm_fits_continue_the_schedule_from_the_current_step():
    X = planted_ratings()
    m = gradient(learning_rate=0.1, max_iter=3, lr_schedule="cosine", lr_cycle=1, tol=0.0, n_iter_no_change=9).fit(X)
    first = [h["lr"] for h in m.history_]
    m.set_params(warm_start=True).fit(X)
    assert [h["lr"] for h in m.history_[3:]] == pytest.approx(first)  # whole cycles: the same rates
    m.set_params(lr_schedule=None, learning_rate=0.5).fit(X)
    assert m.history_[-1]["lr"] == 0.5


def test_warm_gradient_fit_after_a_closed_form_refit_trains_the_new_module():
    X = planted_ratings()
    m = gradient(max_iter=2).fit(X)
    m.set_params(solver="als").fit(X)
    before = m.item_bias_
    m.set_params(solver="gradient", warm_start=True, learning_rate=0.5, max_iter=3).fit(X)
    assert not np.allclose(before, m.item_bias_)


def test_warm_fit_needs_the_same_shape():
    X = planted_ratings()
    m = BaselineBiases(warm_start=True, device="cpu").fit(X[:10])
    with pytest.raises(ValueError, match=r"^X must be a matrix of shape \(10, 30\)"):
        m.fit(X)


def test_warm_fits_keep_the_same_validation_interactions(monkeypatch):
    X = planted_ratings()
    seen = []
    original = BaselineBiases._validation_split

    def spy(self, X_, seed):  # the split is not exposed: watch the hook that draws it
        parts = original(self, X_, seed)
        seen.append(parts[1])
        return parts

    monkeypatch.setattr(BaselineBiases, "_validation_split", spy)
    m = gradient(max_iter=2, early_stopping=True, validation_fraction=0.3).fit(X)
    m.set_params(warm_start=True).fit(X)
    assert len(seen) == 2 and (seen[0] != seen[1]).nnz == 0


# ------------------------------------------------------------------ checkpoints and progress
def test_checkpoints_are_written_and_resume_with_the_optimizer_state(tmp_path):
    X = planted_ratings()
    path = str(tmp_path / "ckpt-{epoch}.joblib")
    full = gradient(batch_size=65536, max_iter=4, learning_rate=0.1, checkpoint_every=2, checkpoint_path=path).fit(X)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-2.joblib", "ckpt-4.joblib"]
    snap = joblib.load(tmp_path / "ckpt-2.joblib")
    assert snap.n_iter_ == 2 and [h["epoch"] for h in snap.history_] == [1, 2]
    assert snap.predict(X).shape == X.shape
    last = joblib.load(tmp_path / "ckpt-4.joblib")
    np.testing.assert_array_equal(last.predict(X), full.predict(X))
    # Resuming the epoch-2 snapshot reproduces the uninterrupted run (full batch: deterministic).
    snap.set_params(warm_start=True, max_iter=2, checkpoint_every=0).fit(X)
    assert snap.n_iter_ == 4
    np.testing.assert_allclose(snap.item_bias_, full.item_bias_, rtol=1e-4, atol=1e-6)


def test_verbose_shows_progress(capsys):
    gradient(max_iter=2, verbose=1).fit(planted_ratings())
    err = capsys.readouterr().err
    assert "BaselineBiases" in err and "loss" in err
    gradient(max_iter=2, verbose=0).fit(planted_ratings())
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ pickling and devices
def test_pickle_state_is_on_the_cpu_and_keeps_the_optimizer_state():
    X = planted_ratings()
    model = gradient(max_iter=2, warm_start=True).fit(X)
    state = model.__getstate__()
    assert state["device_"] == "cpu"
    assert not any(isinstance(v, (torch.optim.Optimizer, torch.Generator)) for v in state.values())
    # The warm-start optimizer state has no public accessor: it is ``(optimizer name, state dict)``.
    name, opt_state = state["_optimizer_state"]
    assert name == "adam" and opt_state["state"]
    assert all(t.device.type == "cpu" for t in tensors_in(opt_state))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    # a restored model continues exactly as the original does
    np.testing.assert_array_equal(restored.fit(X).predict(X), model.fit(X).predict(X))
    assert restored.n_iter_ == 4


def test_a_model_saved_on_a_missing_cuda_device_loads_on_the_cpu(monkeypatch):
    X = planted_ratings()
    model = gradient(max_iter=2).fit(X)
    expected = model.predict(X)
    model.device_ = torch.device("cuda")  # as if fitted there: the pickle names the device
    blob = pickle.dumps(model)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="loaded on the CPU"):
        restored = pickle.loads(blob)
    assert restored.device_ == torch.device("cpu")
    np.testing.assert_array_equal(restored.predict(X), expected)


def test_pickling_does_not_move_the_fitted_model():
    X = planted_ratings()
    model = gradient(max_iter=2).fit(X)
    module = model.module_
    pickle.dumps(model)
    assert model.module_ is module and model.device_ == torch.device("cpu")


def test_fit_with_y_trains_on_the_union():
    X = planted_ratings()
    coo = X.tocoo()
    held = np.arange(coo.nnz) % 4 == 0
    part = lambda m: sp.csr_matrix((coo.data[m], (coo.row[m], coo.col[m])), shape=X.shape)  # noqa: E731
    a = BaselineBiases(device="cpu").fit(X)
    b = BaselineBiases(device="cpu").fit(part(~held), part(held))
    np.testing.assert_allclose(a.item_bias_, b.item_bias_, rtol=1e-5, atol=1e-6)


@pytest.mark.cuda
def test_cuda_fit_matches_cpu_and_unpickles_to_cpu(monkeypatch):
    X = planted_ratings()
    cpu = BaselineBiases(device="cpu").fit(X)
    gpu = BaselineBiases(device="cuda").fit(X)
    assert gpu.device_.type == "cuda"
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(gpu.recommend(X, k=5)[0], cpu.recommend(X, k=5)[0])
    warm = gradient(device="cuda", max_iter=3, warm_start=True).fit(X)
    blob = pickle.dumps(warm)
    restored = pickle.loads(blob)
    assert restored.device_.type == "cuda"
    restored.fit(X)  # a warm fit continues from the unpickled optimizer state on the device
    assert restored.n_iter_ == 6 and np.isfinite(restored.predict(X)).all()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="loaded on the CPU"):
        on_host = pickle.loads(pickle.dumps(gpu))
    assert on_host.device_.type == "cpu"
    np.testing.assert_allclose(on_host.predict(X), cpu.predict(X), rtol=1e-4, atol=1e-4)
    grad_gpu = gradient(device="cuda", max_iter=5).fit(X)
    grad_cpu = gradient(device="cpu", max_iter=5).fit(X)
    assert np.isfinite(grad_gpu.predict(X)).all()
    assert abs(grad_gpu.history_[-1]["loss"] - grad_cpu.history_[-1]["loss"]) < 0.1


@pytest.mark.parametrize("make, change", [
    (lambda: MFRegressor(n_factors=4, max_iter=2, batch_size=64), {"n_factors": 6}),
    (lambda: BPRRanker(n_factors=4, max_iter=2, batch_size=64, fold_in_steps=2), {"optimizer": "sparse_adam"}),
])
def test_a_warm_fit_refuses_a_new_architecture_and_keeps_the_model(make, change):
    X = planted_ratings()
    model = make().set_params(device="cpu", random_state=0, warm_start=True).fit(X)
    before = model.predict(X[:5])
    with pytest.raises(ValueError, match=r"^warm_start must be False when the architecture changes \("):
        model.set_params(**change).fit(X)
    np.testing.assert_array_equal(model.predict(X[:5]), before)
