"""The conformance suite: every registered estimator, every configuration it registers.

A new model joins by decorating its class with ``skrec.base.register`` and listing small
configurations in ``_test_instances``.
"""

import io
import pickle

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Binarizer, FunctionTransformer

from skrec.base import all_estimators
from skrec.metrics import get_scorer
from skrec.model_selection import holdout_split

from conftest import planted_groups as planted

CASES = [est for cls in all_estimators() for est in cls._test_instances()]
IDS = [f"{type(e).__name__}-{i}" for i, e in enumerate(CASES)]


@pytest.fixture(scope="module")
def data():
    X = planted()
    X_hist, y = holdout_split(X, 0.25, random_state=0)
    return X, X_hist, y


# Every test that fits runs once per device: the CUDA run is skipped where CUDA is absent.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "cuda":
        # Bit-reproducible CUDA kernels (index_add_, scatter, cuBLAS with the workspace set in
        # conftest), as a user asks for them; the CPU kernels are deterministic already.
        torch.use_deterministic_algorithms(True)
        yield "cuda"
        torch.use_deterministic_algorithms(False)
    else:
        yield request.param


def on_device(est, device):
    """A clone on ``device``, seeded where the estimator draws anything."""
    params = {k: v for k, v in (("random_state", 0), ("device", device)) if k in est.get_params()}
    return clone(est).set_params(**params)


def fitted(est, X, device):
    return on_device(est, device).fit(X)


FOLD_IN = [(e, i) for e, i in zip(CASES, IDS) if e._fold_in_reproduces_learned()]


def scoring_for(est):
    return "neg_rmse" if est._kind == "regressor" else "ndcg@5"


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_clone_and_params(est):
    params = est.get_params()
    twin = clone(est)

    def plain(p):  # nested estimators (composites) compare by type and parameters, not identity
        return {k: (type(v), v.get_params()) if hasattr(v, "get_params") else v for k, v in p.items()}

    assert plain(twin.get_params()) == plain(params)
    assert twin is not est
    key = next(iter(params))
    assert est.set_params(**{key: params[key]}) is est
    assert not any(k.endswith("_") for k in vars(twin)), "__init__ must not set fitted state"


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_shapes_dtypes_and_contract(est, data, device):
    X, X_hist, y = data
    model = fitted(est, X_hist, device)
    assert model.n_items_ == X.shape[1]
    P = model.predict(X_hist[:7])
    assert P.shape == (7, X.shape[1]) and P.dtype == np.float32 and np.isfinite(P).all()
    ids, scores = model.recommend(X_hist[:7], k=5)
    assert ids.shape == scores.shape == (7, 5)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert np.all(np.diff(scores, axis=1) <= 0), "recommendations must be sorted best first"
    for r in range(7):
        assert not set(ids[r]) & set(X_hist[r].indices), "seen items must be excluded"
        # the scores are the model's own predictions for those items
        np.testing.assert_allclose(scores[r], P[r, ids[r]], rtol=1e-5, atol=1e-5)
    allowed = np.arange(0, X.shape[1], 3)
    ids_allowed, _ = model.recommend(X_hist[:7], k=4, items=allowed)
    assert np.isin(ids_allowed, allowed).all()
    ids_seen, _ = model.recommend(X_hist[:7], k=X.shape[1], exclude_seen=False)
    assert (np.sort(ids_seen, axis=1) == np.arange(X.shape[1])).all()
    if hasattr(model, "transform"):
        Z = model.transform(X_hist[:7])
        assert Z.ndim == 2 and Z.shape[0] == 7 and Z.dtype == np.float32
    s = model.score(X_hist, y)
    assert isinstance(s, float) and np.isfinite(s)
    assert isinstance(model.score(X), float)


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_rows_are_independent_of_the_batch(est, data, device):
    """Fold-in of a training row does not depend on which other rows are passed with it."""
    _, X_hist, _ = data
    model = fitted(est, X_hist, device)
    whole = model.predict(X_hist)
    one_by_one = np.vstack([model.predict(X_hist[r]) for r in range(0, X_hist.shape[0], 9)])
    np.testing.assert_allclose(whole[::9], one_by_one, rtol=1e-5, atol=1e-5)
    model._inference_elements = X_hist.shape[1] * 4  # force several inference batches
    np.testing.assert_allclose(model.predict(X_hist), whole, rtol=1e-5, atol=1e-5)
    ids_small, _ = model.recommend(X_hist, k=5)
    del model._inference_elements
    ids_big, _ = model.recommend(X_hist, k=5)
    np.testing.assert_array_equal(ids_small, ids_big)


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_fit_with_y_trains_on_the_union(est, data, device):
    X, X_hist, y = data
    a = fitted(est, X, device)
    b = on_device(est, device).fit(X_hist, y)
    # Same training interactions (X = X_hist + y), though stored in another order: same model.
    np.testing.assert_allclose(a.predict(X_hist[:5]), b.predict(X_hist[:5]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_grid_search_with_heldout_y(est, data, device):
    _, X_hist, y = data
    params = est.get_params()
    name = next((n for n in ("alpha", "damping") if n in params), "random_state" if "random_state" in params else None)
    grid = {name: [0.5, 5.0] if name != "random_state" else [0, 1]} if name else {"device": [device]}
    search = GridSearchCV(clone(est).set_params(device=device), grid,
                          cv=KFold(3, shuffle=True, random_state=0),
                          scoring={"main": get_scorer(scoring_for(est)), "ndcg": get_scorer("ndcg@5")},
                          refit="main", n_jobs=2 if device == "cpu" else 1)
    search.fit(X_hist, y)
    assert set(search.cv_results_["params"][0]) == set(grid)
    assert np.isfinite(search.cv_results_["mean_test_main"]).all()
    assert search.best_estimator_.n_items_ == X_hist.shape[1]


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_pipeline_with_sklearn_transformer(est, data, device):
    _, X_hist, y = data
    front = Binarizer(threshold=0.0) if est._kind == "ranker" else FunctionTransformer(accept_sparse=True)
    pipe = Pipeline([("prep", front), ("model", on_device(est, device))])
    pipe.fit(X_hist, y)
    assert pipe.predict(X_hist[:3]).shape == (3, X_hist.shape[1])
    assert np.isfinite(pipe.score(X_hist, y))
    assert np.isfinite(get_scorer("ndcg@5")(pipe, X_hist, y))


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_pickle_and_joblib_round_trip(est, data, tmp_path, device):
    _, X_hist, _ = data
    model = fitted(est, X_hist, device)
    expected = model.predict(X_hist)
    ids, _ = model.recommend(X_hist, k=5)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X_hist), expected)
    joblib.dump(model, tmp_path / "m.joblib")
    again = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(again.predict(X_hist), expected)
    np.testing.assert_array_equal(again.recommend(X_hist, k=5)[0], ids)


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_deterministic_under_a_seed(est, data, device):
    _, X_hist, _ = data
    a, b = fitted(est, X_hist, device), fitted(est, X_hist, device)
    np.testing.assert_array_equal(a.predict(X_hist), b.predict(X_hist))


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_caller_objects_are_not_mutated(est, data, device):
    _, X_hist, y = data
    X_copy, y_copy = X_hist.copy(), y.copy()
    model = on_device(est, device)
    params = model.get_params()
    model.fit(X_hist, y)
    model.recommend(X_hist, k=3)
    model.score(X_hist, y)
    for a, b in ((X_hist, X_copy), (y, y_copy)):
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.indptr, b.indptr)
    assert model.get_params() == params


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_accepts_any_sparse_format_and_dense(est, data, device):
    _, X_hist, _ = data
    ref = fitted(est, X_hist, device).predict(X_hist[:4])
    for variant in (X_hist.tocoo(), X_hist.tocsc(), X_hist.toarray(), sp.csr_array(X_hist)):
        np.testing.assert_allclose(fitted(est, variant, device).predict(X_hist[:4]), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_new_users_and_empty_histories(est, data, device):
    _, X_hist, _ = data
    model = fitted(est, X_hist, device)
    empty = sp.csr_matrix((2, X_hist.shape[1]))
    assert np.isfinite(model.predict(empty)).all()
    ids, _ = model.recommend(empty, k=3)
    assert (ids >= 0).all()
    buf = io.BytesIO()
    pickle.dump(model, buf)
    assert buf.tell() > 0


@pytest.mark.parametrize("est", [c[0] for c in FOLD_IN], ids=[c[1] for c in FOLD_IN])
def test_fold_in_of_training_rows_matches_the_learned_vectors(est, data, device):
    """Serving a training row through fold-in scores as well as its learned vector."""
    X, X_hist, y = data
    model = fitted(est, X_hist, device)
    folded, learned = model.transform(X_hist), model._learned_user_vectors()
    assert folded.shape == learned.shape
    corr = np.corrcoef(folded.ravel(), learned.ravel())[0, 1]
    assert corr > 0.95, f"fold-in and learned user vectors disagree (correlation {corr:.3f})"


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_a_model_moves_between_devices(est, data, device, tmp_path):
    """Fitted on ``device``: loaded on the CPU it predicts the same, and a warm fit continues
    wherever ``device`` now points (the fitted state moves there), in both directions."""
    import skrec

    _, X_hist, _ = data
    model = fitted(est, X_hist, device)
    expected = model.predict(X_hist[:6])
    path = tmp_path / "model.safetensors"
    skrec.save(model, path)
    on_the_cpu = skrec.load(path, device="cpu")
    assert on_the_cpu.device_ == torch.device("cpu")
    np.testing.assert_allclose(on_the_cpu.predict(X_hist[:6]), expected, rtol=1e-4, atol=1e-4)
    if "warm_start" not in model.get_params():
        return  # closed forms refit from scratch: nothing to continue
    for there in ("cpu", device):
        model.set_params(warm_start=True, device=there).fit(X_hist)
        assert model.device_.type == there
        tensors = [t for t in model.module_.state_dict().values()]
        assert tensors and all(t.device.type == there for t in tensors)
        assert np.isfinite(model.predict(X_hist[:6])).all()
