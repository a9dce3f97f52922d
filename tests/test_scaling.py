"""scikit-learn's searches on a Dask cluster and on Ray, batch scoring on Dask, no CUDA in the driver.

The cluster is a ``LocalCluster`` of two worker processes, each declaring one "GPU" resource
and two threads: a task that asks for ``{"GPU": 1}`` then runs alone on its worker, as it
would on a machine with one GPU per worker. Every search is compared with the same search
run in this process (``n_jobs=1``).
"""

import os
import pickle
import sys

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, KFold, RandomizedSearchCV, cross_validate

import skrec
from skrec import BPRRanker, MFRegressor, all_estimators
from skrec.metrics import make_scorers

distributed = pytest.importorskip("distributed")
from skrec.parallel import TorchWorker, recommend_blocks  # noqa: E402

CV = KFold(3, shuffle=True, random_state=0)
SCORING = make_scorers(["ndcg@10", "recall@20"])


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, resources={"GPU": 1},
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        c.register_plugin(TorchWorker(1))
        yield c


def bpr():
    return BPRRanker(n_factors=8, n_negatives=2, max_iter=4, device="auto", random_state=0)


GRID = {"alpha": [0.001, 0.1], "learning_rate": [0.003, 0.03]}


def assert_same_search(local, remote):
    assert remote.best_params_ == local.best_params_
    for key in local.cv_results_:
        if key.startswith(("split", "mean_test", "std_test")):
            np.testing.assert_allclose(remote.cv_results_[key], local.cv_results_[key], rtol=0, atol=1e-6,
                                       err_msg=key)


class Occupancy(distributed.WorkerPlugin):
    """The most tasks a worker executed at once."""

    def setup(self, worker):
        self.running = self.peak = 0

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing":
            self.running += 1
            self.peak = max(self.peak, self.running)
        elif start == "executing":
            self.running -= 1


@pytest.mark.parametrize("search", ["GridSearchCV", "RandomizedSearchCV"])
def test_dask_search_equals_one_process_and_holds_one_gpu_per_task(search, client, implicit_pair):
    X, y = implicit_pair
    make = {"GridSearchCV": lambda: GridSearchCV(bpr(), GRID, cv=CV, scoring=SCORING, refit="ndcg@10",
                                                 error_score="raise"),
            "RandomizedSearchCV": lambda: RandomizedSearchCV(bpr(), GRID, n_iter=3, cv=CV, scoring=SCORING,
                                                             refit="ndcg@10", random_state=0,
                                                             error_score="raise")}[search]
    local = make().fit(X, y)
    occupancy = Occupancy()
    client.register_plugin(occupancy, name=f"occupancy-{search}")
    with joblib.parallel_config(backend="dask", scatter=[X, y], resources={"GPU": 1}):
        remote = make().fit(X, y)
    assert_same_search(local, remote)
    recorded = client.run(lambda dask_worker: dask_worker.plugins[f"occupancy-{search}"].peak)
    # both workers trained, each with one "GPU": never two fits at once on one worker (it has 2 threads)
    assert sorted(recorded.values()) == [1, 1]
    np.testing.assert_array_equal(remote.best_estimator_.recommend(X, 5)[0], local.best_estimator_.recommend(X, 5)[0])


def test_dask_cross_validate_rating_model(client, rating_pair):
    X, y = rating_pair
    model = MFRegressor(n_factors=4, max_iter=5, early_stopping=False, random_state=0)
    scoring = make_scorers(["neg_rmse", "neg_mae"])
    local = cross_validate(model, X, y, cv=CV, scoring=scoring)
    with joblib.parallel_config(backend="dask", resources={"GPU": 1}):
        remote = cross_validate(model, X, y, cv=CV, scoring=scoring, n_jobs=-1)
    for key in ("test_neg_rmse", "test_neg_mae"):
        np.testing.assert_allclose(remote[key], local[key], rtol=0, atol=1e-6)


def test_dask_halving_search_tunes_on_user_subsets_and_refits_on_a_worker(client, implicit_pair):
    X, y = implicit_pair
    grid = {"alpha": [0.001, 0.01, 0.1, 1.0]}

    def make():  # users are the resource: early rounds fit on a subset of them, the last on all
        return HalvingGridSearchCV(bpr(), grid, resource="n_samples", min_resources=75, factor=2, cv=CV,
                                   scoring=SCORING["ndcg@10"], random_state=0, refit=False, error_score="raise")

    local = make().fit(X, y)
    with joblib.parallel_config(backend="dask", scatter=[X, y], resources={"GPU": 1}):
        remote = make().fit(X, y)
    assert remote.n_resources_ == local.n_resources_ == [75, 150, 300]  # users per round
    assert remote.n_candidates_ == [4, 2, 1]
    assert_same_search(local, remote)
    # refit=False keeps the final fit off the driver: train the winner on every user on a "GPU" worker
    best = clone(bpr()).set_params(**remote.best_params_)
    fitted = client.submit(best.fit, client.scatter(X), client.scatter(y), resources={"GPU": 1}).result()
    assert fitted.n_users_ == X.shape[0] and not hasattr(best, "n_users_")
    reference = clone(best).fit(X, y)
    np.testing.assert_array_equal(fitted.recommend(X, 5)[0], reference.recommend(X, 5)[0])


def test_torch_worker_plugin_sets_threads_and_allocator(client):
    threads = client.run(lambda: __import__("torch").get_num_threads())
    assert set(threads.values()) == {1}
    futures = [client.submit(torch.get_num_threads, pure=False, workers=[w]) for w in threads]
    assert client.gather(futures) == [1, 1]
    applied = client.run(lambda dask_worker: dask_worker.plugins[TorchWorker.name].allocator_set)
    assert set(applied.values()) == {sys.platform.startswith("linux")}
    with pytest.raises(ValueError, match="n_threads"):
        TorchWorker(0)
    with pytest.raises(ValueError, match="mmap_threshold"):
        TorchWorker(mmap_threshold=-1)


# ----------------------------------------------------------------------------- batch scoring
@pytest.fixture(scope="module")
def fitted(implicit_pair):
    X, _ = implicit_pair
    return X, BPRRanker(n_factors=8, max_iter=3, random_state=0, device="cpu").fit(X)


def test_recommend_blocks_equals_recommend(client, fitted, tmp_path):
    X, model = fitted
    expected_ids, expected_scores = model.recommend(X, 7, items=np.arange(40))
    ids, scores = recommend_blocks(model, X, 7, client=client, block_rows=64, items=np.arange(40))
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)
    futures = [client.scatter(X[s:s + 100]) for s in range(0, X.shape[0], 100)]  # blocks already on workers
    np.testing.assert_array_equal(recommend_blocks(model, futures, 7, client=client)[0], model.recommend(X, 7)[0])
    # blocks loaded on the workers (never in this process), results written where they were scored
    for start in range(0, X.shape[0], 100):
        sp.save_npz(tmp_path / f"in-{start}.npz", X[start:start + 100])
    import dask

    blocks = [dask.delayed(sp.load_npz)(str(tmp_path / f"in-{s}.npz")) for s in range(0, X.shape[0], 100)]
    paths = recommend_blocks(model, blocks, 7, client=client, output_dir=tmp_path / "out", resources={"GPU": 1})
    assert [os.path.basename(p) for p in paths] == ["block-00000.npz", "block-00001.npz", "block-00002.npz"]
    written = [np.load(p) for p in paths]
    np.testing.assert_array_equal(np.concatenate([w["ids"] for w in written]), model.recommend(X, 7)[0])


def test_recommend_blocks_rejects_bad_input(client, fitted):
    X, model = fitted
    with pytest.raises(TypeError, match="X must be a sparse matrix or a list of blocks"):
        recommend_blocks(model, X.toarray(), 5, client=client)
    with pytest.raises(ValueError, match="block_rows"):
        recommend_blocks(model, X, 5, client=client, block_rows=0)
    with pytest.raises(ValueError, match="k must be"):
        recommend_blocks(model, X, X.shape[1] + 1, client=client)
    with pytest.raises(TypeError, match="resources"):
        recommend_blocks(model, X, 5, client=client, resources="GPU")
    with pytest.raises(Exception, match="n_items_|not fitted"):
        recommend_blocks(BPRRanker(), X, 5, client=client)


# ----------------------------------------------------------------------------- Ray
def test_ray_search_equals_one_process(implicit_pair):
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    X, y = implicit_pair
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)  # 2 logical GPUs
    try:
        register_ray()
        local = GridSearchCV(bpr(), GRID, cv=CV, scoring=SCORING, refit="ndcg@10").fit(X, y)
        with joblib.parallel_config(backend="ray", n_jobs=2, ray_remote_args={"num_gpus": 1}):
            remote = GridSearchCV(bpr(), GRID, cv=CV, scoring=SCORING, refit="ndcg@10").fit(X, y)
    finally:
        ray.shutdown()
    assert_same_search(local, remote)


# ----------------------------------------------------------------------------- no CUDA in the driver
def test_nothing_but_fit_touches_cuda(monkeypatch, implicit_pair, tmp_path):
    X, _ = implicit_pair
    fitted = {cls: clone(cls._test_instances()[0]).set_params(device="cpu").fit(X) for cls in all_estimators()
              if "device" in cls().get_params() and cls._kind == "ranker"}

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.cuda was called")

    for name in ("is_available", "device_count", "init", "_lazy_init", "current_device", "mem_get_info",
                 "set_device", "synchronize"):
        monkeypatch.setattr(torch.cuda, name, forbidden)
    for cls in all_estimators():
        for est in cls._test_instances():
            est = clone(est)
            if "device" in est.get_params():
                est.set_params(device="auto")
            repr(est)
            params = est.get_params()
            copy = clone(est).set_params(**params)
            pickle.loads(pickle.dumps(copy))
            joblib.load(_dump(copy, tmp_path / "est.joblib"))
    for cls, model in fitted.items():
        pickle.loads(pickle.dumps(model)).recommend(X[:5], 3)
        skrec.load(_save(model, tmp_path / f"{cls.__name__}.skrec")).recommend(X[:5], 3)
    assert not torch.cuda.is_initialized()

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: calls.append(1) or False)
    bpr().set_params(max_iter=1).fit(X)  # "auto" is resolved here, where the fit runs
    assert calls


def _dump(est, path):
    joblib.dump(est, path)
    return path


def _save(est, path):
    skrec.save(est, path)
    return path


def test_read_only_inputs_as_joblib_memmaps_them(implicit_pair):
    """Process-based joblib backends hand workers read-only memory maps of large arrays."""
    X, y = implicit_pair

    expected = bpr().fit(X, y).score(X, y)
    unpickled = pickle.loads(pickle.dumps((X, y)))  # arrays over bytes objects: no view may be made writeable
    frozen = [type(m)(tuple(np.frombuffer(a.tobytes(), dtype=a.dtype) for a in (m.data, m.indices, m.indptr)),
                      shape=m.shape) for m in (X, y.matrix)]  # read-only, as memory maps opened "r"
    for Xr, yr in (unpickled, (frozen[0], type(y)(frozen[1]))):
        assert bpr().fit(Xr, yr).score(Xr, yr) == expected
    with joblib.parallel_config(backend="loky", max_nbytes=1):  # memmap everything
        search = GridSearchCV(bpr(), {"alpha": [0.001, 0.1]}, cv=CV, n_jobs=2, error_score="raise").fit(X, y)
    assert search.best_estimator_.n_users_ == X.shape[0]
