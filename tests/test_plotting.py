"""skrec.plotting: training curves from history_ and the item-factor map."""

import numpy as np
import pytest
import scipy.sparse as sp

from skrec import BaselineBiases, MFRegressor
from skrec.datasets import make_interactions

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from skrec.plotting import plot_history, plot_item_embeddings  # noqa: E402


@pytest.fixture(scope="module")
def mf():
    X = make_interactions(200, 60, kind="explicit", n_clusters=3, density=0.3, random_state=0).X
    return MFRegressor(n_factors=4, solver="gradient", learning_rate=0.02, batch_size=512, max_iter=8,
                       early_stopping=True,
                       random_state=0, device="cpu").fit(X)


def test_history_draws_the_loss_the_validation_loss_and_the_learning_rate(mf):
    ax = plot_history(mf)
    loss, val = ax.get_lines()
    assert (loss.get_label(), val.get_label()) == ("loss", "val_loss")
    np.testing.assert_allclose(loss.get_xdata(), [h["epoch"] for h in mf.history_])
    np.testing.assert_allclose(loss.get_ydata(), [h["loss"] for h in mf.history_])
    np.testing.assert_allclose(val.get_ydata(), [h["val_loss"] for h in mf.history_])
    (twin,) = [a for a in ax.figure.axes if a is not ax]
    np.testing.assert_allclose(twin.get_lines()[0].get_ydata(), [h["lr"] for h in mf.history_])
    assert len(plot_history(mf, show_lr=False).figure.axes) == 1


def test_history_accepts_the_records_themselves(mf):
    ax = plot_history(mf.history_, show_lr=False)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [h["loss"] for h in mf.history_])


def test_history_rejects_what_has_no_records(mf):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        plot_history(MFRegressor())
    with pytest.raises(ValueError, match="estimator must be a fitted estimator whose history_ holds records"):
        plot_history([{"epoch": 1}])
    with pytest.raises(TypeError, match="show_lr must be a bool"):
        plot_history(mf, show_lr="yes")


def test_item_map_projects_the_factors_on_their_principal_axes(mf):
    ax = plot_item_embeddings(mf, items=[3, 1, 2, 5], labels=["c", "a", "b", "e"])
    assert [t.get_text() for t in ax.texts] == ["c", "a", "b", "e"]
    V = mf.item_factors_[[3, 1, 2, 5]].astype(np.float64)
    centred = V - V.mean(0)
    _, s, _ = np.linalg.svd(centred, full_matrices=False)
    coords = ax.collections[0].get_offsets()
    # The principal coordinates keep the centred points' pairwise distances within the plane
    # and carry the two largest singular values' spread (the axes' signs are arbitrary).
    np.testing.assert_allclose(np.linalg.norm(coords, axis=0), s[:2], rtol=1e-6)
    np.testing.assert_allclose(np.abs(np.asarray(coords).T @ np.asarray(coords)), np.diag(s[:2] ** 2), atol=1e-8)


def test_item_map_rejects_bad_arguments(mf):
    with pytest.raises(TypeError, match="estimator must be a fitted estimator with item_factors_"):
        plot_item_embeddings(BaselineBiases(device="cpu").fit(sp.csr_matrix(np.eye(3) + 1)))
    with pytest.raises(ValueError, match="labels must be one label per drawn item"):
        plot_item_embeddings(mf, items=[0, 1], labels=["x"])
    with pytest.raises(ValueError, match="components must be a pair of component indices in"):
        plot_item_embeddings(mf, components=(0, 4))
