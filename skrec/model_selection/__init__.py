"""Splits and evaluation for recommenders: per-row holdouts, held-out users, ``evaluate``.

Every split works on the stored entries of a user x item matrix and returns matrices of the
same shape (or row indices), so that an ``(X, y)`` pair -- the history of each row and its
held-out interactions -- passes through scikit-learn's model selection unchanged:
``KFold`` over rows slices ``X`` and ``y`` by the same rows, which is why skrec needs no
``UserKFold`` of its own. The search classes (``GridSearchCV``, ``RandomizedSearchCV``,
``HalvingGridSearchCV``) take a sparse ``y``; ``cross_validate``, ``cross_val_score``,
``validation_curve``, ``learning_curve`` and ``permutation_test_score`` take ``y`` wrapped
in :class:`HeldOut` (``as_heldout=True`` in the splits).

Functions
---------
holdout_split
    Hold out part of every row (random, or the last by an order key): P2, P3, P4.
time_split
    Global time split: interactions before a moment train, those after it are held out.
HeldOut
    The held-out matrix as a row-indexable target for every scikit-learn tool.
train_test_split_interactions
    Random split of the stored entries regardless of rows: P1 (rating holdout).
split_users
    Training / validation / test users: P2 (strong generalization).
filter_interactions
    Threshold, binarize and drop sparse users/items: P2 preparation.
evaluate
    Several ranking metrics from one ``recommend`` call, or RMSE/MAE from ``predict_at``.

Recipe: protocol P2 (strong generalization)
-------------------------------------------
Ratings >= 4 become positives, users with at least 5 positives are kept; 10 % of the users
are held out for testing and 10 % for validation; each held-out row is split 80/20 at
random, the 80 % folded in as the user's history and the 20 % ranked::

    from sklearn.model_selection import GridSearchCV, KFold
    from skrec.model_selection import (evaluate, filter_interactions,
                                       holdout_split, split_users)

    X, users, items = filter_interactions(R, min_user=5, threshold=4, binarize=True)
    train, val, test = split_users(X, test_size=0.1, validation_size=0.1, random_state=0)

    # fit on the training users, select hyper-parameters on the validation users
    X_val_hist, y_val = holdout_split(X[val], 0.2, random_state=0)
    model = SomeRanker(n_factors=64).fit(X[train])
    print(evaluate(model, X_val_hist, y_val, ("recall@20", "recall@50", "ndcg@100")))

    # or cross-validate over held-out users: each fold slices X_hist and y_held by rows
    X_hist, y_held = holdout_split(X[test], 0.2, random_state=0)
    search = GridSearchCV(SomeRanker(), {"alpha": [1e-4, 1e-3]},
                          cv=KFold(5, shuffle=True, random_state=0),
                          scoring=None).fit(X_hist, y_held)  # None: est.score(X, y)

Here ``fit(X_hist, y_held)`` trains on the union of the history and the held-out items of
the training folds, and scoring folds in each validation row of ``X_hist`` and ranks against
the same row of ``y_held`` (see the data contract in ``docs/architecture.md``).

Protocol P3 (leave last out) is ``holdout_split(X, 1, strategy="last", order=T)`` with ``T``
the timestamps, twice (test, then validation from the history, with the same ``T``);
protocol P4 is ``holdout_split(X, 0.2, random_state=0)``; protocol P1 is
``train_test_split_interactions(R, 0.2, random_state=0)`` or ``KFold(5, shuffle=True)`` over
the stored ratings.
"""

from skrec.model_selection._evaluate import evaluate
from skrec.model_selection._heldout import HeldOut
from skrec.model_selection._split import (
    filter_interactions,
    holdout_split,
    split_users,
    train_test_split_interactions,
)
from skrec.model_selection._time import time_split

__all__ = [
    "HeldOut",
    "evaluate",
    "filter_interactions",
    "holdout_split",
    "split_users",
    "time_split",
    "train_test_split_interactions",
]
