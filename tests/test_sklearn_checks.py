"""scikit-learn's own estimator checks, run over every registered skrec estimator.

skrec's ``y`` is not a label vector: it is a matrix of held-out interactions of the same
rows as ``X`` (``fit`` trains on ``X + y``, ``score`` ranks ``y``). sklearn's generic checks
pass a 1-D ``y`` of one label per row, which skrec rejects with a ``ValueError`` instead of
guessing what it means, and they expect ``predict`` to return one value per row, while a
recommender returns a score for every item. The checks that fail for these two reasons only
are listed below with that reason; every other check must pass.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skrec.base import all_estimators

Y_IS_HELD_OUT_INTERACTIONS = (
    "skrec's y is a matrix of held-out interactions of X's rows, not one label per row; "
    "the check passes a 1-D y, which is rejected with a ValueError"
)
PREDICT_SCORES_EVERY_ITEM = (
    "predict returns a score for every item, shape (n_rows, n_items), not one value per row"
)

# Checks that pass a 1-D y to fit or score (and so never reach what they test).
_Y_CHECKS = (
    "check_dict_unchanged", "check_dont_overwrite_parameters", "check_dtype_object", "check_estimator_sparse_tag",
    "check_estimators_dtypes", "check_estimators_fit_returns_self", "check_estimators_nan_inf",
    "check_estimators_overwrite_params", "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_fit2d_1feature", "check_fit2d_1sample", "check_fit2d_predict1d", "check_fit_check_is_fitted",
    "check_fit_idempotent", "check_fit_score_takes_y", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_n_features_in", "check_n_features_in_after_fitting",
    "check_pipeline_consistency", "check_positive_only_tag_during_fit", "check_readonly_memmap_input",
)
_Y_TRANSFORMER_CHECKS = ("check_transformer_data_not_an_array", "check_transformer_general",
                         "check_transformer_n_iter")


def _expected_failures(estimator):
    failures = {name: Y_IS_HELD_OUT_INTERACTIONS for name in _Y_CHECKS}
    if estimator.__sklearn_tags__().transformer_tags is not None:
        failures.update({name: Y_IS_HELD_OUT_INTERACTIONS for name in _Y_TRANSFORMER_CHECKS})
    failures["check_estimator_sparse_array"] = PREDICT_SCORES_EVERY_ITEM
    failures["check_estimator_sparse_matrix"] = PREDICT_SCORES_EVERY_ITEM
    return failures


def _instances():
    for cls in all_estimators():
        est = cls._test_instances()[0]
        if "device" in est.get_params():
            est.set_params(device="cpu")
        yield est


@parametrize_with_checks(list(_instances()), expected_failed_checks=_expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
