"""skrec._torch.device: device resolution, seeded generators and the device-resident CSR."""

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
