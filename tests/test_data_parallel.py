"""Data-parallel training with torch.distributed: two gloo processes against one process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.distributed as dist
from conftest import planted_implicit

from skrec import BPRRanker
from skrec._torch.distributed import DataParallelGroup, activate, deactivate
from skrec.parallel import data_parallel

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
import _ddp_fit  # noqa: E402


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Run ``_ddp_fit.py`` under torchrun with 2 gloo processes; the JSON of each rank."""
    out = tmp_path_factory.mktemp("ddp")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           os.path.join(HERE, "_ddp_fit.py"), str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.fixture(scope="module")
def one_process():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {name: _ddp_fit.summary(model.fit(X), X, y) for name, (model, (X, y)) in _ddp_fit.configs().items()}
    finally:
        torch.set_num_threads(threads)


def test_ranks_end_with_the_same_model(two_ranks):
    first, second = two_ranks
    assert first["world_size"] == second["world_size"] == 2
    for name in ("mf", "bpr"):
        assert first[name] == second[name]  # identical histories, parameters and scores


def test_two_processes_match_one_process_with_the_same_global_batch(two_ranks, one_process):
    ddp = two_ranks[0]
    # MF draws nothing but the batch order, which every rank shares: the same steps to rounding
    np.testing.assert_allclose(ddp["mf"]["loss"], one_process["mf"]["loss"], rtol=1e-5)
    np.testing.assert_allclose(ddp["mf"]["val_loss"], one_process["mf"]["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(ddp["mf"]["first"], one_process["mf"]["first"], rtol=1e-3, atol=1e-5)
    assert ddp["mf"]["score"] == pytest.approx(one_process["mf"]["score"], abs=1e-5)
    # BPR's negatives are drawn per rank: the same curve within sampling noise
    np.testing.assert_allclose(ddp["bpr"]["loss"], one_process["bpr"]["loss"], rtol=0.02)
    assert ddp["bpr"]["loss"][-1] < 0.75 * ddp["bpr"]["loss"][0]
    assert ddp["bpr"]["score"] == pytest.approx(one_process["bpr"]["score"], rel=0.1)


@pytest.fixture
def single_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_one_rank_is_the_plain_fit(single_process_group):
    X = planted_implicit(seed=1)
    plain = BPRRanker(n_factors=8, max_iter=3, random_state=0, device="cpu").fit(X)
    with data_parallel() as group:
        ranked = BPRRanker(n_factors=8, max_iter=3, random_state=0, device="cpu").fit(X)
    assert (group.rank, group.world_size, group.backend) == (0, 1, "gloo")
    assert dist.is_initialized()  # a group created by the caller is left open
    assert [h["loss"] for h in ranked.history_] == [h["loss"] for h in plain.history_]


def test_gradients_are_summed_and_sparse_ones_stay_sparse(single_process_group):
    group = DataParallelGroup(rank=0, world_size=1, backend="gloo")
    emb = torch.nn.Embedding(5, 2, sparse=True)
    lin = torch.nn.Linear(2, 1)
    unused = torch.nn.Parameter(torch.ones(3))
    lin(emb(torch.tensor([1, 3]))).sum().backward()
    expected = emb.weight.grad.to_dense().clone()
    group.all_reduce_gradients([emb.weight, lin.weight, lin.bias, unused])
    assert emb.weight.grad.is_sparse
    torch.testing.assert_close(emb.weight.grad.to_dense(), expected)
    assert torch.equal(unused.grad, torch.zeros(3))  # an unused parameter takes part with zeros
    part, share = group.shard(torch.arange(7))
    assert part.tolist() == list(range(7)) and share == 1.0


def test_shards_cover_every_index_once():
    idx = torch.randperm(11)
    parts = [DataParallelGroup(rank=r, world_size=3, backend="gloo").shard(idx) for r in range(3)]
    assert sorted(torch.cat([p for p, _ in parts]).tolist()) == list(range(11))
    assert sum(share for _, share in parts) == pytest.approx(1.0)


def test_outside_torchrun_it_says_how_to_launch(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="torchrun"):
        with data_parallel():
            pass
    with pytest.raises(ValueError, match="backend must be 'gloo', 'nccl' or None; got 'mpi'"):
        with data_parallel("mpi"):
            pass


def test_nccl_needs_a_cuda_model():
    group = DataParallelGroup(rank=0, world_size=2, backend="nccl")
    model = BPRRanker(max_iter=1, device="cpu")
    activate(group)
    try:
        with pytest.raises(ValueError, match="device must be 'cuda' or 'auto' on a GPU"):
            model.fit(sp.csr_matrix(planted_implicit(seed=0)))
    finally:
        deactivate(group)
    assert not hasattr(model, "n_items_")  # a failed fit leaves nothing behind
