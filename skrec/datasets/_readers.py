"""Readers for interaction text files (``user item rating timestamp``) and sequence files."""

import gzip
import io
import lzma
import itertools
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ..utils.validation import check_param, raise_invalid
from ._encoder import _DUPLICATES, encode_interactions

_FIELDS = ("user", "item", "rating", "timestamp")
_SEPARATORS = ("::", "\t", ",", ";", "|")
_HEADER_NAMES = {"user", "users", "userid", "uid", "item", "items", "itemid", "iid", "movie",
                 "movieid", "product", "productid", "rating", "ratings", "score", "value",
                 "timestamp", "time", "ts", "date", "datetime"}


def _check_path(path, name="path"):
    if not isinstance(path, (str, os.PathLike)):
        raise_invalid(name, "a str or os.PathLike naming a file", path, TypeError)
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{name} must name an existing file; got {str(path)!r}, "
                                f"which does not exist or is not a file.")
    return path


def _read_text(path, encoding):
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    with opener(path, "rt", encoding=encoding, newline=None) as fh:
        return fh.read()


def _is_number(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


def _split(line, sep):
    return [f.strip() for f in line.split(sep)] if sep else line.split()


def _head(text, n=2):
    """First ``n`` non-empty lines, without splitting the whole text."""
    out, start = [], 0
    while len(out) < n and start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line = text[start:end].strip("\r")
        if line.strip():
            out.append(line)
        start = end + 1
    return out


def _detect_sep(line):
    for sep in _SEPARATORS:
        if sep in line:
            return sep
    return None


def _detect_header(head, sep):
    if not head:
        return False
    first = _split(head[0], sep)
    if len(head) > 1:
        second = _split(head[1], sep)
        if any(_is_number(b) and not _is_number(a) for a, b in zip(first, second)):
            return True
    if any(_is_number(a) for a in first):
        return False
    # no line to compare with (or ids are strings): a header names known fields
    names = {f.lower().replace("_", "").replace(" ", "").strip("\"'") for f in first}
    return bool(names & _HEADER_NAMES)


def _read_table(path, *, sep=None, columns=_FIELDS, header=None, encoding="utf-8"):
    """Parse a delimited interaction file into a dict of 1-D arrays keyed by field name."""
    path = _check_path(path)
    if isinstance(columns, str) or not isinstance(columns, (list, tuple)):
        raise_invalid("columns", "a tuple of field names (and None for ignored fields)", columns, TypeError)
    bad = [c for c in columns if c is not None and c not in _FIELDS]
    named = [c for c in columns if c is not None]
    if bad or len(set(named)) != len(named) or "user" not in named or "item" not in named:
        raise_invalid("columns", "a tuple naming 'user' and 'item' once each, optionally "
                      "'rating' and 'timestamp', with None for ignored fields", tuple(columns))
    if sep is not None and (not isinstance(sep, str) or sep == ""):
        raise_invalid("sep", "a non-empty str or None (auto-detect)", sep, TypeError)
    if header is not None:
        check_param("header", header, "bool")
    text = _read_text(path, encoding)
    head = _head(text)
    if not head:
        raise ValueError(f"path must name a file with at least one interaction; {str(path)!r} is empty.")
    if sep is None:
        sep = _detect_sep(head[0])
    if header is None:
        header = _detect_header(head, sep)
    text = text.lstrip()
    if sep is not None and len(sep) > 1:
        text = text.replace(sep, "\t")
        delimiter = "\t"
    else:
        delimiter = sep
    n_fields = len(_split(head[0], sep))
    if n_fields < len(columns):
        raise_invalid("columns", f"at most as long as the number of fields in {path.name} "
                      f"({n_fields} with sep={sep!r})", tuple(columns))
    usecols = [j for j, c in enumerate(columns) if c is not None]
    names = [columns[j] for j in usecols]
    kw = dict(delimiter=delimiter, skiprows=int(header), usecols=usecols, comments=None,
              ndmin=1, encoding=None)
    out = {}
    try:
        dtype = [(n, np.int64 if n in ("user", "item") else np.float64) for n in names]
        table = np.loadtxt(io.StringIO(text), dtype=dtype, **kw)
        out = {n: table[n] for n in names}
    except ValueError:
        try:  # ids that are not integers: read them as strings, the rest as numbers
            ids = [j for j, n in zip(usecols, names) if n in ("user", "item")]
            num = [j for j, n in zip(usecols, names) if n not in ("user", "item")]
            sid = np.loadtxt(io.StringIO(text), dtype=str, **{**kw, "usecols": ids, "ndmin": 2})
            out = {columns[j]: sid[:, k] for k, j in enumerate(ids)}
            if num:
                vals = np.loadtxt(io.StringIO(text), dtype=np.float64, **{**kw, "usecols": num, "ndmin": 2})
                out.update({columns[j]: vals[:, k] for k, j in enumerate(num)})
        except ValueError as exc:
            raise ValueError(f"path {str(path)!r} could not be read as columns {tuple(columns)} "
                             f"with sep={sep!r} (header={header}): {exc}") from exc
    return out


def read_interactions(path, *, sep=None, columns=_FIELDS, dtype=np.float64, duplicates="last",
                      header=None, encoding="utf-8"):
    """Read a delimited interaction file into aligned rating and timestamp matrices.

    Parameters
    ----------
    path : str or os.PathLike
        A text file (optionally ``.gz`` or ``.xz``), one interaction per line, e.g. MovieLens'
        ``u.data`` or ``ratings.dat``.
    sep : str, optional
        Field separator. Auto-detected from the first line among ``"::"``, tab, comma,
        ``";"``, ``"|"`` and runs of whitespace when omitted.
    columns : tuple of str or None, default=("user", "item", "rating", "timestamp")
        Each entry one of ``"user"``, ``"item"``, ``"rating"``, ``"timestamp"`` or ``None``.
        The meaning of the first fields of each line; ``None`` skips a field and fields
        past the tuple are ignored. ``"user"`` and ``"item"`` are required; without
        ``"rating"`` every interaction is ``1.0``, without ``"timestamp"`` the result's
        ``timestamps`` is ``None``.
    dtype : floating dtype, default=numpy.float64
        dtype of ``ratings`` (``timestamps`` are always float64).
    duplicates : {"last", "error", "first", "sum"}, default="last"
        A (user, item) pair given twice: keep the latest by timestamp (then by file
        order), raise, keep the earliest, or add the ratings.
    header : bool, optional
        Whether the first line is a header; by default it is skipped when it is not numeric
        where the second line is (e.g. ``userId,movieId,rating,timestamp``).
    encoding : str, default="utf-8"
        Text encoding.

    Returns
    -------
    sklearn.utils.Bunch
        ``ratings`` (CSR, ``(n_users, n_items)``), ``timestamps`` (CSR with the same
        sparsity pattern, float64, or ``None``), ``user_ids`` and ``item_ids`` (sorted
        external ids of the rows/columns; int64 when all ids are integers, else str),
        ``n_duplicates_dropped``.

    Notes
    -----
    The file is parsed by numpy's C reader: the 575,281-line ML-1M ``ratings >= 4`` file
    loads in about half a second.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "ratings.dat")
    >>> with open(path, "w") as f:
    ...     _ = f.write("1::10::5::100\\n2::10::3::90\\n1::30::4::120\\n1::10::2::130\\n")
    >>> b = read_interactions(path)
    >>> b.ratings.toarray()
    array([[2., 4.],
           [3., 0.]])
    >>> b.user_ids, b.item_ids, b.n_duplicates_dropped
    (array([1, 2]), array([10, 30]), 1)
    >>> b.timestamps.toarray()
    array([[130., 120.],
           [ 90.,   0.]])
    """
    check_param("duplicates", duplicates, "str", options=_DUPLICATES)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind != "f":
        raise_invalid("dtype", "a floating dtype such as numpy.float64", dtype, TypeError)
    cols = _read_table(path, sep=sep, columns=columns, header=header, encoding=encoding)
    b = encode_interactions(cols["user"], cols["item"], cols.get("rating"),
                            timestamps=cols.get("timestamp"), duplicates=duplicates)
    with np.errstate(over="ignore"):
        ratings = b.X.astype(dt, copy=False)
    if not np.isfinite(ratings.data).all():
        bad = b.X.data[~np.isfinite(ratings.data)]
        raise_invalid("dtype", f"a dtype that holds every rating of {path}",
                      f"<{dt.name}, which overflows at the rating {bad[np.abs(bad).argmax()]:g}>")
    return Bunch(ratings=ratings, timestamps=b.timestamps, user_ids=b.user_ids,
                 item_ids=b.item_ids, n_duplicates_dropped=b.n_duplicates_dropped)


def _to_ids(tokens):
    """Token list -> int64 array when every token is an integer, else a str array."""
    arr = np.array(tokens, dtype=str) if tokens else np.zeros(0, dtype=np.int64)
    if arr.dtype.kind == "U":
        try:
            return arr.astype(np.int64)
        except (ValueError, OverflowError):
            return arr
    return arr


def read_sequences(path, *, sep=None, encoding="utf-8"):
    """Read a sequence file (one line per user: ``user_id item_1 item_2 ...``, oldest first).

    This is the format of the S3-Rec / ICLRec benchmark files (``Beauty.txt``, ...).

    Parameters
    ----------
    path : str or os.PathLike
        The text file (optionally ``.gz`` or ``.xz``).
    sep : str, optional
        Field separator; runs of whitespace when omitted.
    encoding : str, default="utf-8"
        Text encoding.

    Returns
    -------
    sklearn.utils.Bunch
        ``order``: CSR ``(n_users, n_items)`` whose stored value is the 1-based position of
        the item in the user's sequence (larger = later; an order key for
        ``SequenceTransformer``); an item repeated in a sequence keeps its LAST position.
        ``sequences``: list (aligned with the rows) of int64 arrays of item indices in full
        order, repeats kept. ``user_ids``, ``item_ids``: sorted external ids of the
        rows/columns. ``n_duplicates_dropped``: repeats not stored in ``order``.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "seq.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("7 3 1 3 2\\n5 2 3\\n")
    >>> b = read_sequences(path)
    >>> b.user_ids, b.item_ids, b.n_duplicates_dropped
    (array([5, 7]), array([1, 2, 3]), 1)
    >>> b.order.toarray()
    array([[0., 1., 2.],
           [2., 4., 3.]])
    >>> b.sequences[1]
    array([2, 0, 2, 1])
    """
    path = _check_path(path)
    if sep is not None and (not isinstance(sep, str) or sep == ""):
        raise_invalid("sep", "a non-empty str or None (whitespace)", sep, TypeError)
    rows = [_split(line, sep) for line in _read_text(path, encoding).splitlines() if line.strip()]
    rows = [[t for t in r if t != ""] for r in rows] if sep else rows
    if not rows:
        raise ValueError(f"path must name a file with at least one sequence; {str(path)!r} is empty.")
    users = _to_ids([r[0] for r in rows])
    lengths = np.fromiter((len(r) - 1 for r in rows), dtype=np.int64, count=len(rows))
    items = _to_ids(list(itertools.chain.from_iterable(r[1:] for r in rows)))
    user_ids, line_of_row = np.unique(users, return_index=True)
    if user_ids.size != users.size:
        _, counts = np.unique(users, return_counts=True)
        raise ValueError(f"path {str(path)!r} must hold one line per user; "
                         f"{int((counts > 1).sum())} users have several lines, "
                         f"e.g. {user_ids[counts > 1][0]!r}.")
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    # 1-based position of each token within its line
    positions = np.arange(items.size, dtype=np.float64) - np.repeat(starts, lengths) + 1.0
    b = encode_interactions(np.repeat(users, lengths), items, positions, user_ids=user_ids,
                            duplicates="last")
    item_index = b.encoder.transform_items(items)
    sequences = [item_index[starts[k]:starts[k] + lengths[k]] for k in line_of_row.tolist()]
    return Bunch(order=b.X, sequences=sequences, user_ids=b.user_ids, item_ids=b.item_ids,
                 n_duplicates_dropped=b.n_duplicates_dropped)
