"""The bad-input catalogue (DESIGN.md §6): each case is a ValueError/TypeError naming the argument."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError

from skrec import BaselineBiases, Popularity
from skrec.base import all_estimators

rng = np.random.default_rng(0)
X = sp.random(30, 12, density=0.3, format="csr", random_state=0, data_rvs=lambda n: rng.integers(1, 6, n))
Y = sp.csr_matrix(X.shape)

nan_X = X.copy()
nan_X.data[0] = np.nan
inf_X = X.copy()
inf_X.data[1] = np.inf
dup = sp.coo_matrix((np.array([1.0, 2.0]), (np.array([0, 0]), np.array([1, 1]))), shape=(2, 3))

# Finite float64 values that float32 (the training dtype) cannot hold, alone or in total.
huge_X = X.copy()
huge_X.data[0] = 1e300
negative_huge_X = X.copy()
negative_huge_X.data[2] = -1e39
summing_X = X.copy()
summing_X.data[:] = 1e38  # each fits in float32, their sum does not
coo = X.tocoo()
X_part = sp.csr_matrix((np.array([2e38]), (coo.row[:1], coo.col[:1])), shape=X.shape)
y_part = sp.csr_matrix((np.array([2e38]), (coo.row[1:2], coo.col[1:2])), shape=X.shape)  # X + y sums to 4e38
free = np.setdiff1d(np.arange(X.shape[1]), X[0].indices)[0]  # a position of row 0 not in X
y_huge = sp.csr_matrix((np.array([1e300]), (np.array([0]), np.array([free]))), shape=X.shape)

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
    ("X-beyond-float32", {}, huge_X, None, ValueError,
     r"^X must be a matrix of values float32 can hold \(\|value\| <= 3.4028235e\+38, the dtype models train in\); "
     r"got 1 stored value beyond it \(largest magnitude 1e\+300\)\.$"),
    ("X-negative-beyond-float32", {}, negative_huge_X, None, ValueError,
     r"^X must be a matrix of values float32 can hold.*largest magnitude 1e\+39"),
    ("X-dense-beyond-float32", {}, np.array([[1e39, 0.0], [0.0, 1.0]]), None, ValueError,
     r"^X must be a matrix of values float32 can hold"),
    ("X-sum-beyond-float32", {}, summing_X, None, ValueError,
     r"^X must be a matrix whose absolute values sum to at most 3.4028235e\+38 .*; got a sum of 1\.\d+e\+40 over "
     rf"{X.nnz} stored values\.$"),
    ("X-and-y-sum-beyond-float32", {}, X_part, y_part, ValueError, r"^X must be a matrix whose absolute values sum"),
    ("y-beyond-float32", {}, X, y_huge, ValueError, r"^y must be a matrix of values float32 can hold"),
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
    ("predict-beyond-float32", lambda m: m.predict(huge_X), ValueError, r"^X must be a matrix of values float32"),
    ("recommend-sum-beyond-float32", lambda m: m.recommend(summing_X), ValueError,
     r"^X must be a matrix whose absolute values sum"),
    ("transform-beyond-float32", lambda m: m.transform(negative_huge_X), ValueError,
     r"^X must be a matrix of values float32"),
    ("predict_at-y-beyond-float32", lambda m: m.predict_at(X, y_huge), ValueError,
     r"^y must be a matrix of values float32"),
    ("score-y-beyond-float32", lambda m: m.score(X, y_huge), ValueError, r"^y must be a matrix of values float32"),
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


def test_float32_bound_is_inclusive():
    from skrec.utils.validation import FLOAT32_MAX, check_interactions

    assert FLOAT32_MAX == float(np.finfo(np.float32).max)
    assert check_interactions(np.array([[FLOAT32_MAX, 0.0], [0.0, -1.0]])).nnz == 2
    assert check_interactions(sp.csr_matrix(np.array([[np.finfo(np.float32).max]], dtype=np.float32))).nnz == 1
    with pytest.raises(ValueError, match=r"^X must be a matrix of values float32 can hold"):
        check_interactions(np.array([[np.nextafter(FLOAT32_MAX, np.inf)]]))
    with pytest.raises(ValueError, match=r"^X must be a matrix whose absolute values sum"):
        check_interactions(np.array([[FLOAT32_MAX, -1e32]]))  # the magnitudes add up


def test_float32_bound_leaves_real_data_alone():
    from skrec.utils.validation import check_interactions

    # A million Unix timestamps in nanoseconds (order keys); tiny values are rounded by float32, not refused.
    cells = np.arange(10**6)
    ns = sp.csr_matrix((np.full(cells.size, 1.7e18), (cells // 1000, cells % 1000)), shape=(1000, 1000))
    assert check_interactions(ns).nnz == 10**6
    assert check_interactions(np.array([[1e-300, 1.0]])).nnz == 2


@pytest.mark.parametrize("cls", all_estimators(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("values", ["one-1e300", "all-1e38"])
def test_every_estimator_refuses_what_float32_cannot_hold(cls, values):
    # Before this check, BaselineBiases and MFRegressor crashed while filling their float32
    # global mean, and AutoencoderRecommender reported a diverged training loss.
    data = huge_X if values == "one-1e300" else summing_X
    est = cls._test_instances()[0]
    est.set_params(**{k: v for k, v in (("device", "cpu"), ("random_state", 0)) if k in est.get_params()})
    with pytest.raises(ValueError, match=r"^X must be a matrix (of values float32 can hold|whose absolute values sum)"):
        est.fit(data)
    assert not hasattr(est, "n_items_")
