"""Every scikit-learn model-selection tool on skrec's ``(X_history, y_heldout)`` pair.

``HeldOut`` makes the held-out side an array-like that sklearn slices by rows while it stays
sparse. Each tool below runs on planted data with a ranking estimator (EASE) and a rating
estimator (BaselineBiases), and its numbers are checked against the same folds scored by
hand with ``evaluate`` / ``score``.
"""

import pickle

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import planted_implicit
from sklearn.base import clone
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (GridSearchCV, HalvingGridSearchCV, KFold, RandomizedSearchCV, cross_val_score,
                                     cross_validate, learning_curve, permutation_test_score, validation_curve)
from sklearn.utils import _safe_indexing, check_consistent_length, indexable
from sklearn.utils._param_validation import make_constraint

from skrec import EASE, BaselineBiases, Popularity
from skrec.metrics import get_scorer, make_scorers
from skrec.model_selection import HeldOut, evaluate, holdout_split

CV = KFold(3, shuffle=True, random_state=0)
RANKING = ["ndcg@10", "recall@20", "hit_rate@5"]
RATING = ["neg_rmse", "neg_mae"]


def ease():
    return EASE(alpha=10.0, input_dropout=0.0, user_norm=0.0, item_norm=0.0, device="cpu")  # plain EASE


def biases():
    return BaselineBiases(device="cpu")


def by_hand(estimator, X, y, train, test, metrics):
    """Fit on the training rows of (X, y), evaluate the test rows: the fold done by hand."""
    est = clone(estimator).fit(X[train], y.matrix[train])
    out = evaluate(est, X[test], y.matrix[test], [m.replace("neg_", "") for m in metrics])
    return {m: (-out[m[4:]] if m.startswith("neg_") else out[m]) for m in metrics}


def folds(X):
    return list(CV.split(X))


# ------------------------------------------------------------------ the container itself
def test_heldout_row_slicing_equals_csr_slicing(implicit_pair):
    _, y = implicit_pair
    csr = y.matrix
    rng = np.random.default_rng(0)
    keys = [rng.permutation(len(y))[:40], np.sort(rng.choice(len(y), 25, replace=False)),
            rng.random(len(y)) < 0.3, slice(10, 50), [3, 1, 3], 7, np.array([], dtype=np.int64)]
    for key in keys:
        part = _safe_indexing(y, key)  # what every sklearn tool calls
        assert isinstance(part, HeldOut) and part.overlap == y.overlap
        expected = csr[key]
        assert part.shape == expected.shape and (part.matrix != expected).nnz == 0
        assert (y[key, ...].matrix != expected).nnz == 0 and (y[(key,)].matrix != expected).nnz == 0
    assert y[5].shape == (1, y.shape[1])  # an int keeps the row 2-D, as a CSR matrix does


def test_heldout_passes_sklearn_input_checks(implicit_pair):
    X, y = implicit_pair
    assert make_constraint("array-like").is_satisfied_by(y)  # cross_validate's check on y
    assert not make_constraint("array-like").is_satisfied_by(y.matrix)  # why HeldOut exists
    check_consistent_length(X, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        check_consistent_length(X, y[:-1])
    X2, y2 = indexable(X, y)
    assert y2 is y and len(y) == X.shape[0] and y.nnz == y.matrix.nnz


def test_heldout_pickles_and_copies(implicit_pair):
    _, y = implicit_pair
    for loaded in (pickle.loads(pickle.dumps(y)), joblib.load(_dump(y))):
        assert isinstance(loaded, HeldOut) and loaded.overlap == y.overlap
        assert (loaded.matrix != y.matrix).nnz == 0
    original = y.matrix.copy()
    wrapped = HeldOut(original, overlap="drop")
    wrapped.matrix.data[:] = 5.0  # its own copy: the caller's matrix is untouched
    assert np.all(original.data == 1.0)
    assert HeldOut(wrapped).overlap == "raise" and (HeldOut(wrapped).matrix != wrapped.matrix).nnz == 0


def _dump(obj):
    import io

    buf = io.BytesIO()
    joblib.dump(obj, buf)
    buf.seek(0)
    return buf


def test_heldout_refuses_dense_conversion_and_bad_input(implicit_pair):
    _, y = implicit_pair
    with pytest.raises(TypeError, match=r"not converted to a dense array.*\.matrix"):
        np.asarray(y)
    with pytest.raises(ValueError, match="^overlap must be one of 'raise', 'drop'; got 'ignore'"):
        HeldOut(y.matrix, overlap="ignore")
    with pytest.raises(TypeError, match="^matrix must be"):
        HeldOut(None)
    with pytest.raises(ValueError, match="^matrix must be"):
        HeldOut(np.array([[1.0, np.nan]]))
    with pytest.raises(IndexError, match="^key must be a row selection"):
        y[0, 1]


def test_heldout_unwrapped_by_fit_score_predict_at_and_scorers(rating_pair):
    X, y = rating_pair
    est = biases().fit(X, y)
    plain = biases().fit(X, y.matrix)
    assert np.array_equal(est.predict(X), plain.predict(X))
    assert est.score(X, y) == plain.score(X, y.matrix)
    assert (est.predict_at(X, y) != plain.predict_at(X, y.matrix)).nnz == 0
    for name in RATING:
        assert get_scorer(name)(est, X, y) == get_scorer(name)(est, X, y.matrix)
    assert evaluate(est, X, y, ["rmse"]) == evaluate(est, X, y.matrix, ["rmse"])


def test_heldout_overlap_raise_or_drop():
    X = sp.csr_matrix(np.array([[1.0, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1]]))
    y_full = sp.csr_matrix(np.array([[1.0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0]]))  # (0, 0) overlaps X
    est = Popularity(device="cpu").fit(X)
    y = HeldOut(y_full)
    for call in (lambda: Popularity(device="cpu").fit(X, y), lambda: est.score(X, y),
                 lambda: evaluate(est, X, y), lambda: get_scorer("ndcg@2")(est, X, y)):
        with pytest.raises(ValueError, match=r"^y must be disjoint from X .*overlap='drop'.*got 1 positions"):
            call()
    # an explicitly stored zero is not an interaction, so not an overlap either
    coo = X.tocoo()
    X_zero = sp.csr_matrix((np.append(coo.data, 0.0), (np.append(coo.row, 1), np.append(coo.col, 3))),
                           shape=X.shape)  # a stored 0 at (1, 3), where y stores an entry
    assert X_zero.nnz == X.nnz + 1
    ok = HeldOut(sp.csr_matrix(np.array([[0.0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0]])))
    assert get_scorer("ndcg@2")(est, X_zero, ok) == get_scorer("ndcg@2")(est, X, ok.matrix)
    # exclude_seen=False allows an overlap, for a HeldOut as for a plain matrix
    assert evaluate(est, X, y, ["hit_rate@4"], exclude_seen=False) == \
        evaluate(est, X, y_full, ["hit_rate@4"], exclude_seen=False)
    drop = HeldOut(y_full, overlap="drop")
    without = y_full.toarray()
    without[0, 0] = 0
    without = sp.csr_matrix(without)
    assert est.score(X, drop) == est.score(X, without)
    assert get_scorer("recall@2")(est, X, drop) == get_scorer("recall@2")(est, X, without)
    fitted = Popularity(device="cpu").fit(X, drop)  # trains on X + (y - X): (0, 0) counted once
    assert np.array_equal(fitted.predict(X), Popularity(device="cpu").fit(X, without).predict(X))


def test_holdout_split_as_heldout_matches_plain_return():
    X = planted_implicit(seed=1)
    Xa, ya = holdout_split(X, 0.3, random_state=4, as_heldout=True)
    Xb, yb = holdout_split(X, 0.3, random_state=4)
    assert isinstance(ya, HeldOut) and sp.issparse(yb)
    assert (Xa != Xb).nnz == 0 and (ya.matrix != yb).nnz == 0
    with pytest.raises(TypeError, match="^as_heldout must be a bool"):
        holdout_split(X, as_heldout="yes")


# ------------------------------------------------------------------ the tools
def test_cross_validate_ranking_scores_equal_folds_by_hand(implicit_pair):
    X, y = implicit_pair
    out = cross_validate(ease(), X, y, cv=CV, scoring=make_scorers(RANKING), return_estimator=True,
                         return_indices=True, n_jobs=2, error_score="raise")
    assert len(out["estimator"]) == 3
    for f, (train, test) in enumerate(folds(X)):
        assert np.array_equal(out["indices"]["test"][f], test)
        est = out["estimator"][f]
        assert est.n_users_ == train.size  # fitted on the training rows only
        hand = by_hand(ease(), X, y, train, test, RANKING)
        for m in RANKING:
            assert out[f"test_{m}"][f] == pytest.approx(hand[m], abs=1e-12)
            assert evaluate(est, X[test], y.matrix[test], [m])[m] == pytest.approx(out[f"test_{m}"][f], abs=1e-12)
    assert out["test_ndcg@10"].mean() > 0.4  # the planted groups are learned


def test_cross_validate_rating_scores_equal_folds_by_hand(rating_pair):
    X, y = rating_pair
    out = cross_validate(biases(), X, y, cv=CV, scoring=make_scorers(RATING), return_estimator=True,
                         error_score="raise")
    for f, (train, test) in enumerate(folds(X)):
        hand = by_hand(biases(), X, y, train, test, RATING)
        for m in RATING:
            assert out[f"test_{m}"][f] == pytest.approx(hand[m], abs=1e-12)
    assert -out["test_neg_rmse"].mean() < 0.35  # noise 0.2 around planted biases


def test_cross_val_score_default_scoring_is_estimator_score(implicit_pair, rating_pair):
    for make, (X, y) in ((ease, implicit_pair), (biases, rating_pair)):
        scores = cross_val_score(make(), X, y, cv=CV, error_score="raise")
        hand = [clone(make()).fit(X[tr], y.matrix[tr]).score(X[te], y.matrix[te]) for tr, te in folds(X)]
        np.testing.assert_allclose(scores, hand, rtol=0, atol=1e-12)


def test_validation_curve_equals_by_hand_and_finds_the_regularization(implicit_pair):
    X, y = implicit_pair
    alphas = [0.1, 1000.0]
    train_scores, test_scores = validation_curve(ease(), X, y, param_name="alpha", param_range=alphas, cv=CV,
                                                 scoring=get_scorer("ndcg@10"), error_score="raise")
    assert test_scores.shape == (2, 3)
    for p, alpha in enumerate(alphas):
        for f, (train, test) in enumerate(folds(X)):
            est = ease().set_params(alpha=alpha)
            assert test_scores[p, f] == pytest.approx(by_hand(est, X, y, train, test, ["ndcg@10"])["ndcg@10"],
                                                      abs=1e-12)
            fitted = clone(est).fit(X[train], y.matrix[train])
            assert train_scores[p, f] == pytest.approx(
                evaluate(fitted, X[train], y.matrix[train], ["ndcg@10"])["ndcg@10"], abs=1e-12)
    # a near-zero ridge overfits the item-item weights: the held-out score says so
    assert test_scores[1].mean() > test_scores[0].mean() + 0.05


def test_learning_curve_slices_training_rows(rating_pair):
    X, y = rating_pair
    sizes, train_scores, test_scores = learning_curve(biases(), X, y, train_sizes=[0.2, 1.0], cv=CV,
                                                      scoring=get_scorer("neg_rmse"), error_score="raise")
    assert sizes.tolist() == [40, 200]  # of the 200 training rows of each fold
    for f, (train, test) in enumerate(folds(X)):
        for s, n in enumerate(sizes):
            hand = by_hand(biases(), X, y, train[:n], test, ["neg_rmse"])["neg_rmse"]
            assert test_scores[s, f] == pytest.approx(hand, abs=1e-12)
    assert test_scores[1].mean() > test_scores[0].mean()  # more rows: better item biases


def test_permutation_test_score_permuted_worse_than_real(implicit_pair, rating_pair):
    for make, (X, y), metric in ((ease, implicit_pair, "ndcg@10"), (biases, rating_pair, "neg_rmse")):
        shuffled = HeldOut(y, overlap="drop")  # rows of y are shuffled against X on purpose
        score, permuted, pvalue = permutation_test_score(make(), X, shuffled, cv=CV, n_permutations=4,
                                                         scoring=get_scorer(metric), random_state=0)
        hand = np.mean([by_hand(make(), X, y, tr, te, [metric])[metric] for tr, te in folds(X)])
        assert score == pytest.approx(hand, abs=1e-12)  # no overlap when aligned: "drop" changes nothing
        assert permuted.shape == (4,) and np.all(permuted < score - 0.1)
        assert pvalue == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="^y must be disjoint from X .*overlap='drop'"):
        permutation_test_score(ease(), *implicit_pair, cv=CV, n_permutations=1, random_state=0)


@pytest.mark.parametrize("search", ["GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV"])
def test_search_classes_accept_heldout_and_csr_alike(search, implicit_pair):
    X, y = implicit_pair
    grid = {"alpha": [0.1, 1.0, 1000.0]}
    make = {
        "GridSearchCV": lambda: GridSearchCV(ease(), grid, cv=CV, n_jobs=2, error_score="raise"),
        "RandomizedSearchCV": lambda: RandomizedSearchCV(ease(), grid, n_iter=3, cv=CV, random_state=0,
                                                         error_score="raise"),
        "HalvingGridSearchCV": lambda: HalvingGridSearchCV(ease(), grid, cv=CV, factor=2, min_resources=100,
                                                           random_state=0, error_score="raise"),
    }[search]
    with_heldout, with_csr = make().fit(X, y), make().fit(X, y.matrix)
    assert with_heldout.best_params_ == with_csr.best_params_ == {"alpha": 1000.0}
    np.testing.assert_array_equal(with_heldout.cv_results_["mean_test_score"],
                                  with_csr.cv_results_["mean_test_score"])
    if search != "HalvingGridSearchCV":  # halving scores subsamples; the full-data searches by hand
        best = np.mean([clone(ease()).set_params(alpha=1000.0).fit(X[tr], y.matrix[tr]).score(X[te], y.matrix[te])
                        for tr, te in folds(X)])
        assert with_heldout.best_score_ == pytest.approx(best, abs=1e-12)
    else:
        assert with_heldout.n_resources_ == [100, 200] and with_heldout.n_candidates_ == [3, 2]
    assert with_heldout.best_estimator_.n_users_ == X.shape[0]  # refitted on every row


def test_grid_search_rating_estimator_with_heldout(rating_pair):
    X, y = rating_pair
    search = GridSearchCV(biases(), {"damping": [0.0, 1000.0]}, cv=CV, scoring=make_scorers(RATING),
                          refit="neg_rmse", error_score="raise").fit(X, y)
    assert search.best_params_ == {"damping": 0.0}  # heavy damping shrinks the planted biases away
    for c, damping in enumerate([0.0, 1000.0]):
        hand = np.mean([by_hand(biases().set_params(damping=damping), X, y, tr, te, ["neg_rmse"])["neg_rmse"]
                        for tr, te in folds(X)])
        assert search.cv_results_["mean_test_neg_rmse"][c] == pytest.approx(hand, abs=1e-12)
