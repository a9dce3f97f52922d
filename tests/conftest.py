"""Shared fixtures: where the real data lives, a CUDA marker that skips without CUDA, and
planted-data generators."""

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

REPO = Path(__file__).resolve().parents[1]

# cuBLAS is bit-reproducible only with a fixed workspace; set before CUDA starts, so that the
# tests that switch on torch.use_deterministic_algorithms can run on a GPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def shared_data_home():
    """The real data folder: $SKREC_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("SKREC_DATA")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_home():
    path = shared_data_home()
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (set SKREC_DATA to run these tests)")
    return path


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skipif(not torch.cuda.is_available(),
                              reason="CUDA is not available on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


# ------------------------------------------------------------------ planted data generators
# Plain functions (import them: ``from conftest import planted_biases``) so that a test can
# ask for the size and seed it needs.
def planted_biases(seed=0, n_users=300, n_items=120, density=0.15, noise=0.2):
    """Ratings ``3.4 + b_u + b_i + noise`` at random positions; returns ``(X, b_u, b_i)``."""
    rng = np.random.default_rng(seed)
    bu, bi = rng.normal(0, 0.6, n_users), rng.normal(0, 0.9, n_items)
    X = sp.random(n_users, n_items, density=density, format="coo", random_state=seed)
    vals = 3.4 + bu[X.row] + bi[X.col] + rng.normal(0, noise, X.nnz)
    return sp.csr_matrix((vals, (X.row, X.col)), shape=X.shape), bu, bi


def planted_ratings(seed=0, n_users=80, n_items=30, density=0.4):
    """Small 1-5 star ratings with user and item biases: a quick fit for loop tests."""
    rng = np.random.default_rng(seed)
    bu, bi = rng.normal(0, 0.5, n_users), rng.normal(0, 0.8, n_items)
    X = sp.random(n_users, n_items, density=density, format="coo", random_state=seed)
    vals = np.clip(np.round(3.5 + bu[X.row] + bi[X.col] + rng.normal(0, 0.3, X.nnz)), 1, 5)
    return sp.csr_matrix((vals, (X.row, X.col)), shape=X.shape)


def planted_groups(n_users=60, n_items=40, n_groups=4, seed=0):
    """Users in groups; each group rates 6 of its own items high (4-5) and 2 others low (1-2)."""
    rng = np.random.default_rng(seed)
    group = np.arange(n_users) % n_groups
    item_group = np.arange(n_items) % n_groups
    rows, cols, vals = [], [], []
    for u in range(n_users):
        own = np.flatnonzero(item_group == group[u])
        other = np.flatnonzero(item_group != group[u])
        rows += [u] * 8
        cols += list(rng.choice(own, size=6, replace=False)) + list(rng.choice(other, size=2, replace=False))
        vals += list(rng.integers(4, 6, size=6)) + list(rng.integers(1, 3, size=2))
    return sp.csr_matrix((np.array(vals, float), (rows, cols)), shape=(n_users, n_items))


def planted_popularity(seed=0, n_users=400, n_items=80, top=0.5, bottom=0.0125):
    """Implicit feedback: item ``i`` is held independently with a probability falling
    linearly from ``top`` (item 0) to ``bottom`` (the last item)."""
    rng = np.random.default_rng(seed)
    p = np.linspace(top, bottom, n_items)
    return sp.csr_matrix((rng.random((n_users, n_items)) < p).astype(float))


def planted_implicit(n_users=300, n_items=60, n_groups=4, per_user=8, noise=1, seed=0):
    """Users in groups; each group's positives are drawn from its own item block, plus noise."""
    rng = np.random.default_rng(seed)
    group = rng.integers(n_groups, size=n_users)
    block = n_items // n_groups
    rows, cols = [], []
    for u in range(n_users):
        own = rng.choice(np.arange(group[u] * block, (group[u] + 1) * block), size=per_user, replace=False)
        other = rng.choice(n_items, size=noise, replace=False)
        items = np.unique(np.concatenate([own, other]))
        rows += [u] * items.size
        cols += list(items)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))


def plain_ease(**params):
    """``skrec.EASE`` without its default dropout and normalisations: Steck's closed form, which
    the EASE and gradient item-item tests compare to."""
    from skrec import EASE

    return EASE(**{"input_dropout": 0.0, "user_norm": 0.0, "item_norm": 0.0, **params})


@pytest.fixture(scope="module")
def implicit_pair():
    """``(X_history, HeldOut)`` of :func:`planted_implicit`: 20 % of each row held out."""
    from skrec.model_selection import holdout_split

    return holdout_split(planted_implicit(seed=0), 0.2, random_state=0, as_heldout=True)


@pytest.fixture(scope="module")
def rating_pair():
    """``(X_history, HeldOut)`` of :func:`planted_biases`: 20 % of each row held out."""
    from skrec.model_selection import holdout_split

    return holdout_split(planted_biases(seed=0)[0], 0.2, random_state=0, as_heldout=True)
