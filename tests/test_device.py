"""skrec._torch.device: device resolution, seeded generators and the device-resident CSR."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skrec._torch import DeviceCSR, make_generator, resolve_device

CPU = torch.device("cpu")


def test_resolve_device():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(torch.device("cpu")) == CPU
    assert resolve_device("cpu") == CPU


@pytest.mark.parametrize("device, exc", [("tpu", ValueError), ("gpu0", ValueError), (3, TypeError)])
def test_resolve_device_names_the_parameter(device, exc):
    with pytest.raises(exc, match=r"^device must be"):
        resolve_device(device)


def test_make_generator_is_seeded():
    draw = lambda seed: torch.rand(5, generator=make_generator(seed, CPU)).tolist()  # noqa: E731
    assert draw(3) == draw(3) and draw(3) != draw(4)
    assert make_generator(2**63 + 3, CPU).initial_seed() == 3  # any int seed is folded into the generator's range


def test_device_csr_slices_and_sums_rows():
    X = sp.random(9, 7, density=0.4, format="csr", random_state=1)
    D = DeviceCSR.from_scipy(X, CPU)
    np.testing.assert_allclose(D.to_dense().numpy(), X.toarray(), rtol=1e-6)
    part = D.slice_rows(2, 6)
    assert part.shape == (4, 7) and part.nnz == X[2:6].nnz
    np.testing.assert_allclose(part.to_dense().numpy(), X[2:6].toarray(), rtol=1e-6)
    np.testing.assert_allclose(D.row_sum(D.values).numpy(), np.asarray(X.sum(1)).ravel(), rtol=1e-6)
    np.testing.assert_array_equal(D.row_counts().numpy(), X.getnnz(axis=1))
    rows, cols, vals = D.coo()
    coo = X.tocoo()
    np.testing.assert_array_equal(rows.numpy(), coo.row)
    np.testing.assert_array_equal(cols.numpy(), coo.col)
    np.testing.assert_allclose(vals.numpy(), coo.data, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_device_csr_matmul_matches_scipy_with_empty_rows_slices_and_new_values(dtype):
    X = sp.random(12, 9, density=0.3, format="csr", random_state=2)
    keep = np.ones(12)
    keep[[0, 5, 11]] = 0.0  # empty rows, first and last included
    X = sp.csr_matrix(sp.diags(keep) @ X)
    X.eliminate_zeros()
    D = DeviceCSR.from_scipy(X, CPU, dtype=dtype)
    dense = torch.randn(9, 4, generator=torch.Generator().manual_seed(0), dtype=dtype)
    new = torch.arange(1, X.nnz + 1, dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(D.matmul(dense).numpy(), X @ dense.numpy(), **tol)
    np.testing.assert_allclose(D.matmul(dense, values=new).numpy(),
                               sp.csr_matrix((new.numpy(), X.indices, X.indptr), shape=X.shape) @ dense.numpy(), **tol)
    np.testing.assert_allclose(D.slice_rows(3, 8).matmul(dense).numpy(), X[3:8] @ dense.numpy(), **tol)
    assert D.slice_rows(0, 1).matmul(dense).abs().sum() == 0  # a slice with no entries
    assert D.slice_rows(4, 4).matmul(dense).shape == (0, 4)
    # the gradient reaches both the dense factor and the values, as through the sparse product
    dense.requires_grad_(True)
    values = D.values.clone().requires_grad_(True)
    D.matmul(dense, values=values).square().sum().backward()
    A = torch.sparse_csr_tensor(D.indptr, D.indices, D.values, size=X.shape).to_dense()
    np.testing.assert_allclose(dense.grad.numpy(), (2 * A.T @ (A @ dense.detach())).numpy(), **tol)
    assert values.grad is not None and values.grad.shape == (X.nnz,)


# ------------------------------------------------------------------ loading on another machine
@pytest.mark.parametrize("saved, available, count, expected, warns", [
    ("cpu", False, 0, "cpu", False),
    ("cuda", False, 0, "cpu", True),     # fitted on a GPU, loaded where there is none
    ("cuda:3", False, 0, "cpu", True),
    ("cuda:3", True, 1, "cuda:0", True),  # a GPU index this machine does not have
    ("cuda:1", True, 2, "cuda:1", False),
    ("cuda", True, 1, "cuda", False),
])
def test_loading_device_falls_back_to_what_this_machine_has(monkeypatch, saved, available, count, expected,
                                                            warns):
    from skrec._torch.device import loading_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = loading_device(saved, "MFRegressor")
    assert got == torch.device(expected)
    assert [str(w.message).startswith(f"MFRegressor was fitted on {saved}") for w in caught] == ([True] if warns
                                                                                               else [])


def test_unpickling_uses_the_loading_fallback(monkeypatch):
    """A model pickled on cuda:3 and opened on a one-GPU machine asks for cuda:0 (simulated:
    the tensors are then moved by a stand-in that records where they were sent)."""
    import pickle

    from skrec import base as base_module
    from skrec import MFRegressor
    from conftest import planted_ratings

    X = planted_ratings()
    payload = MFRegressor(n_factors=2, max_iter=1, device="cpu").fit(X).__getstate__()
    payload["device_"] = "cuda:3"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    sent = []
    monkeypatch.setattr(base_module, "_tree_to", lambda value, device: sent.append(str(device)) or value)
    model = MFRegressor.__new__(MFRegressor)
    with pytest.warns(RuntimeWarning, match="fitted on cuda:3, which this machine does not have"):
        model.__setstate__(payload)
    assert model.device_ == torch.device("cuda", 0) and set(sent) == {"cuda:0"}
    assert pickle.loads(pickle.dumps(MFRegressor())).get_params() == MFRegressor().get_params()


# ------------------------------------------------------------------ full-precision solves
def _precisions():
    backends = [torch.backends.cuda.matmul, getattr(torch.backends.mkldnn, "matmul", None)]
    return [b.fp32_precision for b in backends if b is not None and hasattr(b, "fp32_precision")]


@pytest.mark.skipif(not _precisions(), reason="torch before 2.9 has no per-backend matmul precision")
def test_full_precision_sets_ieee_inside_and_restores_after():
    from skrec._torch.device import full_precision

    torch.set_float32_matmul_precision("high")  # what a user enabling TF32 runs
    try:
        before = _precisions()
        assert "tf32" in before
        with full_precision():
            assert set(_precisions()) == {"ieee"}
        assert _precisions() == before
        with pytest.raises(KeyError), full_precision():
            raise KeyError("restored on an exception too")
        assert _precisions() == before and torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision("highest")


@pytest.mark.skipif(not _precisions(), reason="torch before 2.9 has no per-backend matmul precision")
@pytest.mark.parametrize("solver", ["ridge_fold_in", "solve_rows", "cg_rows"])
def test_normal_equations_are_built_without_tf32(monkeypatch, solver):
    """Whatever the process set, the closed-form solvers factor systems built in full precision."""
    from skrec._torch import foldin
    from skrec.factorization import _als

    seen = []
    real = torch.linalg.cholesky_ex
    monkeypatch.setattr(torch.linalg, "cholesky_ex", lambda A, **kw: seen.append(_precisions()) or real(A, **kw))
    V = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    X = sp.random(30, 40, density=0.2, format="csr", random_state=0, dtype=np.float32)
    b = DeviceCSR.from_scipy(X, CPU)
    torch.set_float32_matmul_precision("high")
    try:
        if solver == "ridge_fold_in":
            foldin.ridge_fold_in(b, V, b.values, alpha=0.1)
        elif solver == "solve_rows":
            _als.solve_rows(b, V, 0.1, 2.0, 0.0)
        else:
            seen.append(None)  # CG has no factorisation: record the precision of its products
            sampled = torch.sparse.sampled_addmm
            monkeypatch.setattr(torch.sparse, "sampled_addmm",
                                lambda *a, **kw: seen.append(_precisions()) or sampled(*a, **kw))
            _als.cg_rows(b, V, torch.zeros(30, 4), 0.1, 2.0, 0.0, n_steps=2)
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision("highest")
    recorded = [s for s in seen if s is not None]
    assert recorded and all(set(s) == {"ieee"} for s in recorded)


def test_ridge_fold_in_reports_a_system_that_is_not_positive_definite():
    from skrec._torch import ridge_fold_in

    V = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # rank one: alpha=0 leaves the system singular
    b = DeviceCSR.from_scipy(sp.csr_matrix(np.array([[1.0, 1.0]], dtype=np.float32)), CPU)
    with pytest.raises(ValueError, match=r"^X must be interactions whose weighted least-squares .*got 1 of 1 "
                                         r"systems not positive definite in float32\.$"):
        ridge_fold_in(b, V, b.values, alpha=0.0)
    assert torch.isfinite(ridge_fold_in(b, V, b.values, alpha=0.1)).all()
