"""skrec.save / skrec.load: JSON plus safetensors, every registered estimator, no code run on load."""

import base64
import copy
import json
import os
import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression

import skrec
from skrec import EASE, BaseRecommender, MFRegressor, Popularity, SequenceTransformer
from skrec._persistence import FORMAT_VERSION, _tensor_digest
from skrec.base import all_estimators
from skrec.model_selection import holdout_split

from conftest import planted_groups

CASES = [est for cls in all_estimators() for est in cls._test_instances()]
IDS = [f"{type(e).__name__}-{i}" for i, e in enumerate(CASES)]
_MODULE_INTERNALS = set(vars(torch.nn.Module()))


@pytest.fixture(scope="module")
def data():
    X = planted_groups()
    X_hist, _ = holdout_split(X, 0.25, random_state=0)
    return X, X_hist


def on_cpu(est):
    params = {k: v for k, v in (("random_state", 0), ("device", "cpu")) if k in est.get_params()}
    return clone(est).set_params(**params)


@pytest.fixture(scope="module")
def mf_file(data, tmp_path_factory):
    X, _ = data
    model = MFRegressor(n_factors=4, max_iter=3, random_state=0, device="cpu").fit(X)
    path = tmp_path_factory.mktemp("mf") / "mf.safetensors"
    skrec.save(model, path)
    return model, path


# ------------------------------------------------------------------------------ helpers
def assert_same(a, b, where="estimator"):
    """``b`` equals ``a`` value for value: types, dtypes, tensors, modules, nested estimators."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, BaseRecommender):
        assert list(vars(a)) == list(vars(b)), where
        for key in vars(a):
            assert_same(vars(a)[key], vars(b)[key], f"{where}.{key}")
    elif isinstance(a, torch.nn.Module):
        assert a.training == b.training, where
        assert a._non_persistent_buffers_set == b._non_persistent_buffers_set, where
        for section in ("_parameters", "_buffers", "_modules"):
            assert list(getattr(a, section)) == list(getattr(b, section)), f"{where}.{section}"
            for key, value in getattr(a, section).items():
                assert_same(value, getattr(b, section)[key], f"{where}.{key}")
        plain = [k for k in vars(a) if k not in _MODULE_INTERNALS]
        assert plain == [k for k in vars(b) if k not in _MODULE_INTERNALS], where
        for key in plain:
            assert_same(vars(a)[key], vars(b)[key], f"{where}.{key}")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad, where
        assert torch.equal(a.detach().cpu(), b.detach().cpu()), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif sp.issparse(a):
        assert a.dtype == b.dtype and a.shape == b.shape and (a != b).nnz == 0, where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    elif isinstance(a, np.random.RandomState):
        assert_same(a.get_state(), b.get_state(), where)
    elif isinstance(a, np.random.Generator):
        assert a.bit_generator.state == b.bit_generator.state, where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def read(path):
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["skrec"]), {k: f.get_tensor(k) for k in f.keys()}


def write(path, doc, tensors):
    """Write a crafted file as save does (the digest recomputed, so that only the edit is tested)."""
    doc["sha256"] = _tensor_digest(tensors)
    save_file(tensors, str(path), metadata={"skrec": json.dumps(doc)})


def state_of(doc):
    return doc["estimator"]["$estimator"]["state"]


class Touch:
    """A pickle payload: unpickling it creates the file ``path`` (code run by ``pickle.load``)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


# ------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_every_estimator_round_trips(est, data, tmp_path):
    X, X_hist = data
    model = on_cpu(est).fit(X_hist)
    before = copy.deepcopy(model)
    path = tmp_path / "model.safetensors"
    skrec.save(model, path)
    assert_same(before, model)  # save changes nothing
    loaded = skrec.load(path, expected=type(model))
    assert_same(model, loaded)
    assert loaded.get_params(deep=True).keys() == model.get_params(deep=True).keys()
    assert loaded.history_ == model.history_
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    for a, b in zip(loaded.recommend(X, k=5), model.recommend(X, k=5)):
        np.testing.assert_array_equal(a, b)
    if hasattr(model, "transform"):
        np.testing.assert_array_equal(loaded.transform(X[:9]), model.transform(X[:9]))
    # the loaded model fits again like the saved one
    np.testing.assert_array_equal(clone(loaded).fit(X_hist).predict(X[:5]), clone(model).fit(X_hist).predict(X[:5]))


@pytest.mark.parametrize("est", [e for e in CASES if "warm_start" in e.get_params()],
                         ids=[i for e, i in zip(CASES, IDS) if "warm_start" in e.get_params()])
def test_a_loaded_model_continues_training_as_the_saved_one(est, data, tmp_path):
    """Optimizer state, seed, step count and history come back: a warm fit gives the same model."""
    X, _ = data
    model = on_cpu(est).set_params(warm_start=True).fit(X)
    skrec.save(model, tmp_path / "m.safetensors")
    loaded = skrec.load(tmp_path / "m.safetensors")
    model.fit(X)
    loaded.fit(X)
    assert loaded.history_[-1]["loss"] == model.history_[-1]["loss"]
    np.testing.assert_array_equal(loaded.predict(X[:10]), model.predict(X[:10]))


def test_sequence_rating_head_round_trips(data, tmp_path):
    X, _ = data
    R = X.copy()
    R.data = 1.0 + (R.indices % 5)
    model = SequenceTransformer(n_factors=8, max_seq_len=6, n_layers=1, batch_size=16, max_iter=2,
                                early_stopping=False, random_state=0, device="cpu").fit(X, ratings=R)
    skrec.save(model, tmp_path / "seq.safetensors")
    loaded = skrec.load(tmp_path / "seq.safetensors")
    assert_same(model, loaded)
    np.testing.assert_array_equal(loaded.predict_rating(X[:7]), model.predict_rating(X[:7]))


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_an_unfitted_estimator_round_trips_its_parameters(est, tmp_path):
    skrec.save(est, tmp_path / "unfitted.safetensors")
    loaded = skrec.load(tmp_path / "unfitted.safetensors")
    assert_same(est, loaded)
    assert not any(k.endswith("_") for k in vars(loaded))
    with pytest.raises(NotFittedError):
        loaded.predict(planted_groups())


def test_values_of_every_supported_type_round_trip(data, tmp_path):
    """Attributes a model may keep: arrays, sparse matrices, numpy scalars, random states, shared objects."""
    X, _ = data
    model = Popularity().fit(X)
    shared = torch.arange(6.0).reshape(2, 3)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Dropout(0.5)).eval()
    net.register_buffer("scale", torch.ones(2), persistent=False)
    extra = {
        "arrays_": [np.arange(5, dtype=np.int32), np.eye(2, dtype=np.float16), np.array([True, False])],
        "sparse_": (sp.csr_matrix(X), sp.csc_array(X[:4]), sp.coo_matrix(X[:3])),
        "scalars_": (np.float32(0.25), np.int64(-3), np.bool_(True), float("nan"), float("inf"), 2**62),
        "keys_": {0: "int key", (1, 2): "tuple key", "$tag": "dollar key"},
        "shared_": (shared, shared, shared[1:]),
        "net_": net,
        "kinds_": (torch.device("cpu"), torch.float64, torch.tensor([1, 2], dtype=torch.bfloat16)),
        "random_": (np.random.RandomState(7), np.random.default_rng(8)),
        "nested_": MFRegressor(hidden_layer_sizes=(4, 2)),
    }
    vars(model).update(extra)
    skrec.save(model, tmp_path / "types.safetensors")
    loaded = skrec.load(tmp_path / "types.safetensors")
    assert_same(model, loaded)
    assert loaded.shared_[0] is loaded.shared_[1]  # one tensor stays one tensor
    assert loaded.random_[0].rand() == np.random.RandomState(7).rand()


def test_the_file_is_safetensors_with_a_json_header_and_cpu_tensors(mf_file):
    model, path = mf_file
    doc, tensors = read(path)
    assert doc["format"] == "skrec" and doc["format_version"] == FORMAT_VERSION
    assert doc["skrec_version"] == skrec.__version__
    state = state_of(doc)
    assert state["n_factors"] == 4 and state["device_"] == "cpu"
    assert state["history_"] == model.history_  # plain JSON, readable by any tool
    assert all(t.device.type == "cpu" for t in tensors.values())
    n_params = sum(1 for _ in model.module_.parameters())
    assert len(tensors) >= n_params


def as_if_fitted_on_cuda(node):
    """The JSON of a file written after a CUDA fit: every estimator's device_ (and device) names CUDA."""
    if isinstance(node, dict):
        if isinstance(node.get("device_"), str):
            node["device_"] = "cuda:0"
        if isinstance(node.get("device"), str):
            node["device"] = "cuda"
        for value in node.values():
            as_if_fitted_on_cuda(value)
    elif isinstance(node, list):
        for value in node:
            as_if_fitted_on_cuda(value)


@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_a_model_fitted_on_cuda_loads_on_the_cpu(est, data, tmp_path):
    """Tensors are stored from CPU copies, so a CUDA fit's file differs only in the devices it records."""
    X, X_hist = data
    model = on_cpu(est).fit(X_hist)
    skrec.save(model, tmp_path / "cpu.safetensors")
    doc, tensors = read(tmp_path / "cpu.safetensors")
    as_if_fitted_on_cuda(doc)
    write(tmp_path / "cuda.safetensors", doc, tensors)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit device: no warning
        loaded = skrec.load(tmp_path / "cuda.safetensors", device="cpu")
    assert loaded.device_ == torch.device("cpu")
    assert all(t.device.type == "cpu" for t in loaded.module_.state_dict().values())
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    if not torch.cuda.is_available():
        with pytest.warns(RuntimeWarning, match="fitted on cuda:0, which is not available here"):
            fallback = skrec.load(tmp_path / "cuda.safetensors")
        assert fallback.device_ == torch.device("cpu")
        np.testing.assert_array_equal(fallback.predict(X), model.predict(X))


def test_load_checks_the_device(mf_file):
    _, path = mf_file
    with pytest.raises(ValueError, match="device must be"):
        skrec.load(path, device="tpu")


@pytest.mark.cuda
@pytest.mark.parametrize("est", CASES, ids=IDS)
def test_fitted_on_cuda_loads_on_the_cpu(est, data, tmp_path):
    X, X_hist = data
    params = {k: v for k, v in (("random_state", 0), ("device", "cuda")) if k in est.get_params()}
    model = clone(est).set_params(**params).fit(X_hist)
    skrec.save(model, tmp_path / "gpu.safetensors")
    _, tensors = read(tmp_path / "gpu.safetensors")
    assert all(t.device.type == "cpu" for t in tensors.values())
    loaded = skrec.load(tmp_path / "gpu.safetensors", device="cpu")
    assert loaded.device_ == torch.device("cpu")
    assert all(t.device.type == "cpu" for t in loaded.module_.state_dict().values())
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-4, atol=1e-4)
    back = skrec.load(tmp_path / "gpu.safetensors")
    assert back.device_.type == "cuda"
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


# ------------------------------------------------------------------------ refusals
def test_load_checks_the_expected_class_and_arguments(mf_file):
    _, path = mf_file
    with pytest.raises(ValueError, match=rf"{path}.* holds an estimator of class MFRegressor \(written by skrec "
                                         rf"{skrec.__version__}\), not the expected EASE"):
        skrec.load(path, expected=EASE)
    assert isinstance(skrec.load(path, expected=BaseRecommender), MFRegressor)
    with pytest.raises(TypeError, match=r"expected must be None or a skrec estimator class \(e.g. "
                                        r"skrec.MFRegressor\); got 'MFRegressor'"):
        skrec.load(path, expected="MFRegressor")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        skrec.load(3)
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        skrec.load(path.parent / "absent.safetensors")


def test_a_newer_format_version_is_refused(mf_file, tmp_path):
    _, path = mf_file
    doc, tensors = read(path)
    doc["format_version"] = FORMAT_VERSION + 1
    doc["skrec_version"] = "9.0"
    write(tmp_path / "new.safetensors", doc, tensors)
    with pytest.raises(ValueError, match=rf"new.safetensors was written by skrec 9.0 in file format version "
                                         rf"{FORMAT_VERSION + 1}; this skrec \({skrec.__version__}\) reads "
                                         rf"format versions up to {FORMAT_VERSION}"):
        skrec.load(tmp_path / "new.safetensors")


def test_truncated_and_corrupt_files_give_clear_errors(mf_file, tmp_path):
    _, path = mf_file
    raw = path.read_bytes()
    for cut in (0, 4, 8, 100, len(raw) // 2, len(raw) - 1):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=rf"cut{cut}.safetensors is not a file written by skrec.save"):
            skrec.load(bad)
    flipped = bytearray(raw)
    flipped[-3] ^= 0xFF  # inside the tensor data: only the digest can tell
    (tmp_path / "flip.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="flip.safetensors is not a valid skrec file.*does not match the digest"):
        skrec.load(tmp_path / "flip.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"skrec": "{not json"})
    with pytest.raises(ValueError, match="other.safetensors is corrupt: its skrec header is not valid JSON"):
        skrec.load(tmp_path / "other.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="plain.safetensors is a safetensors file without skrec's header"):
        skrec.load(tmp_path / "plain.safetensors")
    doc, tensors = read(path)
    del tensors[next(iter(tensors))]
    write(tmp_path / "missing.safetensors", doc, tensors)
    with pytest.raises(ValueError, match="missing.safetensors is not a valid skrec file.*is missing"):
        skrec.load(tmp_path / "missing.safetensors")


def test_pickle_payloads_are_never_run(mf_file, tmp_path):
    _, path = mf_file
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(Touch(proof)))  # the payload is live: unpickling it runs code
    assert proof.exists()
    marker = tmp_path / "marker"
    payload = pickle.dumps(Touch(marker))

    crafted = {"pickle.safetensors": lambda p: p.write_bytes(payload),
               "torch.safetensors": lambda p: torch.save(Touch(marker), p),
               "joblib.safetensors": lambda p: joblib.dump(Touch(marker), p)}
    for name, make in crafted.items():
        make(tmp_path / name)
        with pytest.raises(ValueError, match=f"{name} is not a file written by skrec.save"):
            skrec.load(tmp_path / name)

    def edited(name, edit):
        doc, tensors = read(path)
        edit(doc, tensors)
        write(tmp_path / name, doc, tensors)
        return tmp_path / name

    # a pickle in the JSON header, under a value type skrec does not write
    bad = edited("tag.safetensors", lambda d, t: state_of(d).update(
        extra_={"$pickle": base64.b64encode(payload).decode()}))
    with pytest.raises(ValueError, match=r"tag.safetensors is not a valid skrec file.*unknown value type '\$pickle'"):
        skrec.load(bad)
    # classes that are not skrec's: an estimator, a module
    bad = edited("cls.safetensors", lambda d, t: d["estimator"]["$estimator"].update({"class": "builtins.open"}))
    with pytest.raises(ValueError, match=r"cls.safetensors does not hold a registered skrec estimator "
                                         r"\(class 'builtins.open'\)"):
        skrec.load(bad)
    bad = edited("mod.safetensors", lambda d, t: state_of(d)["module_"]["$module"].update({"class": "posix.system"}))
    with pytest.raises(ValueError, match="mod.safetensors is not a valid skrec file.*'posix.system' is neither"):
        skrec.load(bad)
    # a pickle stored as tensor data is loaded as bytes and never unpickled
    def blob(doc, tensors):
        tensors["999"] = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
        state_of(doc)["blob_"] = {"$tensor": {"id": 999}}
    loaded = skrec.load(edited("blob.safetensors", blob))
    assert loaded.blob_.dtype == torch.uint8 and bytes(loaded.blob_.numpy()) == payload
    assert not marker.exists()


def test_save_refuses_what_it_cannot_store_safely(tmp_path, data):
    X, _ = data
    with pytest.raises(TypeError, match="estimator must be an instance of a registered skrec estimator class"):
        skrec.save(LinearRegression(), tmp_path / "lr.safetensors")

    class Custom(Popularity):
        pass

    with pytest.raises(TypeError, match="estimator must be an instance of a registered skrec estimator class"):
        skrec.save(Custom(), tmp_path / "custom.safetensors")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        skrec.save(Popularity(), None)
    model = Popularity().fit(X)
    model.scorer_ = len
    with pytest.raises(TypeError, match="Cannot save Popularity.scorer_: values of type builtins"):
        skrec.save(model, tmp_path / "fn.safetensors")
    assert os.listdir(tmp_path) == []  # nothing half-written is left behind
    model = Popularity().fit(X)
    model.module_.register_forward_hook(lambda *args: None)
    with pytest.raises(TypeError, match="Cannot save Popularity.module_: it has hooks registered"):
        skrec.save(model, tmp_path / "hook.safetensors")
