"""Reference models the benchmark suite sets beside skrec's estimators.

Each is a small scikit-learn estimator with skrec's inference surface — ``fit(X, y=None)``
(``y``, when given, is added to ``X`` as skrec's estimators do), ``recommend(X, k,
exclude_seen=True)`` for the rankers and ``predict_at(X, y)`` for the rating models — so
:func:`skrec.model_selection.evaluate` and ``GridSearchCV`` score them exactly as they score
skrec's models:

- :class:`Popularity` and :class:`EASE` (Steck 2019) in plain numpy, always available;
- :class:`ImplicitALS` and :class:`ImplicitBPR` wrap the ``implicit`` package, and
  :class:`SurpriseRating` wraps ``scikit-surprise`` (``BaselineOnly``, ``SVD``, ``SVDpp``);
  both come with ``pip install -e ".[bench]"``. Without them the suite reports the rows
  as missing.

Rows that were not seen in ``fit`` are folded in the way each library allows: implicit's
ALS recomputes the user's factors (``recalculate_user=True``); implicit's BPR cannot (its
issue #658), so with ``same_users=False`` its user vectors are a ridge projection of the
history on its item factors, computed here; with ``same_users=True`` (protocols P3 and P4,
where row ``u`` of ``X`` is training user ``u``) the learned user factors are used.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack
from sklearn.base import BaseEstimator

__all__ = ["Popularity", "EASE", "ImplicitALS", "ImplicitBPR", "ImplicitItemKNN", "SurpriseRating", "available"]


def available(module):
    """Whether the optional package ``module`` (``"implicit"``, ``"surprise"``) is installed."""
    return importlib.util.find_spec(module) is not None


def _training_matrix(X, y):
    X = sp.csr_matrix(X, dtype=np.float64)
    return X + sp.csr_matrix(y, dtype=np.float64) if y is not None else X


def _top_k(scores, X, k, exclude_seen):
    """Row-wise top-k of a dense score matrix, the history of ``X`` masked when asked."""
    scores = np.array(scores, dtype=np.float64)
    if exclude_seen:
        rows, cols = sp.csr_matrix(X).nonzero()
        scores[rows, cols] = -np.inf
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
    ids = np.take_along_axis(part, order, 1)
    return ids, np.take_along_axis(scores, ids, 1)


class _Ranker(BaseEstimator):
    def recommend(self, X, k=10, *, exclude_seen=True):
        """Top-``k`` item ids and scores for each row of ``X``."""
        return _top_k(self._scores(sp.csr_matrix(X)), X, k, exclude_seen)


class Popularity(_Ranker):
    """Rank items by their number of training interactions.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix([[1, 1, 0], [0, 1, 0], [0, 1, 1]])
    >>> Popularity().fit(X).recommend(X[:1], k=1)[0].tolist()
    [[2]]
    """

    def fit(self, X, y=None):
        self.counts_ = np.asarray((_training_matrix(X, y) != 0).sum(axis=0)).ravel().astype(np.float64)
        return self

    def _scores(self, X):
        return np.broadcast_to(self.counts_, (X.shape[0], self.counts_.size))


class EASE(_Ranker):
    """EASE (Steck 2019) in numpy: ``B = -P / diag(P)`` with ``P = (XᵀX + lam·I)⁻¹``, zero diagonal.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 1, 0], [0, 1, 1]])
    >>> EASE(lam=0.5).fit(X).recommend(sp.csr_matrix([[1, 0, 0]]), k=1)[0].tolist()
    [[1]]
    """

    def __init__(self, lam=500.0):
        self.lam = lam

    def fit(self, X, y=None):
        X = _training_matrix(X, y)
        G = (X.T @ X).toarray()
        G[np.diag_indices_from(G)] += self.lam
        # G is symmetric positive definite: a Cholesky inverse costs half of a general one
        chol, info = lapack.dpotrf(G, lower=False, overwrite_a=True)
        if info == 0:
            P, info = lapack.dpotri(chol, lower=False, overwrite_c=True)
        if info != 0:
            raise ValueError(f"lam: expected a value that makes X^T X + lam I positive definite, got {self.lam!r}")
        P = np.triu(P) + np.triu(P, 1).T
        self.B_ = -P / np.diag(P)[None, :]
        np.fill_diagonal(self.B_, 0.0)
        return self

    def _scores(self, X):
        return np.asarray(X @ self.B_)


class _Implicit(_Ranker):
    """Shared fit/recommend of implicit's matrix-factorization models (CPU)."""

    def fit(self, X, y=None):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # implicit's own advice: its threads, not BLAS's
            self.model_ = self._make()
            self.model_.fit(sp.csr_matrix(_training_matrix(X, y), dtype=np.float32), show_progress=False)
        self.n_train_rows_ = X.shape[0]
        return self

    def recommend(self, X, k=10, *, exclude_seen=True):
        """Top-``k`` item ids and scores for each row of ``X`` (see the module notes)."""
        X = sp.csr_matrix(X, dtype=np.float32)
        return _top_k(self._user_vectors(X) @ self.model_.item_factors.T, X, k, exclude_seen)


class ImplicitALS(_Implicit):
    """implicit's ``AlternatingLeastSquares``; new rows are folded in by implicit itself.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(60, 40, random_state=0).X
    >>> ids, _ = ImplicitALS(factors=8, iterations=3).fit(X).recommend(X[:2], k=5)
    """

    def __init__(self, factors=64, regularization=0.01, alpha=1.0, iterations=15, random_state=0):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state

    def _make(self):
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(factors=self.factors, regularization=self.regularization,
                                       alpha=self.alpha, iterations=self.iterations,
                                       random_state=self.random_state)

    def _user_vectors(self, X):
        # implicit recomputes the factors of the given rows from their items (one ALS step)
        return np.asarray(self.model_.recalculate_user(np.arange(X.shape[0]), X))


class ImplicitItemKNN(_Ranker):
    """implicit's item-item recommenders: ``CosineRecommender`` or ``BM25Recommender``.

    Any row is scored as implicit does, its raw values times the kept item-item weights;
    ``K`` counts the item itself, as in implicit.

    Examples
    --------
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(60, 40, random_state=0).X
    >>> ids, _ = ImplicitItemKNN("bm25", K=10).fit(X).recommend(X[:2], k=5)
    """

    def __init__(self, kind="cosine", K=20, K1=1.2, B=0.75):
        self.kind = kind
        self.K = K
        self.K1 = K1
        self.B = B

    def fit(self, X, y=None):
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        import warnings

        model = (CosineRecommender(K=self.K, num_threads=1) if self.kind == "cosine"
                 else BM25Recommender(K=self.K, K1=self.K1, B=self.B, num_threads=1))
        with warnings.catch_warnings():  # implicit converts its own weighted COO matrix back to CSR
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(sp.csr_matrix(_training_matrix(X, y), dtype=np.float32), show_progress=False)
        self.similarity_ = sp.csr_matrix(model.similarity)
        return self

    def _scores(self, X):
        return (sp.csr_matrix(X, dtype=np.float64) @ self.similarity_).toarray()


class ImplicitBPR(_Implicit):
    """implicit's ``BayesianPersonalizedRanking``; see the module notes for unseen rows.

    Examples
    --------
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(60, 40, random_state=0).X
    >>> ids, _ = ImplicitBPR(factors=8, iterations=3).fit(X).recommend(X[:2], k=5)
    """

    def __init__(self, factors=100, learning_rate=0.01, regularization=0.01, iterations=100,
                 projection_alpha=1.0, same_users=False, random_state=0):
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.projection_alpha = projection_alpha
        self.same_users = same_users
        self.random_state = random_state

    def _make(self):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(factors=self.factors, learning_rate=self.learning_rate,
                                           regularization=self.regularization,
                                           iterations=self.iterations, random_state=self.random_state)

    def _user_vectors(self, X):
        if self.same_users:
            if X.shape[0] != self.n_train_rows_:
                raise ValueError(f"X: same_users=True needs the {self.n_train_rows_} training rows, "
                                 f"got {X.shape[0]} rows")
            return self.model_.user_factors
        Q = np.asarray(self.model_.item_factors, dtype=np.float64)
        A = Q.T @ Q + self.projection_alpha * np.eye(Q.shape[1])
        return np.linalg.solve(A, (X @ Q).T).T  # ridge projection of every row at once


class SurpriseRating(BaseEstimator):
    """A scikit-surprise rating model (``"BaselineOnly"``, ``"SVD"``, ``"SVDpp"``) on a CSR.

    Users and items are the row and column indices; ``params`` go to the algorithm.

    Examples
    --------
    >>> from skrec.datasets import make_interactions
    >>> R = make_interactions(30, 20, kind="explicit", random_state=0).X
    >>> pred = SurpriseRating("SVD", {"n_epochs": 2}).fit(R).predict_at(R, R)
    """

    def __init__(self, algorithm="SVD", params=None, random_state=0):
        self.algorithm = algorithm
        self.params = params
        self.random_state = random_state

    def fit(self, X, y=None):
        import pandas as pd
        import surprise

        R = sp.coo_matrix(_training_matrix(X, y))
        frame = pd.DataFrame({"user": R.row, "item": R.col, "rating": R.data})
        data = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(R.data.min(), R.data.max())))
        params = dict(self.params or {})
        if self.algorithm != "BaselineOnly":
            params.setdefault("random_state", self.random_state)
        self.model_ = getattr(surprise, self.algorithm)(**params, verbose=False)
        self.model_.fit(data.build_full_trainset())
        return self

    def predict_at(self, X, y):
        """Predictions at ``y``'s pattern (rows of ``X`` are the training users)."""
        y = sp.csr_matrix(y)
        rows, cols = y.nonzero()
        pred = np.fromiter((self.model_.predict(u, i).est for u, i in zip(rows.tolist(), cols.tolist())),
                           dtype=np.float64, count=rows.size)
        return sp.csr_matrix((pred, (rows, cols)), shape=y.shape)
