"""What every benchmark command shares: where the data is, the protocol splits, the header.

The splits follow DESIGN.md §4 and are seeded, so every model (and every peer) is measured
on the same users and items:

- :func:`p2_split` — strong generalization: disjoint train / validation / test users; each
  validation and test row is split 80/20 (fold in the 80 %, rank the 20 %).
- :func:`p3_split` — leave-last-out by order: the last item is the test target, the one
  before it the validation target.
- :func:`p4_split` — per-user random 80/20 holdout of every row (plus a validation split of
  the 80 % for tuning).
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import sklearn
import torch
from sklearn.utils import Bunch

import skrec
from skrec.datasets import get_data_home, load_movielens, read_interactions, read_sequences
from skrec.datasets._base import _download
from skrec.model_selection import filter_interactions, holdout_split, split_users

__all__ = ["BEAUTY_SHA256", "BEAUTY_URL", "default_data_home", "fetch_file", "positives_with_time", "environment", "environment_info", "resolve_device", "timed",
           "load_ml1m_positives", "load_ml1m_order", "load_beauty_order", "seconds_per_epoch", "p2_split", "p3_split",
           "p4_split", "synthetic_matrix", "ML10M_SHAPE", "ML1M_SHAPE"]

ML10M_SHAPE = (69_878, 10_681, 7_600_000)  # users, items, interactions (speed benchmarks)
ML1M_SHAPE = (6_040, 3_706, 1_000_000)


_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
# S3-Rec's preprocessed Amazon Beauty sequences (Zhou et al., CIKM 2020), as its repository
# publishes them; the sha256 of the file the published results were computed on.
BEAUTY_URL = "https://raw.githubusercontent.com/RUCAIBox/CIKM2020-S3Rec/master/data/Beauty.txt"
BEAUTY_SHA256 = "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8"


def default_data_home():
    """``$SKREC_DATA``, else a ``shared/data`` folder beside the repository when there is one,
    else skrec's cache folder (:func:`skrec.datasets.get_data_home`), where downloads go."""
    env = os.environ.get("SKREC_DATA")
    if env:
        return Path(env)
    return _SHARED if _SHARED.is_dir() else get_data_home()


def fetch_file(url, sha256, path, what):
    """``path``, downloaded from ``url`` first when it is missing (progress bar, sha256 checked).

    Raises ``OSError`` naming the file, the address and the fix when the download fails or the
    checksum does not match; a partial download is never left at ``path``.
    """
    path = Path(path)
    if path.is_file():
        return path
    part = path.with_name(path.name + ".part")
    fix = (f"To fix it, download {url} to {path} yourself, or set SKREC_DATA (or pass --data-home) to a "
           f"folder that holds {path.parent.name}/{path.name}.")
    _download(url, part, f"{what}: file {path.name!r} is missing under {path.parent} and downloading {url} failed",
              fix)
    got = hashlib.sha256(part.read_bytes()).hexdigest()
    if got != sha256:
        part.unlink(missing_ok=True)
        raise OSError(f"{what}: the download of {url} failed its checksum (sha256 {got}, expected {sha256}). {fix}")
    os.replace(part, path)
    return path


def resolve_device(device=None):
    """``torch.device`` of ``device``: ``None`` or ``"auto"`` is CUDA when available, else the CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def environment_info(device=None):
    """The run's date, device and versions, as a dict (the JSON side of :func:`environment`).

    Returns
    -------
    dict
        ``date`` (``YYYY-MM-DD``), ``device`` (the GPU's name, or ``"CPU (N cores)"``),
        ``device_type`` (``"cuda"`` or ``"cpu"``), ``machine`` and ``versions`` (skrec,
        torch, scikit-learn, python).
    """
    dev = resolve_device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    return {"date": time.strftime("%Y-%m-%d"), "device": name, "device_type": dev.type,
            "machine": platform.machine(),
            "versions": {"skrec": skrec.__version__, "torch": torch.__version__,
                         "scikit-learn": sklearn.__version__, "python": platform.python_version()}}


def environment(device=None, info=None):
    """One line naming the versions and the device, printed under every table (``info``: an
    :func:`environment_info` dict already taken)."""
    info = info or environment_info(device)
    v = info["versions"]
    return (f"skrec {v['skrec']}, torch {v['torch']}, scikit-learn {v['scikit-learn']}, "
            f"python {v['python']}, {info['machine']}, device: {info['device']}, date {info['date']}")


@contextmanager
def timed(record, key):
    """``with timed(d, "fit_s"): ...`` stores the wall-clock seconds (CUDA synchronised)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        record[key] = time.perf_counter() - t0


def seconds_per_epoch(epoch, epochs):
    """Call ``epoch()`` once to warm up, then time ``epochs`` calls; mean seconds per call."""
    epoch()
    record = {}
    with timed(record, "s"):
        for _ in range(epochs):
            epoch()
    return record["s"] / epochs


def load_ml1m_positives(data_home=None):
    """MovieLens-1M ratings >= 4 as binary positives, users with >= 5 positives (P2/P4 data).

    Returns the filtered CSR (6,034 × 3,533 on the shared copy).
    """
    X, _, _ = filter_interactions(_ml1m_positives(data_home).ratings, threshold=4, binarize=True, min_user=5)
    return X


def load_ml1m_order(data_home=None):
    """MovieLens-1M ratings >= 4 with timestamps: ``Bunch(order=CSR of timestamps, ratings=CSR)``.

    Users with >= 5 interactions (P3 data); values of ``order`` are Unix timestamps.
    """
    raw = _ml1m_positives(data_home)
    keep = np.flatnonzero(np.diff(raw.ratings.indptr) >= 5)
    return Bunch(order=raw.timestamps[keep], ratings=raw.ratings[keep])


def _ml1m_positives(data_home):
    """ML-1M's ratings >= 4 with timestamps: the shared copy's ``ratings_ge4_complete.dat`` when
    present, else GroupLens' archive (``ratings.dat``, downloaded when missing), filtered alike.
    Either way only the movies with a rating >= 4 are columns."""
    data_home = Path(data_home) if data_home else default_data_home()
    shared = data_home / "ml-1m" / "ratings_ge4_complete.dat"
    if shared.is_file():
        return read_interactions(shared)
    ml = load_movielens("1m", data_home=data_home)
    return positives_with_time(ml.ratings, ml.timestamps)


def positives_with_time(ratings, timestamps, *, min_user=1):
    """The ratings >= 4 and their timestamps, over the users with >= ``min_user`` of them and
    the movies with at least one: ``Bunch(ratings, timestamps)`` (CSR, the same pattern)."""
    X, rows, cols = filter_interactions(ratings, threshold=4, min_user=min_user, min_item=1)
    order = sp.csr_matrix(timestamps.multiply(ratings >= 4))[rows][:, cols]
    order.eliminate_zeros()
    return Bunch(ratings=X, timestamps=sp.csr_matrix(order))


def load_beauty_order(data_home=None):
    """S3-Rec Amazon Beauty: ``Bunch(order=CSR of 1-based positions, sequences=list)``."""
    data_home = Path(data_home) if data_home else default_data_home()
    raw = read_sequences(fetch_file(BEAUTY_URL, BEAUTY_SHA256, data_home / "s3rec" / "Beauty.txt",
                                    "Amazon Beauty (S3-Rec)"))
    return Bunch(order=raw.order, sequences=raw.sequences)


def p2_split(X, *, test_size=0.1, validation_size=0.1, holdout=0.2, random_state=0):
    """Strong generalization (P2): ``Bunch(train, val_hist, val_held, test_hist, test_held, rows)``.

    ``train`` holds the training users' whole rows; ``*_hist`` the 80 % folded in and
    ``*_held`` the 20 % ranked, for the validation and test users.
    """
    X = sp.csr_matrix(X)
    tr, va, te = split_users(X, test_size=test_size, validation_size=validation_size,
                             random_state=random_state)
    val_hist, val_held = holdout_split(X[va], holdout, random_state=random_state + 1)
    test_hist, test_held = holdout_split(X[te], holdout, random_state=random_state + 2)
    return Bunch(train=X[tr], val_hist=val_hist, val_held=val_held, test_hist=test_hist,
                 test_held=test_held, rows=Bunch(train=tr, validation=va, test=te))


def p3_split(order):
    """Leave-last-out (P3) on an order matrix (larger = later, ties by item index).

    Returns ``Bunch(train, val_hist, val_held, test_hist, test_held)``: ``train`` is every
    row without its last two items (for fitting with the validation target ``val_held``),
    ``val_hist = train``; ``test_hist`` is every row without its last item, ``test_held`` the
    last item. All values are the order keys.
    """
    order = sp.csr_matrix(order)
    test_hist, test_held = holdout_split(order, test_size=1, strategy="last", order=order)
    val_hist, val_held = holdout_split(test_hist, test_size=1, strategy="last", order=test_hist)
    return Bunch(train=val_hist, val_hist=val_hist, val_held=val_held, test_hist=test_hist,
                 test_held=test_held)


def p4_split(X, *, holdout=0.2, validation=0.2, random_state=0):
    """Per-user random holdout (P4): ``Bunch(train, test_held, fit, val_held)``.

    ``train``/``test_held``: 80/20 of every row. For tuning, ``fit``/``val_held`` split the
    training part once more (``validation`` of every row), so the test part is never seen.
    """
    train, test_held = holdout_split(X, holdout, random_state=random_state)
    fit, val_held = holdout_split(train, validation, random_state=random_state + 1)
    return Bunch(train=train, test_held=test_held, fit=fit, val_held=val_held)


def synthetic_matrix(n_users, n_items, nnz, *, kind="explicit", random_state=0):
    """A random CSR of the given shape with ~``nnz`` distinct entries, for speed benchmarks.

    Items follow a Zipf-like popularity (exponent 0.8) and users a log-normal activity, as
    in MovieLens; ``kind="explicit"`` stores ratings 1-5, ``"implicit"`` ones. Built with
    vectorized numpy (a few seconds for ML-10M's shape). Not for quality claims.
    """
    rng = np.random.default_rng(random_state)
    user_w = rng.lognormal(0.0, 1.0, n_users)
    item_w = 1.0 / np.arange(1, n_items + 1) ** 0.8
    def sample(weights, size):  # inverse-CDF draws, much faster than rng.choice(p=...)
        cdf = np.cumsum(weights)
        return np.minimum(np.searchsorted(cdf, rng.random(size) * cdf[-1]), weights.size - 1)

    item_order = rng.permutation(n_items)
    keys = np.empty(0, dtype=np.int64)
    draw = int(nnz * 1.3)
    while keys.size < nnz and draw < 50 * nnz:  # dense shapes collide more: draw again, larger
        users, items = sample(user_w, draw), item_order[sample(item_w, draw)]
        keys = np.unique(np.concatenate([keys, users.astype(np.int64) * n_items + items]))
        draw *= 2
    keys = rng.permutation(keys)[:nnz]
    keys.sort()
    values = (rng.integers(1, 6, size=keys.size).astype(np.float64) if kind == "explicit"
              else np.ones(keys.size))
    return sp.csr_matrix((values, (keys // n_items, keys % n_items)), shape=(n_users, n_items))
