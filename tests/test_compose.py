"""ResidualRegressor: a regressor fitted on what another leaves, through the training seam."""

import numpy as np
import pytest
import scipy.sparse as sp

from skrec import BaselineBiases, MFRegressor, Popularity, ResidualRegressor
from skrec.datasets import make_interactions
from skrec.model_selection import holdout_split

RESIDUAL = dict(n_factors=4, solver="gradient", alpha=0.02, learning_rate=0.02, batch_size=512)


@pytest.fixture(scope="module")
def planted():
    b = make_interactions(400, 120, kind="explicit", n_clusters=4, density=0.3, noise=0.1, random_state=0)
    X_hist, y = holdout_split(b.X, 0.2, random_state=0)
    return X_hist, y


@pytest.fixture(scope="module")
def stack(planted):
    X_hist, _ = planted
    return ResidualRegressor(BaselineBiases(damping=2.0), MFRegressor(**RESIDUAL, max_iter=40), random_state=0,
                             device="cpu").fit(X_hist)


def test_residual_regressor_fits_mf_on_what_the_biases_leave(planted, stack):
    X_hist, y = planted
    # The second stage sees residuals: centred near 0, with negative values.
    resid_mean = stack.residual_.global_mean_
    assert abs(resid_mean) < 0.1 and stack.residual_.rating_range_[0] < 0
    base_only = stack.base_.score(X_hist, y)
    assert stack.score(X_hist, y) > base_only + 0.1
    # Serving = base fold-in + residual fold-in of the row's residuals.
    manual = stack.base_.predict(X_hist[:4])
    resid = X_hist[:4].copy()
    resid.data = resid.data - manual[resid.nonzero()]
    np.testing.assert_allclose(stack.predict(X_hist[:4]),
                               np.clip(manual + stack.residual_.predict(resid), *stack.rating_range_),
                               rtol=1e-5, atol=1e-5)


def test_the_fit_is_one_epoch_of_the_seam_whose_loss_is_the_stacks_training_error(planted):
    X_hist, _ = planted
    stack = ResidualRegressor(BaselineBiases(damping=2.0), MFRegressor(**RESIDUAL, max_iter=10), clip=False,
                              random_state=0, device="cpu").fit(X_hist)
    assert stack.n_iter_ == 1 and stack.best_iteration_ == 1
    (record,) = stack.history_
    assert set(record) == {"epoch", "loss", "val_loss", "lr", "time"}
    assert record["epoch"] == 1 and record["val_loss"] is None and record["lr"] is None
    # Without clipping, the loss is the mean squared error of the stack's own training predictions.
    rows, cols = X_hist.nonzero()
    mse = np.mean((X_hist.data - stack.predict(X_hist)[rows, cols]) ** 2)
    assert record["loss"] == pytest.approx(mse, rel=1e-4)
    assert stack.best_score_ == pytest.approx(-record["loss"])
    # Each stage was fitted by its own loop, and keeps its own history.
    assert len(stack.residual_.history_) == 10 and stack.base_.n_iter_ >= 1


def test_overrides_reach_both_stages_and_the_given_estimators_stay_unfitted(planted, stack):
    assert stack.base_.device == stack.residual_.device == "cpu"
    assert stack.base_.random_state == stack.residual_.random_state == 0
    assert stack.device_.type == "cpu"
    assert not hasattr(stack.base, "n_items_") and not hasattr(stack.residual, "n_items_")  # clones were fitted


def test_inference_reads_the_parameters_of_the_fit(planted):
    X_hist, _ = planted
    stack = ResidualRegressor(BaselineBiases(damping=2.0), MFRegressor(**RESIDUAL, max_iter=5), random_state=0,
                              device="cpu").fit(X_hist)
    before = stack.predict(X_hist[:20])
    low, high = stack.rating_range_
    assert before.min() >= low and before.max() <= high
    stack.set_params(clip=False)
    np.testing.assert_array_equal(stack.predict(X_hist[:20]), before)
    unclipped = ResidualRegressor(BaselineBiases(damping=2.0), MFRegressor(**RESIDUAL, max_iter=5), clip=False,
                                  random_state=0, device="cpu").fit(X_hist).predict(X_hist[:20])
    assert unclipped.min() < low or unclipped.max() > high  # so the check above could fail
    np.testing.assert_allclose(np.clip(unclipped, low, high), before, rtol=1e-5, atol=1e-5)


def test_residual_regressor_grid_searches_nested_parameters(planted):
    from sklearn.model_selection import GridSearchCV, KFold

    from skrec.metrics import get_scorer

    X_hist, y = planted
    stack = ResidualRegressor(BaselineBiases(damping=2.0), MFRegressor(n_factors=2, max_iter=5, batch_size=512),
                              random_state=0, device="cpu")
    search = GridSearchCV(stack, {"residual__n_factors": [2, 4]}, cv=KFold(2, shuffle=True, random_state=0),
                          scoring=get_scorer("neg_rmse")).fit(X_hist, y)
    assert search.best_params_["residual__n_factors"] in (2, 4)
    assert search.best_estimator_.residual_.n_factors in (2, 4)


def test_a_failed_fit_leaves_no_fitted_state(planted):
    X_hist, _ = planted
    stack = ResidualRegressor(BaselineBiases(damping=2.0), MFRegressor(fold_in_steps=0), device="cpu")
    with pytest.raises(ValueError, match="fold_in_steps must be an int >= 1; got 0."):
        stack.fit(X_hist)
    assert set(vars(stack)) == set(stack.get_params(deep=False))


@pytest.mark.parametrize("name, value", [("residual", object()), ("base", Popularity())])
def test_residual_regressor_rejects_what_is_not_a_regressor(name, value):
    X = sp.csr_matrix(np.array([[5.0, 4, 0], [4, 0, 1]]))
    with pytest.raises(TypeError, match=f"{name} must be None or a skrec regressor"):
        ResidualRegressor(**{name: value}).fit(X)
