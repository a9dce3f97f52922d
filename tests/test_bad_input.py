"""The bad-input catalogue (DESIGN.md §6): each case is a ValueError/TypeError naming the argument."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError

from skrec import BaselineBiases, Popularity

rng = np.random.default_rng(0)
X = sp.random(30, 12, density=0.3, format="csr", random_state=0, data_rvs=lambda n: rng.integers(1, 6, n))
Y = sp.csr_matrix(X.shape)

nan_X = X.copy()
nan_X.data[0] = np.nan
inf_X = X.copy()
inf_X.data[1] = np.inf
dup = sp.coo_matrix((np.array([1.0, 2.0]), (np.array([0, 0]), np.array([1, 1]))), shape=(2, 3))

FIT_CASES = [
    # (id, estimator params, X, y, exception, message pattern)
    ("X-string", {}, "ratings.csv", None, TypeError, r"^X must be"),
    ("X-none", {}, None, None, TypeError, r"^X must be"),
    ("X-1d", {}, np.ones(5), None, ValueError, r"^X must be a 2-D"),
    ("X-3d", {}, np.ones((2, 2, 2)), None, ValueError, r"^X must be a 2-D"),
    ("X-object", {}, np.array([["a", "b"]], dtype=object), None, TypeError, r"^X must be a matrix of numbers"),
    ("X-nan", {}, nan_X, None, ValueError, r"^X must be free of NaN"),
    ("X-inf", {}, inf_X, None, ValueError, r"^X must be free of NaN"),
    ("X-dense-nan", {}, np.array([[1.0, np.nan]]), None, ValueError, r"^X must be free of NaN"),
    ("X-no-rows", {}, sp.csr_matrix((0, 5)), None, ValueError, r"^X must be a matrix with at least one row"),
    ("X-no-interaction", {}, sp.csr_matrix((4, 5)), None, ValueError, r"^X must be a matrix with at least one stored"),
    ("X-duplicates", {}, dup, None, ValueError, r"^X must be a matrix without duplicate"),
    ("y-shape", {}, X, sp.csr_matrix((30, 11)), ValueError, r"^y must be a matrix of the same shape"),
    ("y-overlap", {}, X, X, ValueError, r"^y must be disjoint from X"),
    ("y-type", {}, X, "test.csv", TypeError, r"^y must be"),
    ("damping-negative", {"damping": -1.0}, X, None, ValueError, r"^damping must be"),
    ("damping-pair-negative", {"damping": (1.0, -2.0)}, X, None, ValueError, r"^damping must be"),
    ("damping-triple", {"damping": (1, 2, 3)}, X, None, TypeError, r"^damping must be"),
    ("damping-string", {"damping": "big"}, X, None, TypeError, r"^damping must be"),
    ("solver", {"solver": "lbfgs"}, X, None, ValueError, r"^solver must be one of 'als', 'gradient'"),
    ("solver-old-name", {"solver": "adam"}, X, None, ValueError, r"^solver must be one of 'als', 'gradient'"),
    ("optimizer", {"solver": "gradient", "optimizer": "sparse_adam"}, X, None, ValueError,
     r"^optimizer must be one of 'adam', 'adamw', 'adagrad', 'sgd'"),
    ("user_norm", {"user_norm": "heavy"}, X, None, TypeError, r"^user_norm must be a float"),
    ("item_norm", {"item_norm": None}, X, None, TypeError, r"^item_norm must be a float"),
    ("regularization", {"regularization": "l1"}, X, None, ValueError, r"^regularization must be one of"),
    ("learning_rate-zero", {"learning_rate": 0.0}, X, None, ValueError, r"^learning_rate must be a float > 0"),
    ("learning_rate-str", {"learning_rate": "fast"}, X, None, TypeError, r"^learning_rate must be a float"),
    ("batch_size-zero", {"batch_size": 0}, X, None, ValueError, r"^batch_size must be an int >= 1"),
    ("batch_size-float", {"batch_size": 32.0}, X, None, TypeError, r"^batch_size must be an int"),
    ("max_iter-negative", {"max_iter": -3}, X, None, ValueError, r"^max_iter must be an int >= 1"),
    ("max_iter-bool", {"max_iter": True}, X, None, TypeError, r"^max_iter must be an int"),
    ("validation_fraction", {"validation_fraction": 1.5}, X, None, ValueError, r"^validation_fraction must be"),
    ("n_iter_no_change", {"n_iter_no_change": 0}, X, None, ValueError, r"^n_iter_no_change must be"),
    ("tol", {"tol": -1e-3}, X, None, ValueError, r"^tol must be a float >= 0"),
    ("tol-nan", {"tol": float("nan")}, X, None, ValueError, r"^tol must be a float"),
    ("early_stopping", {"early_stopping": "yes"}, X, None, TypeError, r"^early_stopping must be a bool"),
    ("lr_schedule", {"lr_schedule": "step"}, X, None, ValueError, r"^lr_schedule must be one of"),
    ("checkpoint-path", {"solver": "gradient", "checkpoint_every": 2}, X, None, ValueError,
     r"^checkpoint_path must be"),
    ("device-unknown", {"device": "tpu"}, X, None, ValueError, r"^device must be"),
    ("device-type", {"device": 3}, X, None, TypeError, r"^device must be"),
    ("random_state-negative", {"random_state": -1}, X, None, ValueError, r"^random_state must be"),
    ("random_state-string", {"random_state": "seed"}, X, None, TypeError, r"^random_state must be"),
    ("verbose", {"verbose": -1}, X, None, ValueError, r"^verbose must be"),
    ("clip", {"clip": 1}, X, None, TypeError, r"^clip must be a bool"),
]


@pytest.mark.parametrize("case", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit_rejects(case):
    _, params, X_in, y_in, exc, pattern = case
    est = BaselineBiases(**params)
    before = est.get_params()
    with pytest.raises(exc, match=pattern):
        est.fit(X_in, y_in)
    assert est.get_params() == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda():
    with pytest.raises(ValueError, match=r"^device must be 'cpu' or 'auto' on this machine"):
        BaselineBiases(device="cuda").fit(X)


@pytest.fixture(scope="module")
def model():
    return BaselineBiases(random_state=0).fit(X)


PREDICT_CASES = [
    ("columns", lambda m: m.predict(sp.csr_matrix((2, 11))), ValueError, r"^X must be a matrix with n_items_=12"),
    ("columns-recommend", lambda m: m.recommend(np.ones((2, 13))), ValueError, r"^X must be a matrix with n_items_"),
    ("k-zero", lambda m: m.recommend(X, k=0), ValueError, r"^k must be an int >= 1 and <= 12"),
    ("k-too-big", lambda m: m.recommend(X, k=13), ValueError, r"^k must be an int >= 1 and <= 12"),
    ("k-float", lambda m: m.recommend(X, k=2.5), TypeError, r"^k must be an int"),
    ("k-beyond-allow-list", lambda m: m.recommend(X, k=3, items=[0, 1]), ValueError, r"^k must be an int >= 1 and <= 2"),
    ("items-range", lambda m: m.recommend(X, items=[0, 12]), ValueError, r"^items must be item indices in \[0, 12\)"),
    ("items-negative", lambda m: m.recommend(X, k=1, items=[-1, 2]), ValueError, r"^items must be item indices"),
    ("items-dup", lambda m: m.recommend(X, k=1, items=[1, 1]), ValueError, r"^items must be item indices without duplicates"),
    ("items-float", lambda m: m.recommend(X, k=1, items=[1.0, 2.0]), TypeError, r"^items must be an array of integer"),
    ("items-empty", lambda m: m.recommend(X, k=1, items=[]), ValueError, r"^items must be a non-empty"),
    ("exclude_seen", lambda m: m.recommend(X, exclude_seen="no"), TypeError, r"^exclude_seen must be a bool"),
    ("score-y-shape", lambda m: m.score(X, sp.csr_matrix((3, 12))), ValueError, r"^y must be a matrix of the same shape"),
    ("predict_at-overlap", lambda m: m.predict_at(X, X), ValueError, r"^y must be disjoint from X"),
    ("transform-nan", lambda m: m.transform(nan_X), ValueError, r"^X must be free of NaN"),
]


@pytest.mark.parametrize("case", PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES])
def test_inference_rejects(model, case):
    _, call, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        call(model)


@pytest.mark.parametrize("method", ["predict", "recommend", "transform", "score"])
def test_not_fitted(method):
    with pytest.raises(NotFittedError):
        getattr(BaselineBiases(), method)(X)


def test_nan_training_loss_stops_with_a_hint():
    from skrec._torch import TrainingDiverged

    huge = X.copy()
    huge.data = huge.data * 1e30
    with pytest.raises(TrainingDiverged, match="smaller learning_rate"):
        BaselineBiases(solver="gradient", optimizer="sgd", learning_rate=1e6, max_iter=5, random_state=0).fit(huge)


def test_complex_input_is_rejected():
    # A ValueError, as scikit-learn's own validation raises for complex data.
    with pytest.raises(ValueError, match=r"^X must be a matrix of real numbers"):
        BaselineBiases().fit(np.array([[1 + 2j, 0]]))
    with pytest.raises(ValueError, match=r"^X must be a matrix of real numbers"):
        BaselineBiases().fit(sp.csr_matrix(np.array([[1 + 2j, 0]])))


def test_overlap_is_found_even_when_products_underflow():
    a = sp.csr_matrix(np.array([[1e-200, 0], [0, 1.0]]))
    b = sp.csr_matrix(np.array([[1e-200, 0], [0, 0]]))
    with pytest.raises(ValueError, match=r"^y must be disjoint from X"):
        BaselineBiases().fit(a, b)


def test_ranking_score_with_an_empty_y_names_y():
    model = Popularity().fit(X)
    with pytest.raises(ValueError, match=r"^y must be held-out interactions with at least one"):
        model.score(X, sp.csr_matrix(X.shape))
