"""MovieLens loaders for the official GroupLens archive layouts."""

import csv
import hashlib
import io
import lzma
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ..utils.validation import check_param, raise_invalid
from . import _base
from ._encoder import encode_interactions
from ._readers import _read_table, _read_text

_URL = "https://files.grouplens.org/datasets/movielens/"

# variant -> (folder, ratings file, sep, header, titles file, titles format, url, md5)
# The md5 sums are the ones GroupLens publishes next to each archive (ml-100k.zip.md5,
# ml-1m.zip.md5); they were cross-checked against many independent public copies.
# ml-latest-small is a "latest" release GroupLens may regenerate: its download has no fixed
# checksum. The package ships the 2018-09-26 release (its licence allows redistribution under
# the same terms), compressed; the sha256 sums are those of the uncompressed files.
_VARIANTS = {
    "100k": dict(folder="ml-100k", ratings="u.data", sep="\t", header=False,
                 titles="u.item", titles_format="pipe", url=_URL + "ml-100k.zip",
                 md5="0e33842e24a9c977be4e0107933c0723"),
    "1m": dict(folder="ml-1m", ratings="ratings.dat", sep="::", header=False,
               titles="movies.dat", titles_format="colons", url=_URL + "ml-1m.zip",
               md5="c4d9eecfca2ab87c1945afe126590906"),
    "latest-small": dict(folder="ml-latest-small", ratings="ratings.csv", sep=",", header=True,
                         titles="movies.csv", titles_format="csv",
                         url=_URL + "ml-latest-small.zip", md5=None),
}
_BUNDLED = Path(__file__).resolve().parent / "data" / "ml-latest-small"
_BUNDLED_SHA256 = {
    "ratings.csv.xz": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
    "movies.csv.xz": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
}
_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")

_DESCR = """MovieLens {variant} (GroupLens Research, University of Minnesota)
{shape}

LICENCE: research use only; the data may NOT be redistributed without separate
permission from GroupLens and may not be used commercially without permission. Do not
commit these files into a repository or ship them inside a package. See the README in
{folder}.

Cite: F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and
Context. ACM Transactions on Interactive Intelligent Systems (TiiS) 5, 4, Article 19.
https://doi.org/10.1145/2827872
"""

_DESCR_BUNDLED = """MovieLens latest-small, 2018-09-26 release (GroupLens Research, University of Minnesota)
{shape}
Ratings 0.5-5.0 in half stars; every user rated at least 20 movies; 1996-03-29 to 2018-09-24.

Shipped with skrec under its own licence (README.txt in {folder}): research use; it
may be redistributed, including transformations, under the same licence; it may NOT be
used for commercial or revenue-bearing purposes without permission from GroupLens; no
endorsement.

Cite: F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and
Context. ACM Transactions on Interactive Intelligent Systems (TiiS) 5, 4, Article 19.
https://doi.org/10.1145/2827872
"""


def _bundled_file(name):
    """Path of a bundled ``ml-latest-small`` file, its content checked against the release."""
    path = _BUNDLED / name
    if not path.is_file():
        raise OSError(f"MovieLens latest-small: the copy shipped with skrec is missing {path}; "
                      f"the installation is incomplete. To fix it, reinstall skrec, or pass "
                      f"data_home=... to a folder that holds ml-latest-small/ratings.csv.")
    expected = _BUNDLED_SHA256.get(name)
    if expected is not None:
        got = hashlib.sha256(lzma.decompress(path.read_bytes())).hexdigest()
        if got != expected:
            raise OSError(f"MovieLens latest-small: the copy shipped with skrec at {path} failed "
                          f"its checksum (sha256 {got}, expected {expected}): it is corrupted. "
                          f"To fix it, reinstall skrec.")
    return path


def _titles(path, fmt):
    """Map item id -> title from u.item / movies.dat / movies.csv."""
    if fmt == "csv":
        reader = csv.reader(io.StringIO(_read_text(path, "utf-8")))
        next(reader, None)
        return {int(r[0]): r[1] for r in reader if len(r) > 1}
    sep = "|" if fmt == "pipe" else "::"
    out = {}
    for line in _read_text(path, "latin-1").splitlines():
        parts = line.split(sep)
        if len(parts) > 1 and parts[0].strip().isdigit():
            out[int(parts[0])] = parts[1]
    return out


def load_movielens(variant="100k", *, data_home=None, download=True, fold=None):
    """Load a MovieLens data set: the copy shipped with skrec, or a GroupLens archive layout.

    ``load_movielens("latest-small")`` reads the copy of MovieLens latest-small (the
    2018-09-26 release: 100,836 ratings in half stars, 610 users, 9,724 movies, with
    timestamps and titles) that ships inside the package, under its own licence, which
    allows redistribution: no network and no ``data_home`` are needed. Pass ``data_home``
    to read a ``ml-latest-small/`` folder of your own instead (a newer release, say).

    The other files are looked up under ``data_home/ml-100k/`` (``u.data``, ``u.item``,
    ``u1.base`` ...), ``data_home/ml-1m/`` (``ratings.dat``, ``movies.dat``) or
    ``data_home/ml-latest-small/`` (``ratings.csv``, ``movies.csv``). When the ratings
    file is missing and ``download=True``, the archive is downloaded from
    ``https://files.grouplens.org/datasets/movielens/ml-<variant>.zip`` into
    ``data_home``, checked against the md5 sum GroupLens publishes (100k and 1m; the
    ``latest-small`` archive has no fixed sum), and extracted. An archive placed in
    ``data_home`` by hand is checked and extracted the same way, without network.

    .. warning:: MovieLens 100k and 1M are licensed for research use only and may not be
       redistributed without GroupLens' permission: keep them out of repositories and
       packages. Latest-small may be redistributed under its licence. None of them may be
       used commercially without GroupLens' permission (see ``DESCR``).

    Parameters
    ----------
    variant : {"100k", "1m", "latest-small"}, default="100k"
        Which data set.
    data_home : str or os.PathLike, optional
        Folder holding ``ml-<variant>/``; see :func:`get_data_home`. For
        ``"latest-small"``, ``None`` (the default) reads the copy shipped with skrec.
    download : bool, default=True
        Whether to download the archive when the files are missing.
    fold : {"u1", "u2", "u3", "u4", "u5", "ua", "ub"}, optional
        ML-100k only: also return the official train/test split read from ``<fold>.base``
        and ``<fold>.test``, in the same user/item index space as ``ratings``.

    Returns
    -------
    sklearn.utils.Bunch
        ``ratings`` (CSR float64, ``(n_users, n_items)``), ``timestamps`` (CSR float64 unix
        seconds, the same sparsity pattern), ``user_ids`` and ``item_ids`` (sorted external
        ids of the rows/columns), ``item_titles`` (aligned with ``item_ids``; ``""`` where
        the archive has no title), ``DESCR``; with ``fold``: ``train``, ``test``,
        ``train_timestamps``, ``test_timestamps`` (CSR, same shape as ``ratings``).

    Raises
    ------
    OSError
        When the files are missing and cannot be downloaded (offline, ``download=False``)
        or the archive fails its checksum; the message says which file was missing where
        and how to fix it.

    Examples
    --------
    The copy shipped with skrec, offline:

    >>> ml = load_movielens("latest-small")
    >>> ml.ratings.shape, ml.ratings.nnz
    ((610, 9724), 100836)
    >>> str(ml.item_titles[0]), float(ml.ratings[0, 0])
    ('Toy Story (1995)', 4.0)

    A tiny file laid out like ``ml-100k/``:

    >>> import os, tempfile
    >>> home = tempfile.mkdtemp()
    >>> os.mkdir(os.path.join(home, "ml-100k"))
    >>> with open(os.path.join(home, "ml-100k", "u.data"), "w") as f:
    ...     _ = f.write("1\\t20\\t5\\t881250949\\n2\\t10\\t3\\t891717742\\n")
    >>> b = load_movielens("100k", data_home=home, download=False)
    >>> b.ratings.toarray()
    array([[0., 5.],
           [3., 0.]])
    >>> b.item_ids, b.item_titles
    (array([10, 20]), array(['', ''], dtype='<U1'))
    """
    check_param("variant", variant, "str", options=tuple(_VARIANTS))
    download = check_param("download", download, "bool")
    if fold is not None:
        if variant != "100k":
            raise_invalid("fold", "None unless variant='100k' (the only variant with "
                          "official folds)", fold)
        check_param("fold", fold, "str", options=_FOLDS)
    spec = _VARIANTS[variant]
    if variant == "latest-small" and data_home is None:
        return _read_movielens(variant, _bundled_file("ratings.csv.xz"), _bundled_file("movies.csv.xz"),
                               spec, _DESCR_BUNDLED, _BUNDLED)
    home = _base.get_data_home(data_home)
    folder = home / spec["folder"]
    needed = [spec["ratings"]] + ([f"{fold}.base", f"{fold}.test"] if fold else [])
    for name in needed:
        if not (folder / name).is_file():
            if not download:
                raise OSError(
                    f"MovieLens {variant}: file {name!r} is missing under {folder} and "
                    f"download=False. To fix it, pass download=True (needs the internet), or "
                    f"place {spec['url'].rsplit('/', 1)[-1]} (or its extracted folder "
                    f"{spec['folder']}/) in {home}, or pass data_home=... (or set the "
                    f"SKREC_DATA environment variable) to a folder that holds "
                    f"{spec['folder']}/{name}.")
            _base._fetch_archive(spec["url"], spec["md5"], home, missing=name, folder=folder,
                                 what=f"MovieLens {variant}")
    out, encoder = _read_movielens(variant, folder / spec["ratings"], folder / spec["titles"], spec, _DESCR,
                                   folder, with_encoder=True)
    if fold:
        for part, suffix in (("train", "base"), ("test", "test")):
            c = _read_table(folder / f"{fold}.{suffix}", sep=spec["sep"], header=spec["header"])
            b = encoder._encode(c["user"], c["item"], c["rating"], c["timestamp"])
            out[part] = b.X
            out[f"{part}_timestamps"] = b.timestamps
        out["fold"] = fold
    return out


def _read_movielens(variant, ratings_path, titles_path, spec, descr, folder, with_encoder=False):
    """The ratings, timestamps, ids and titles of one MovieLens layout, as a Bunch."""
    cols = _read_table(ratings_path, sep=spec["sep"], header=spec["header"])
    full = encode_interactions(cols["user"], cols["item"], cols["rating"], timestamps=cols["timestamp"])
    titles = _titles(titles_path, spec["titles_format"]) if titles_path.is_file() else {}
    item_titles = np.array([titles.get(i, "") for i in full.item_ids.tolist()], dtype=str)
    n_users, n_items = full.X.shape
    out = Bunch(ratings=full.X, timestamps=full.timestamps, user_ids=full.user_ids,
                item_ids=full.item_ids, item_titles=item_titles,
                DESCR=descr.format(variant=variant, folder=folder,
                                   shape=f"{full.X.nnz} ratings, {n_users} users, {n_items} movies."))
    return (out, full.encoder) if with_encoder else out
