"""Property-based tests over every public entry point.

Every public name of :mod:`skrec.metrics`, :mod:`skrec.model_selection` and
:mod:`skrec.datasets` (their ``__all__``; classes with their public methods) and every
public method of every registered estimator (``skrec.base.all_estimators()``, in each
configuration of its ``_test_instances()``, on the CPU) is called on generated input: small
matrices in every accepted layout (CSR, CSC, COO, sparse arrays, dense arrays, nested lists,
object, integer, boolean and float32 dtypes, unsorted indices, explicit zeros, duplicate
entries) with empty rows and columns, holding ordinary values (ratings, counts, reals in
[-1e3, 1e3], negatives included) or extreme ones (any finite float64 from 5e-324 to 1.8e308,
NaN, inf); id arrays, data frames and text files for the readers; and, in one scene in three,
arguments of the wrong type or range.

The property: a call returns a well-formed result (the documented shape and dtype, finite
numbers, the invariants of rankings and splits) or raises an error that is an answer, not a
crash:

- a ``ValueError`` / ``TypeError`` in skrec's wording (``"<argument> must be <expected>;
  got <received>."``) or naming one of the call's arguments; scikit-learn's
  ``NotFittedError``; ``OSError`` / ``LookupError`` from the readers (a missing file, an
  unknown encoding), as ``open`` raises them.
- Values float32 (the training dtype) cannot hold, or whose absolute values sum beyond its
  range, and NaN/inf, must be refused by validation with that message naming the matrix
  (``X``, ``y``), before any training.
- :class:`skrec._torch.TrainingDiverged` (a NaN/inf training loss) on ordinary values is a
  crash. On extreme values that validation accepts (1e30 is a float32, its square is not) an
  overflowing loss is the honest outcome and accepted, and so are non-finite predictions
  computed from such values; ordinary input must give finite ones.
- The crashes this test found beyond validation were fixed; their minimal reproducers stay
  at the end of this file as regression tests.

Arguments are drawn by parameter name (``ARGUMENTS``, ``ESTIMATOR_ARGUMENTS``), so a new
public function, class, estimator or configuration joins by itself;
``test_every_entry_point_is_fuzzed`` fails naming any public name, parameter or estimator
method without a strategy, and ``test_zz_summary`` (last) prints the number of examples and
fails if an entry point never got past validation. Examples are bounded and derandomized
(the same in every run); ``SKREC_FUZZ_SCALE=10`` runs ten times as many and
``SKREC_FUZZ_VERBOSE=1`` prints the outcomes of each entry point.
"""

from __future__ import annotations

import collections
import inspect
import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

import skrec.datasets
import skrec.metrics
import skrec.model_selection
from skrec import BaselineBiases, Popularity
from skrec._torch import TrainingDiverged
from skrec.base import all_estimators
from skrec.metrics._names import RANKING_METRIC_NAMES
from skrec.model_selection import HeldOut
from skrec.utils.validation import FLOAT32_MAX

SCALE = float(os.environ.get("SKREC_FUZZ_SCALE", "1"))


def fuzz_settings(n):
    """``n`` examples (times SKREC_FUZZ_SCALE), reproducible, no deadline, no example database."""
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), phases=[p for p in Phase if p is not Phase.explain])


CALLS = collections.Counter()  # entry point -> calls made
EXAMPLES = collections.Counter()  # test -> generated examples
OUTCOMES = collections.Counter()  # (entry point, "ok" / "refused" / "diverged") -> calls
REASONS = collections.Counter()  # (entry point, start of the message) -> refusals
MODULES = (skrec.metrics, skrec.model_selection, skrec.datasets)
EXCLUDED = {  # public names that are not fuzzed, and why
    "skrec.datasets.load_movielens": "downloads or reads the real data sets (tests/test_datasets.py)",
    "skrec.datasets.get_data_home": "resolves and creates a folder in the user's home; no data input",
}
# skrec's wording: the argument (or method) at fault, what it must be, and "; got <received>"
MESSAGE = re.compile(r"^[A-Za-z_][\w\[\]'.]*( and \w+)? (must|needs) .+; got .+", re.S)

# ------------------------------------------------------------------------------- values
ORDINARY = st.one_of(st.integers(1, 5).map(float), st.just(1.0),  # stored zeros: the explicit_zeros layout
                     st.floats(-1e3, 1e3).filter(lambda v: abs(v) >= 1e-3))
SPECIAL = [1e300, -1e300, 1.7976931348623157e308, FLOAT32_MAX, -FLOAT32_MAX, 3.5e38, 1e38, -1e38, 4e37,
           1e30, -1e30, 1e20, 1e10, 1e6, -1e6, 1e-300, -1e-300, 5e-324, 1e-45, 1e-30, 1e-8]
EXTREME = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=False, allow_infinity=False))
NONFINITE = st.sampled_from([math.nan, math.inf, -math.inf])
MODES = {"ordinary": ORDINARY, "extreme": st.one_of(ORDINARY, EXTREME),
         "nonfinite": st.one_of(ORDINARY, NONFINITE)}
LAYOUTS = ["csr", "csr", "csr", "csc", "coo", "csr_array", "coo_array", "dense", "list", "object", "unsorted",
           "explicit_zeros", "int", "float32", "bool"]


@dataclass
class Matrix:
    """A generated matrix argument: what is passed, and what validation must make of it."""

    value: object
    ref: sp.csr_matrix | None  # float64 canonical CSR of what is passed (None: duplicate entries)
    layout: str

    @property
    def shape(self):
        return self.ref.shape if self.ref is not None else self.value.shape

    @property
    def nonfinite(self):
        return self.ref is not None and not np.isfinite(self.ref.data).all()

    @property
    def beyond(self):
        """Values float32 cannot hold, or whose absolute sum it cannot hold (finite ones)."""
        if self.ref is None or self.nonfinite:
            return False
        with np.errstate(over="ignore"):
            return bool(np.abs(self.ref.data).max(initial=0) > FLOAT32_MAX
                        or np.abs(self.ref.data).sum() > FLOAT32_MAX)

    @property
    def extreme(self):
        """Anything but ordinary values (zero or 1e-3 <= |v| <= 1e3)."""
        if self.ref is None:
            return False
        v = np.abs(self.ref.data)
        return bool(np.any(~np.isfinite(v) | ((v != 0) & ((v < 1e-3) | (v > 1e3)))))

    def expected_error(self):
        """The message a clean layout of refused values must raise (None: no expectation)."""
        if self.nonfinite:
            return "free of NaN and infinite values"
        if self.beyond:
            return "a matrix (of values float32 can hold|whose absolute values sum to at most)"
        return None


def _reference(value):
    """What validation must make of ``value``: float64 CSR, duplicates summed, zeros dropped, indices sorted."""
    if sp.issparse(value):
        ref = sp.csr_matrix(value).astype(np.float64)
        ref.sum_duplicates()
    else:
        ref = sp.csr_matrix(np.asarray(value, dtype=np.float64))
    ref.eliminate_zeros()
    ref.sort_indices()
    return ref


def as_layout(csr, layout):
    """``csr`` (float64, canonical, may hold explicit zeros) in ``layout``."""
    if layout == "duplicates" and csr.nnz:
        coo = csr.tocoo()
        dup = sp.coo_matrix((np.r_[coo.data, 1.0], (np.r_[coo.row, coo.row[0]], np.r_[coo.col, coo.col[0]])),
                            shape=csr.shape)
        return Matrix(dup, None, layout)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if layout == "csc":
            value = csr.tocsc()
        elif layout == "coo":
            value = csr.tocoo()
        elif layout == "csr_array":
            value = sp.csr_array(csr)
        elif layout == "coo_array":
            value = sp.coo_array(csr)
        elif layout == "dense":
            value = csr.toarray()
        elif layout == "list":
            value = csr.toarray().tolist()
        elif layout == "object":
            value = csr.toarray().astype(object)
        elif layout == "unsorted":
            order = [np.arange(a, b)[::-1] for a, b in zip(csr.indptr[:-1], csr.indptr[1:])]
            perm = np.concatenate(order) if order else np.zeros(0, int)
            value = sp.csr_matrix((csr.data[perm], csr.indices[perm], csr.indptr.copy()), shape=csr.shape)
        elif layout == "explicit_zeros":
            coo = csr.tocoo()
            free = np.ones(csr.shape, bool)
            free[coo.row, coo.col] = False
            r, c = np.nonzero(free)
            value = sp.csr_matrix((np.r_[coo.data, np.zeros(min(2, r.size))],
                                   (np.r_[coo.row, r[:2]], np.r_[coo.col, c[:2]])), shape=csr.shape)
        elif layout == "int" and np.all(np.isfinite(csr.data)) and np.all(csr.data == np.round(csr.data)) \
                and np.all(np.abs(csr.data) < 2**53):
            value = csr.astype(np.int64)
        elif layout == "float32":
            value = csr.astype(np.float32)
        elif layout == "bool":
            value = csr.astype(bool)
        else:
            value = csr.copy()
        return Matrix(value, _reference(value), layout)


@st.composite
def matrices(draw, n_users, n_items, mode, *, cells, layouts=LAYOUTS, values=None):
    """A ``Matrix`` of shape ``(n_users, n_items)`` storing values of ``mode`` (or ``values``) at ``cells``."""
    vals = draw(st.lists(MODES[mode] if values is None else values, min_size=len(cells), max_size=len(cells)))
    rows = np.array([r for r, _ in cells], dtype=np.int64)
    cols = np.array([c for _, c in cells], dtype=np.int64)
    csr = sp.csr_matrix((np.array(vals, dtype=np.float64), (rows, cols)), shape=(n_users, n_items))
    csr.sort_indices()
    return as_layout(csr, draw(st.sampled_from(layouts)))


@dataclass
class Scene:
    """One generated data set: the history ``X``, held-out ``y`` and order keys ``T``."""

    n_users: int
    n_items: int
    mode: str  # "ordinary", "extreme" or "nonfinite" values
    wrong: bool  # whether arguments of the wrong type or range are drawn too
    X: Matrix
    y: Matrix
    T: Matrix  # positive order keys (with ties) at X's stored positions

    @property
    def extreme(self):
        return self.X.extreme or self.y.extreme


@st.composite
def patterns(draw, n_rows, n_items, wrong):
    """Stored positions, each with probability 1/2 (so empty rows and columns occur); two at least unless wrong."""
    mask = draw(st.lists(st.booleans(), min_size=n_rows * n_items, max_size=n_rows * n_items))
    if not wrong:
        mask[:2] = [True] * len(mask[:2])
    return [(i // n_items, i % n_items) for i, m in enumerate(mask) if m]


def held_out(draw, cells, wrong):
    """Which cells go to y (one in three); unless wrong, X gets one at least, y too when there are two."""
    held = draw(st.lists(st.sampled_from([False, False, True]), min_size=len(cells), max_size=len(cells)))
    if held and not wrong:
        keep = draw(st.integers(0, len(held) - 1))
        held[keep] = False
        if len(held) > 1 and not any(held):
            held[(keep + 1) % len(held)] = True
    return held


@st.composite
def scenes(draw, max_users=7, max_items=6):
    n_users, n_items = draw(st.integers(1, max_users)), draw(st.integers(1, max_items))
    wrong = draw(st.sampled_from([False, False, True]))
    mode = draw(st.sampled_from(["ordinary", "extreme", "nonfinite"] if wrong else ["ordinary"] * 3 + ["extreme"] * 2))
    layouts = LAYOUTS + ["duplicates"] if wrong else LAYOUTS
    cells = draw(patterns(n_users, n_items, wrong))
    held = held_out(draw, cells, wrong)
    X = draw(matrices(n_users, n_items, mode, cells=[c for c, h in zip(cells, held) if not h], layouts=layouts))
    y = draw(matrices(n_users, n_items, mode, cells=[c for c, h in zip(cells, held) if h],
                      layouts=["csr", "csr", "coo", "dense", "explicit_zeros"]))
    base = X.ref if X.ref is not None else sp.csr_matrix(X.value)
    start, step = draw(st.sampled_from([0.0, 1e9, 1.7e18])), draw(st.sampled_from([1.0, 86400.0, 1e9]))
    keys = st.integers(1, 6).map(lambda i: start + step * i)  # timestamps or positions, ties included
    T = draw(matrices(n_users, n_items, mode, cells=list(zip(*base.nonzero())), values=keys,
                      layouts=["csr", "csr", "coo", "dense"]))
    return Scene(n_users, n_items, mode, wrong, X, y, T)


# ------------------------------------------------------------------------ arguments
def pick(draw, scene, valid, *invalid):
    """Draw from ``valid``; in a scene meant to be wrong, one argument in three is one of ``invalid``."""
    if invalid and scene.wrong and draw(st.integers(0, 2)) == 0:
        return draw(st.sampled_from(invalid))
    return draw(valid)


def ids_matrix(draw, n_rows, n_items, width=None):
    """Ranked item ids, shape (n_rows, width): unique per row, ``-1`` padding at the end."""
    width = width or draw(st.integers(1, n_items + 1))
    out = np.full((n_rows, width), -1, dtype=np.int64)
    for r in range(n_rows):
        n = draw(st.integers(0, min(width, n_items)))
        out[r, :n] = draw(st.permutations(range(n_items)))[:n]
    return out


def ranking_ids(draw, scene, params):
    """Ranked ids wide enough for the default ks (10, 20); or scores (floats, also valid) or wrong arrays."""
    good = ids_matrix(draw, scene.n_users, scene.n_items, width=max(20, scene.n_items))
    bad = [good.astype(float), good[:, :0], good[:-1] if scene.n_users > 1 else good.ravel(), good + scene.n_items,
           np.zeros((scene.n_users, 2), dtype=np.int64), "ids"]
    return pick(draw, scene, st.just(good), *bad)


def predictions(draw, scene, params):
    """Predictions at y's positions (or a deliberately wrong prediction argument)."""
    ref = scene.y.ref if scene.y.ref is not None else sp.csr_matrix((scene.n_users, scene.n_items))
    vals = draw(st.lists(MODES[scene.mode], min_size=ref.nnz, max_size=ref.nnz))
    good = sp.csr_matrix((np.array(vals, float), ref.indices.copy(), ref.indptr.copy()), shape=ref.shape)
    bad = [good.toarray(), sp.csr_matrix((scene.n_users + 1, scene.n_items)), np.zeros(3), None, "pred"]
    return pick(draw, scene, st.just(good), *bad)


def y_pred(draw, scene, params):
    ranking = "k" in params or "metrics" in params
    return (ranking_ids if ranking else predictions)(draw, scene, params)


def k_value(draw, scene, params):
    return pick(draw, scene, st.integers(1, scene.n_items + 2), 0, -1, 2.5, "5", None, True)


METRIC_NAMES = ([f"{n}@{k}" for n in RANKING_METRIC_NAMES for k in (1, 2, 3)] + ["ndcg@10", "recall@20"]
                + ["NDCG @ 5", " Recall@2 ", "average_precision@4", "ndcg@0", "ndcg@x", "ndcg@-1", "bogus@3", "ndcg",
                   "rmse", "mae", ""])
SCORING = METRIC_NAMES + ["neg_rmse", "neg_mae", "NEG_RMSE"]


def metric_names(draw, scene, params):
    many = st.lists(st.sampled_from(METRIC_NAMES), min_size=1, max_size=3)
    return pick(draw, scene, st.one_of(many, many.map(tuple), st.sampled_from(METRIC_NAMES)), [], [3], None, {"a": 1})


def fitted_model(draw, scene, params):
    """A cheap fitted model of the right width, or an unfitted one.

    Never an object that is not an estimator: scorers and ``evaluate`` duck-type, and the
    AttributeError they raise for an object without ``recommend`` is scikit-learn's answer too.
    """
    models = [_model(kind, scene.n_items) for kind in ("ranker", "regressor")]
    return pick(draw, scene, st.sampled_from(models), Popularity(), BaselineBiases())


_MODELS = {}


def _model(kind, n_items):
    if (kind, n_items) not in _MODELS:
        est = Popularity() if kind == "ranker" else BaselineBiases(damping=1.0)
        _MODELS[kind, n_items] = est.fit(sp.csr_matrix(np.ones((2, n_items))))
    return _MODELS[kind, n_items]


def heldout_y(draw, scene, params):
    """The held-out matrix as given, wrapped in HeldOut, or something wrong."""
    wrong = [sp.csr_matrix((scene.n_users, scene.n_items + 1)), "y", np.ones(3)]
    if scene.X.ref is not None and scene.X.ref.nnz:
        wrong.append(scene.X.ref)  # overlaps X
    return pick(draw, scene, st.sampled_from([scene.y.value, wrapped(scene.y)]), *wrong)


def wrapped(m):
    """``m`` as a HeldOut where it is a valid one, else as given."""
    return HeldOut(m.ref) if m.ref is not None and not (m.nonfinite or m.beyond) else m.value


def sizes(draw, scene, params):
    return pick(draw, scene, st.one_of(st.floats(0, 0.5, exclude_min=True), st.integers(1, 2)), 0, -0.5, 1.5, "half",
                None, math.nan)


def counts(draw, scene, params):
    return pick(draw, scene, st.integers(0, 4), -1, 1.5, "2")


def flags(draw, scene, params):
    return pick(draw, scene, st.booleans(), "yes", 1)


def seeds(draw, scene, params):
    return pick(draw, scene, st.integers(0, 2**32), -1, "seed", np.random.RandomState(0))


def order_keys(draw, scene, params):
    return pick(draw, scene, st.just(scene.T.value), sp.csr_matrix((scene.n_users, scene.n_items + 1)), "time",
                scene.y.value)


def cut_value(draw, scene, params):
    keys = np.unique(scene.T.ref.data) if scene.T.ref is not None and scene.T.ref.nnz else np.ones(1)
    later = keys[1:] if keys.size > 1 else keys  # a cut after the earliest key leaves a history
    return pick(draw, scene, st.one_of(st.sampled_from(later.tolist()), st.floats(0, 6)), "noon", math.nan)


def quantile_value(draw, scene, params):
    return pick(draw, scene, st.floats(0, 1, exclude_min=True, exclude_max=True), 0.0, 1.5, "median")


def heldout_count(draw, scene, params):
    return pick(draw, scene, st.one_of(st.none(), st.integers(1, 3)), 0, -1, 1.5)


def threshold_value(draw, scene, params):
    return pick(draw, scene, st.one_of(st.none(), st.floats(-5, 5)), math.nan, "4")


def n_users_or_X(draw, scene, params):
    return pick(draw, scene, st.one_of(st.just(scene.X.value), st.integers(1, 20)), 0, -3, 2.5, "users")


# ---- data sets: ids, triples, files
def id_arrays(draw, n, kind):
    if kind == "int":
        return np.array(draw(st.lists(st.integers(-3, 6), min_size=n, max_size=n)), dtype=np.int64)
    if kind == "str":
        return np.array(draw(st.lists(st.sampled_from(["a", "b", "c", "é", "", "10"]), min_size=n, max_size=n)))
    return np.array(draw(st.lists(st.sampled_from([1.5, 2.0, -0.0, 3.0]), min_size=n, max_size=n)))


@dataclass
class Triples:
    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    times: np.ndarray


@st.composite
def triples(draw, mode, wrong):
    n = draw(st.integers(0 if wrong else 1, 8))
    users = id_arrays(draw, n, draw(st.sampled_from(["int", "str", "float"])))
    items = id_arrays(draw, n, draw(st.sampled_from(["int", "str"])))
    values = np.array(draw(st.lists(MODES[mode], min_size=n, max_size=n)), dtype=float)
    times = np.array(draw(st.lists(st.sampled_from([1.0, 2.0, 1e9, 1e18, 5.0]), min_size=n, max_size=n)))
    return Triples(users, items, values, times)


def _triples(draw, scene):
    if not hasattr(scene, "triples"):
        scene.triples = draw(triples(scene.mode, scene.wrong))
    return scene.triples


def users_arg(draw, scene, params):
    t = _triples(draw, scene)
    return pick(draw, scene, st.just(t.users), t.users[:-1] if t.users.size else [1], None, "ann",
                np.array([None, 1]), np.array([math.nan] * t.users.size), t.users.reshape(1, -1))


def items_arg(draw, scene, params):
    t = _triples(draw, scene)
    return pick(draw, scene, st.just(t.items), list(t.items), t.items[:-1] if t.items.size else [1], None,
                np.array([[1, 2]]))


def values_arg(draw, scene, params):
    t = _triples(draw, scene)
    return pick(draw, scene, st.one_of(st.none(), st.just(t.values)), t.values[:-1] if t.values.size else [1.0],
                np.array(["x"] * t.values.size), t.values.reshape(1, -1))


def timestamps_arg(draw, scene, params):
    t = _triples(draw, scene)
    dates = (np.datetime64("2020-01-01") + t.times.astype(np.int64) % 10**6).astype("datetime64[s]")
    return pick(draw, scene, st.one_of(st.none(), st.just(t.times), st.just(dates)),
                np.array([math.nan] * t.times.size), "now")


def vocabulary(draw, scene, params):
    t = _triples(draw, scene)
    seen = list(dict.fromkeys(np.concatenate([t.users, t.items]).tolist()))
    return pick(draw, scene, st.one_of(st.none(), st.permutations(seen).map(np.array)), [1, 1], np.array([[1]]), "ab")


def query_ids(draw, scene, params):
    t = _triples(draw, scene)
    pool = list(t.users) + list(t.items) + ["zz", 99]
    return pick(draw, scene, st.lists(st.sampled_from(pool)).map(np.array), None, "a", np.ones((2, 2)))


def index_arg(draw, scene, params):
    return pick(draw, scene, st.lists(st.integers(-1, 9)).map(lambda v: np.array(v, dtype=np.int64)), [0.5], "0")


def frame_arg(draw, scene, params):
    t = _triples(draw, scene)
    frame = {"user": t.users, "item": t.items, "rating": t.values, "time": t.times}
    if draw(st.booleans()):
        try:
            import pandas as pd  # a dev dependency
        except ImportError:
            pass
        else:
            frame = pd.DataFrame(frame)
    return pick(draw, scene, st.just(frame), "ratings.csv", None, [1, 2])


def column_name(default):
    def draw_column(draw, scene, params):
        return pick(draw, scene, st.sampled_from([default, "user", "item", "rating", "time"]), "missing", 3)
    return draw_column


def optional_column(default):
    def draw_column(draw, scene, params):
        return pick(draw, scene, st.sampled_from([None, default]), "missing", 3)
    return draw_column


SEPARATORS = ["::", "\t", ",", ";", "|", " ", "  "]
COLUMNS = [("user", "item", "rating", "timestamp"), ("user", "item"), ("item", "user", None, "rating"),
           ("user", "item", "rating")]
_FILES = tempfile.TemporaryDirectory(prefix="skrec-fuzz-")  # removed when the session ends


def text_file(draw, scene, params):
    """A temporary text file of interactions (or sequences), well formed or not."""
    t = _triples(draw, scene)
    if "columns" in params:  # read_interactions: user item rating timestamp per line
        sep = draw(st.sampled_from(SEPARATORS))
        lines = [sep.join(str(v) for v in row) for row in zip(t.users, t.items, t.values, t.times)]
    else:  # read_sequences: user item item ... (whitespace unless sep says otherwise)
        sep = draw(st.sampled_from([" ", "\t", " ", ","]))
        lines = [sep.join([str(u)] + [str(i) for i in t.items[: k + 1]]) for k, u in enumerate(t.users)]
    if draw(st.booleans()):
        lines.insert(0, sep.join(["userId", "movieId", "rating", "timestamp"]))
    if draw(st.booleans()):
        lines.append(draw(st.text(alphabet="0123456789.:,;|\t -abe\n", max_size=20)))
    fd, path = tempfile.mkstemp(suffix=".txt", dir=_FILES.name)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + draw(st.sampled_from(["\n", ""])))
    return pick(draw, scene, st.just(path), os.path.join(_FILES.name, "no-such-file.txt"), 3, None)


ARGUMENTS = {
    # metrics
    "y_true": lambda d, s, p: pick(d, s, st.just(s.y.value), s.X.value, "y", None, np.ones(3)),
    "y_pred": y_pred,
    "k": k_value,
    "metrics": metric_names,
    "per_row": flags,
    "metric": lambda d, s, p: pick(d, s, st.sampled_from(list(RANKING_METRIC_NAMES) + ["average_precision", "NDCG",
                                                                                    "rmse", "mae"]), "bogus", 3),
    "scoring": lambda d, s, p: pick(d, s, st.sampled_from(SCORING), None, 3, ["ndcg@3"]),
    "names": lambda d, s, p: pick(d, s, st.lists(st.sampled_from(SCORING), min_size=1, max_size=3), "ndcg@3", [], 3),
    # model selection
    "X": lambda d, s, p: s.X.value,
    "matrix": lambda d, s, p: s.y.value,
    "overlap": lambda d, s, p: d(st.sampled_from(["raise", "drop", "ignore", 1])),
    "estimator": fitted_model,
    "y": heldout_y,
    "exclude_seen": flags,
    "batch_size": lambda d, s, p: pick(d, s, st.one_of(st.none(), st.integers(1, 10)), 0, 2.5),
    "min_user": counts, "min_item": counts, "min_history": counts, "min_interactions": counts,
    "threshold": threshold_value,
    "binarize": flags, "iterate": flags, "as_heldout": flags, "filter_cold_items": flags,
    "test_size": sizes, "validation_size": sizes,
    "strategy": lambda d, s, p: pick(d, s, st.sampled_from(["random", "last"]), "first", 1),
    "order": lambda d, s, p: None if d(st.booleans()) else order_keys(d, s, p),
    "random_state": seeds,
    "X_or_n_users": n_users_or_X,
    "timestamps": lambda d, s, p: (timestamps_arg(d, s, p) if "users" in p else order_keys(d, s, p)),
    "cut": cut_value,
    "quantile": quantile_value,
    "n_heldout": heldout_count,
    # data sets
    "users": users_arg, "items": items_arg, "values": values_arg,
    "user_ids": vocabulary, "item_ids": vocabulary,
    "duplicates": lambda d, s, p: pick(d, s, st.sampled_from(["error", "last", "first", "sum"]), "mean", None),
    "handle_unknown": lambda d, s, p: pick(d, s, st.sampled_from(["error", "ignore"]), "drop"),
    "ids": query_ids, "idx": index_arg,
    "df": frame_arg,
    "user_col": column_name("user"), "item_col": column_name("item"),
    "value_col": optional_column("rating"), "time_col": optional_column("time"),
    "n_users": lambda d, s, p: pick(d, s, st.integers(1, 12), 0, -1, 2.5),
    "n_items": lambda d, s, p: pick(d, s, st.integers(1, 12), 0, -1, 2.5),
    "kind": lambda d, s, p: pick(d, s, st.sampled_from(["implicit", "explicit", "sequence"]), "ratings"),
    "n_clusters": lambda d, s, p: pick(d, s, st.integers(1, 4), 0, 1.5),
    "density": lambda d, s, p: pick(d, s, st.floats(0, 1), -0.1, 1.5, math.nan),
    "noise": lambda d, s, p: pick(d, s, st.floats(0, 1), -0.1, math.inf),
    "path": text_file,
    "sep": lambda d, s, p: pick(d, s, st.one_of(st.none(), st.sampled_from(SEPARATORS)), "", 3),
    "columns": lambda d, s, p: pick(d, s, st.sampled_from(COLUMNS), ("user",), ("user", "user"), "user,item", None,
                                    ("user", "item", "stars")),
    "dtype": lambda d, s, p: pick(d, s, st.sampled_from([np.float64, np.float32, "float32"]), np.int64, "text"),
    "header": lambda d, s, p: pick(d, s, st.sampled_from([None, True, False]), "yes"),
    "encoding": lambda d, s, p: pick(d, s, st.just("utf-8"), "latin-1", "no-such-codec", 3),
}


EXCLUSIVE = [("cut", "quantile")]  # exactly one of them is given (unless the scene is meant to be wrong)


def draw_kwargs(draw, func, scene, table, *, required=()):
    """Keyword arguments for ``func``: every required parameter, each optional one half the time."""
    params = inspect.signature(func).parameters
    choose = {}
    for group in EXCLUSIVE:
        if set(group) <= set(params) and not scene.wrong:
            chosen = draw(st.sampled_from(group))
            choose.update({name: name == chosen for name in group})
    out = {}
    for p in params.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self":
            continue
        wanted = choose.get(p.name)
        if wanted is None:  # k: its default (10 or 20) exceeds the generated item counts
            wanted = p.default is p.empty or p.name in required or (p.name == "k" and not scene.wrong) \
                or draw(st.booleans())
        if wanted:
            out[p.name] = table[p.name](draw, scene, params)
    return out


# ------------------------------------------------------------------------- checking
def call(entry, func, *args, extreme=False, may_name=(), reads_files=False, **kwargs):
    """Call ``func``; return ``(True, result)``, or ``(False, exc)`` for an accepted error.

    Accepted: a ValueError/TypeError in skrec's wording or naming one of ``may_name`` (the
    arguments of the call), scikit-learn's NotFittedError, ``TrainingDiverged`` when the
    input is ``extreme``, OSError/LookupError (a missing file, an unknown encoding) when the
    entry point ``reads_files``. Anything else propagates: a crash.
    """
    CALLS[entry] += 1
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = func(*args, **kwargs)
    except NotFittedError as exc:
        return refused(entry, exc)
    except (ValueError, TypeError) as exc:
        text = str(exc)
        assert MESSAGE.match(text) or any(re.search(rf"\b{re.escape(n)}\b", text) for n in may_name), \
            f"{entry} raised {type(exc).__name__} that names no argument: {text}"
        return refused(entry, exc)
    except TrainingDiverged as exc:
        if not extreme:
            raise
        OUTCOMES[entry, "diverged"] += 1
        return False, exc
    except (OSError, LookupError) as exc:
        if not reads_files:
            raise
        return refused(entry, exc)
    OUTCOMES[entry, "ok"] += 1
    return True, out


def refused(entry, exc):
    OUTCOMES[entry, "refused"] += 1
    REASONS[entry, str(exc)[:60]] += 1
    return False, exc


def assert_finite(out, where):
    """Every number reachable in ``out`` (arrays, sparse, mappings, sequences) is finite."""
    if isinstance(out, (float, np.floating)):
        assert math.isfinite(out), f"{where}: {out}"
    elif sp.issparse(out):
        assert np.isfinite(out.data).all(), f"{where}: non-finite stored values"
    elif isinstance(out, np.ndarray) and out.dtype.kind == "f":
        assert np.isfinite(out).all(), f"{where}: non-finite values"
    elif isinstance(out, HeldOut):
        assert_finite(out.matrix, where)
    elif isinstance(out, dict):
        for key, value in out.items():
            assert_finite(value, f"{where}[{key!r}]")
    elif isinstance(out, (list, tuple)):
        for i, value in enumerate(out):
            assert_finite(value, f"{where}[{i}]")


def as_csr(m):
    return m.matrix if isinstance(m, HeldOut) else m


def assert_split_of(parts, X, where):
    """Same-shape sparse outputs of a split are disjoint parts of ``X`` with its values."""
    mats = [as_csr(m) for m in parts if sp.issparse(as_csr(m)) and as_csr(m).shape == X.shape]
    assert mats, f"{where} returned no matrix of X's shape"
    total = sp.csr_matrix(X.shape)
    for m in mats:
        m = sp.csr_matrix(m)
        assert (abs(m) > 0).multiply(abs(total) > 0).nnz == 0, f"{where}: the parts overlap"
        total = total + m
    diff = (total - X).multiply(abs(total) > 0)
    assert diff.nnz == 0 or np.abs(diff.data).max() == 0, f"{where}: values differ from X or entries invented"


def matrix_of(value, scene):
    """The generated Matrix that ``value`` is (None for anything else)."""
    return next((m for m in (scene.X, scene.y, scene.T) if value is m.value), None)


def ranking_checks(name, value, kwargs, scene):
    """Ranking metrics lie in [0, 1]; per-row results are NaN exactly on the rows skipped."""
    if name.endswith("_at_k"):
        assert 0 <= value <= 1 + 1e-9, f"{name} outside [0, 1]: {value}"
    if name == "ranking_metrics":
        truth = matrix_of(kwargs["y_true"], scene)
        n_rows = value["n_rows_evaluated"] + value["n_rows_skipped"]
        for key, v in value.items():
            if key.startswith("n_rows"):
                assert isinstance(v, int) and v >= 0
                continue
            v = np.asarray(v, dtype=float)
            if truth is not None and truth.ref is not None and v.ndim == 1:
                assert v.shape == (n_rows,)
                skipped = np.diff(truth.ref.indptr) == 0
                assert np.array_equal(np.isnan(v), skipped), f"{key}: NaN rows are not the skipped rows"
            v = v[~np.isnan(v)]
            assert np.all((v >= 0) & (v <= 1 + 1e-9)), f"{key} outside [0, 1]: {v}"
    if name in ("rmse", "mae"):
        assert value >= 0, f"{name} < 0: {value}"


def check_result(qual, out, scene, kwargs, draw):
    """Invariants of a successful call of the public function or method ``qual``."""
    name = qual.rsplit(".", 1)[-1]
    if name == "ranking_metrics" and kwargs.get("per_row") is True:
        assert_finite({k: np.nan_to_num(v, nan=0.0) for k, v in out.items()}, qual)  # NaN: skipped rows
    else:
        assert_finite(out, qual)
    ranking_checks(name, out, kwargs, scene)
    if name.endswith("_split") and name != "split_users":
        assert scene.X.ref is not None, f"{name} accepted duplicate entries"
        assert_split_of(out, scene.X.ref, name)
    if name == "split_users":
        n = kwargs["X_or_n_users"] if isinstance(kwargs["X_or_n_users"], int) else scene.n_users
        seen = np.concatenate([np.asarray(part).ravel() for part in out])
        assert seen.size == np.unique(seen).size and (seen.size == 0 or (seen.min() >= 0 and seen.max() < n)), \
            "split_users: overlapping or out-of-range rows"
    for value in (out.values() if isinstance(out, dict) else [out]):
        if callable(value) and type(value).__module__.startswith("skrec.metrics"):  # a scorer: use it
            use_scorer(name, value, scene, draw)


def use_scorer(name, scorer, scene, draw):
    kwargs = draw_kwargs(draw, scorer.__call__, scene, ARGUMENTS, required=("y",))  # scorers need y
    ok, out = call(f"{name}(...)()", scorer, may_name=["estimator", "X", "y", "k", "metric"], **kwargs)
    if ok:
        assert isinstance(out, float) and math.isfinite(out), f"scorer returned {out!r}"


# --------------------------------------------------------------------- entry points
def public_entry_points():
    """(qualified name, object) of every public name of the fuzzed modules."""
    out = []
    for module in MODULES:
        for name in module.__all__:
            qual = f"{module.__name__}.{name}"
            if qual not in EXCLUDED:
                out.append((qual, getattr(module, name)))
    return out


def public_methods(cls):
    """Public methods a class adds to BaseEstimator (``__call__`` included; no metadata requests)."""
    names = [n for n, v in inspect.getmembers(cls, callable) if not n.startswith("_")
             and not hasattr(BaseEstimator, n) and not re.match(r"set_\w+_request$", n) and not inspect.isclass(v)]
    if "__call__" in vars(cls):
        names.append("__call__")
    return sorted(names, key=lambda n: (n != "fit", n == "fit_transform", n))  # fit first, refits last


ENTRY_POINTS = public_entry_points()
FUNCTIONS = [(q, f) for q, f in ENTRY_POINTS if not inspect.isclass(f)]
CLASSES = [(q, c) for q, c in ENTRY_POINTS if inspect.isclass(c)]


@pytest.mark.parametrize("qual, func", FUNCTIONS, ids=[q for q, _ in FUNCTIONS])
@fuzz_settings(60)
@given(data=st.data())
def test_public_function(qual, func, data):
    EXAMPLES[qual] += 1
    draw = data.draw
    scene = draw(scenes())
    kwargs = draw_kwargs(draw, func, scene, ARGUMENTS)
    params = inspect.signature(func).parameters
    ok, out = call(qual, func, may_name=params, reads_files="path" in params, **kwargs)
    matrix_args = [v for v in kwargs.values() if v is scene.X.value]
    if ok:
        assert not (matrix_args and scene.X.beyond), f"{qual} accepted X beyond float32's range"
        check_result(qual, out, scene, kwargs, draw)


@pytest.mark.parametrize("qual, cls", CLASSES, ids=[q for q, _ in CLASSES])
@fuzz_settings(60)
@given(data=st.data())
def test_public_class(qual, cls, data):
    """Construct with drawn parameters, then call every public method (fit first)."""
    EXAMPLES[qual] += 1
    draw = data.draw
    scene = draw(scenes())
    own = list(inspect.signature(cls).parameters)
    ctor = draw_kwargs(draw, cls, scene, ARGUMENTS)
    ok, obj = call(qual, cls, may_name=own, **ctor)
    if not ok:
        return
    if isinstance(obj, HeldOut):
        assert obj.shape == scene.y.shape and obj.nnz == obj.matrix.nnz
    for method in public_methods(cls):
        func = getattr(obj, method)
        kwargs = draw_kwargs(draw, func, scene, ARGUMENTS, required=("y",) if method == "__call__" else ())
        ok, out = call(f"{qual}.{method}", func, may_name=own + list(inspect.signature(func).parameters),
                       **kwargs)
        if ok:
            check_result(f"{qual}.{method}", out, scene, {**ctor, **kwargs}, draw)


# ----------------------------------------------------------------------- estimators
CONFIGS = [(f"{cls.__name__}-{i}", est) for cls in all_estimators() for i, est in enumerate(cls._test_instances())]


@dataclass
class Query:
    X: Matrix
    y: Matrix


@st.composite
def queries(draw, scene):
    """Rows to score: the training rows, new rows, empty rows, or rows of the wrong width."""
    kind = draw(st.sampled_from(["train", "new", "new", "empty"] + (["width"] if scene.wrong else [])))
    if kind == "train" and scene.X.ref is not None:
        return Query(scene.X, scene.y)
    n_rows = draw(st.integers(1, 4))
    n_items = scene.n_items + (1 if kind == "width" else 0)
    if kind == "empty":
        return Query(as_layout(sp.csr_matrix((n_rows, n_items)), "csr"), as_layout(sp.csr_matrix((n_rows, n_items)),
                                                                                    "csr"))
    cells = draw(patterns(n_rows, n_items, scene.wrong))
    held = held_out(draw, cells, scene.wrong)
    X = draw(matrices(n_rows, n_items, scene.mode, cells=[c for c, h in zip(cells, held) if not h],
                      layouts=LAYOUTS + ["duplicates"] if scene.wrong else LAYOUTS))
    y = draw(matrices(n_rows, n_items, scene.mode, cells=[c for c, h in zip(cells, held) if h],
                      layouts=["csr", "coo"]))
    return Query(X, y)


def allow_list(draw, scene, q, drawn):
    n = scene.n_items
    good = st.lists(st.integers(0, n - 1), min_size=1, unique=True)
    return pick(draw, scene, st.one_of(st.none(), good, good.map(np.array)), [n], [-1], [0, 0] if n else [0], [], [0.0],
                     "all")


ESTIMATOR_ARGUMENTS = {
    "X": lambda d, s, q, p: q.X.value,
    "y": lambda d, s, q, p: pick(d, s, st.sampled_from([q.y.value, wrapped(q.y)]),
                                   q.X.value if q.X.ref is not None and q.X.ref.nnz else "y",
                                   "y", sp.csr_matrix((q.X.shape[0] + 1, q.X.shape[1]))),
    "k": lambda d, s, q, p: pick(d, s, st.integers(1, max(1, min(s.n_items, 4))), 0, s.n_items + 1, 2.5, "3"),
    "exclude_seen": lambda d, s, q, p: pick(d, s, st.booleans(), "no"),
    "items": allow_list,
    "metric": lambda d, s, q, p: pick(d, s, st.sampled_from(["cosine", "dot"]), "euclid"),
    "ratings": lambda d, s, q, drawn: pick(d, s, st.just(ratings_for(d, q, drawn)), None, "ratings",
                                           sp.csr_matrix(q.X.shape)),
}


def ratings_for(draw, q, drawn):
    """Ratings 1-5 at the positions fit trains on: those of X, or of X + y when y was given."""
    ref = q.X.ref if q.X.ref is not None else sp.csr_matrix(q.X.shape)
    y = drawn.get("y")
    if y is q.y.value or isinstance(y, HeldOut):
        ref = sp.csr_matrix(ref + q.y.ref)
        ref.sort_indices()
    vals = draw(st.lists(st.integers(1, 5).map(float), min_size=ref.nnz, max_size=ref.nnz))
    return sp.csr_matrix((np.array(vals), ref.indices.copy(), ref.indptr.copy()), shape=ref.shape)


def estimator_kwargs(draw, func, scene, q):
    """Arguments of an estimator method: required ones and ``k`` always, other optional ones half the time."""
    params = inspect.signature(func).parameters
    out = {}
    for p in params.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is p.empty or p.name == "k" or draw(st.booleans()):
            out[p.name] = ESTIMATOR_ARGUMENTS[p.name](draw, scene, q, out)
    return out


def check_scores_matrix(out, q, n_items, name):
    assert isinstance(out, np.ndarray) and out.dtype == np.float32, f"{name} returned {type(out)}"
    assert out.shape == (q.X.shape[0], n_items), f"{name} shape {out.shape}"


def check_recommend(out, q, kwargs, model):
    ids, scores = out
    k = kwargs.get("k", 10)
    assert ids.shape == scores.shape == (q.X.shape[0], k) and ids.dtype == np.int64 and scores.dtype == np.float32
    valid = ids >= 0
    assert np.all(ids < model.n_items_) and np.all(ids >= -1)
    assert np.all(np.isneginf(scores[~valid])), "missing recommendations must score -inf"
    assert np.all(np.diff(valid.astype(int), axis=1) <= 0), "-1 ids must come last"
    seen = q.X.ref
    allowed = kwargs.get("items")
    for r in range(ids.shape[0]):
        row = ids[r][valid[r]]
        assert row.size == np.unique(row).size, "an item recommended twice"
        assert np.all(np.diff(scores[r][valid[r]]) <= 0), "recommendations must be sorted best first"
        if kwargs.get("exclude_seen", True):
            assert not set(row) & set(seen.indices[seen.indptr[r]:seen.indptr[r + 1]]), "a seen item recommended"
        if allowed is not None:
            assert set(row) <= set(np.asarray(allowed).tolist()), "an item outside the allow-list"
    return scores[valid]


def check_method(method, out, q, kwargs, model, n_items):
    """Shape and dtype of a successful inference call; returns the numbers that must be finite."""
    if method in ("predict", "predict_rating"):
        check_scores_matrix(out, q, n_items, method)
        return out
    if method == "predict_at":
        y = as_csr(kwargs["y"])
        assert sp.issparse(out) and out.shape == y.shape and out.nnz == q.y.ref.nnz
        return out.data
    if method == "recommend":
        return check_recommend(out, q, kwargs, model)
    if method in ("transform", "fit_transform"):
        assert out.dtype == np.float32 and out.ndim == 2 and out.shape[0] == q.X.shape[0]
        return out
    if method == "score":
        assert isinstance(out, float)
        if model._kind == "ranker":
            assert 0 <= out <= 1 + 1e-6, out
        else:
            assert out <= 0, out
        return np.array([out])
    if method == "similar_items":
        ids, scores = out
        queries_ = np.atleast_1d(np.asarray(kwargs["items"]))
        assert ids.shape == scores.shape == (queries_.size, kwargs.get("k", 10))
        assert np.all((ids >= 0) & (ids < n_items)) and not np.any(ids == queries_[:, None])
        return scores
    raise AssertionError(f"no check for {type(model).__name__}.{method}: add one to check_method")


METHODS = ("fit", "fit_transform", "predict", "predict_at", "predict_rating", "recommend", "score", "similar_items",
           "transform")


def similar_query(draw, scene):
    return pick(draw, scene, st.one_of(st.integers(0, scene.n_items - 1), st.lists(st.integers(0, scene.n_items - 1),
                                                                           min_size=1)), scene.n_items, -1, 1.5)


def assert_refused_for_values(exc, name, m):
    """A matrix whose values validation refuses (NaN/inf, beyond float32) gets that message, naming it."""
    expected = m.expected_error()
    if expected and isinstance(exc, (ValueError, TypeError)) and not isinstance(exc, NotFittedError):
        assert re.match(rf"^{name} must be {expected}", str(exc)), f"{name} ({m.layout}): {exc}"


def on_cpu(est):
    params = {k: v for k, v in (("random_state", 0), ("device", "cpu")) if k in est.get_params()}
    return clone(est).set_params(**params)


@pytest.mark.parametrize("name, est", CONFIGS, ids=[n for n, _ in CONFIGS])
@fuzz_settings(40)
@given(data=st.data())
def test_estimator(name, est, data):
    EXAMPLES[name] += 1
    draw = data.draw
    scene = draw(scenes(max_users=12, max_items=8))
    model = on_cpu(est)
    train = Query(scene.X, scene.y)
    kwargs = estimator_kwargs(draw, model.fit, scene, train)
    extreme = scene.extreme
    names = list(model.get_params()) + ["X", "y", "ratings"]
    ok, out = call(f"{type(model).__name__}.fit", model.fit, extreme=extreme, may_name=names, **kwargs)
    if not ok:
        assert not hasattr(model, "n_items_"), "a failed fit must leave no fitted state"
        assert_refused_for_values(out, "X", scene.X)
        clean_X = scene.X.ref is not None and scene.X.expected_error() is None
        if clean_X and kwargs.get("y") is scene.y.value:
            assert_refused_for_values(out, "y", scene.y)
        return
    assert out is model and model.n_items_ == scene.n_items
    assert not scene.X.beyond, f"fit accepted X beyond float32's range ({scene.X.layout})"
    for method in public_methods(type(model)):
        if method == "fit":
            continue
        if not hasattr(model, method):  # available_if: e.g. transform where the model has none
            continue
        func = getattr(model, method)
        if method == "similar_items":  # no rows: the query is items
            empty = as_layout(sp.csr_matrix((1, scene.n_items)), "csr")
            q = Query(empty, empty)
            kwargs = {"items": similar_query(draw, scene),
                      "k": pick(draw, scene, st.integers(1, max(1, scene.n_items - 1)), 0, scene.n_items, 10)}
        else:
            q = train if method == "fit_transform" else draw(queries(scene))
            kwargs = estimator_kwargs(draw, func, scene, q)
        ok, out = call(f"{type(model).__name__}.{method}", func, extreme=extreme or q.X.extreme,
                       may_name=names + list(inspect.signature(func).parameters), **kwargs)
        if not ok:
            if method != "fit_transform":  # X is validated first: its refusal is the one raised
                assert_refused_for_values(out, "X", q.X)
            continue
        assert not q.X.beyond, f"{method} accepted X beyond float32's range"
        numbers = check_method(method, out, q, kwargs, model, scene.n_items)
        if not (extreme or q.X.extreme or q.y.extreme):
            assert np.isfinite(numbers).all(), f"{method}: non-finite output from ordinary input"


# ------------------------------------------------------------------------- coverage
def test_every_entry_point_is_fuzzed():
    """New public functions, parameters, estimators and methods need a strategy here."""
    missing = []
    for qual, obj in ENTRY_POINTS:
        funcs = [obj] + ([getattr(obj, m) for m in public_methods(obj)] if inspect.isclass(obj) else [])
        for func in funcs:
            for p in inspect.signature(func).parameters.values():
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self" and p.name not in ARGUMENTS:
                    missing.append(f"{qual}: parameter {p.name!r} of {getattr(func, '__name__', func)}")
    for name, est in CONFIGS:
        for method in public_methods(type(est)):
            if method not in METHODS:
                missing.append(f"{name}: method {method!r} (add it to METHODS and check_method)")
            elif method != "similar_items":
                for p in inspect.signature(getattr(type(est), method)).parameters.values():
                    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in ESTIMATOR_ARGUMENTS \
                            and p.name != "self":
                        missing.append(f"{name}: parameter {p.name!r} of {method}")
    assert not missing, "\n".join(missing)
    assert {type(e) for _, e in CONFIGS} == set(all_estimators())
    names = {q for q, _ in ENTRY_POINTS} | set(EXCLUDED)
    assert names == {f"{m.__name__}.{n}" for m in MODULES for n in m.__all__}


def test_zz_summary(capsys, request):
    """Runs last: prints what the fuzz tests above generated; every entry point got past validation."""
    if not EXAMPLES:
        pytest.skip("run with the fuzz tests above to get a summary")
    totals = collections.Counter()
    for (_, outcome), n in OUTCOMES.items():
        totals[outcome] += n
    failed = request.session.testsfailed
    with capsys.disabled():
        print(f"\nfuzz: {sum(EXAMPLES.values())} generated examples, {sum(CALLS.values())} calls of "
              f"{len(CALLS)} entry points: {totals['ok']} returned, {totals['refused']} refused, "
              f"{totals['diverged']} diverged on extreme input; "
              + (f"{failed} failing tests above" if failed else "no crash"))
        if os.environ.get("SKREC_FUZZ_VERBOSE"):
            for entry in sorted(CALLS):
                print(f"  {entry}: " + ", ".join(f"{o} {OUTCOMES[entry, o]}"
                                                 for o in ("ok", "refused", "diverged")))
                for (e, why), n in sorted(REASONS.items(), key=lambda kv: -kv[1]):
                    if e == entry and n > 2:
                        print(f"      {n:4d} {why}")
    never = sorted(entry for entry in CALLS if not OUTCOMES[entry, "ok"])
    assert not never, f"entry points that no generated input got past validation: {never}"


# ------------------------------------------------------------------- found by fuzzing
# Minimal reproducers of the crashes the fuzz tests found beyond validation, now fixed.
@pytest.mark.parametrize("row", [[-500.0, 3.0, 0.0], [1e30, 0.0, 0.0]])
def test_fuzz_found_bpr_ridge_fold_in(row):
    """Rows fit would refuse (negative confidences), or too large to solve, get a ValueError."""
    from skrec import BPRRanker

    model = BPRRanker(n_factors=4, max_iter=4, batch_size=128, learning_rate=0.05, fold_in="ridge",
                      negatives="popularity", n_negatives=2, confidence=True, optimizer="sparse_adam",
                      device="cpu", random_state=0).fit(sp.csr_matrix(np.array([[0.0, 1.0, 0.0]])))
    with pytest.raises(ValueError, match=r"^X must be (non-negative values when confidence=True|interactions "
                                         r"whose weighted least-squares systems float32 can solve)"):
        model.predict(sp.csr_matrix(np.array([row])))


def test_fuzz_found_als_large_values():
    from skrec import ALSRanker

    X = sp.csr_matrix(np.array([[1e5, 1e5, 0.0], [0.0, 1e5, 1e5]]))
    model = ALSRanker(n_factors=6, alpha=0.5, confidence_weight=3.0, regularization_exponent=0.0, max_iter=6,
                      device="cpu", random_state=0)
    with pytest.raises(ValueError, match=r"^X must be interactions whose weighted least-squares systems .*"
                                         r"numpy\.log1p.*; got \d+ of \d+ systems not positive definite"):
        model.fit(X)
    assert not hasattr(model, "n_items_")
    assert np.isfinite(model.fit(np.log1p(X)).predict(X)).all()  # the advice works


@pytest.mark.parametrize("method", ["inverse_transform_users", "inverse_transform_items"])
def test_fuzz_found_encoder_inverse_before_fit(method):
    with pytest.raises(NotFittedError):
        getattr(skrec.datasets.InteractionEncoder(), method)([0])


def test_fuzz_found_reader_narrow_dtype(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("1,10,1e300,5\n")
    with pytest.raises(ValueError, match=r"^dtype must be a dtype that holds every rating of .*ratings\.csv; "
                                         r"got float32, which overflows at the rating 1e\+300\.$"):
        skrec.datasets.read_interactions(path, dtype=np.float32)
    assert skrec.datasets.read_interactions(path).ratings.data.tolist() == [1e300]  # float64 holds it


def test_fuzz_found_encoder_sum_overflow():
    with pytest.raises(ValueError, match=r"^values must be values whose sums over repeated \(user, item\) pairs "
                                         r"stay finite \(duplicates='sum'\); got 1 sums overflowing to inf\.$"):
        skrec.datasets.encode_interactions([1, 1], [2, 2], values=[1e308, 1e308], duplicates="sum")
