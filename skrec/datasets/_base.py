"""Where data sets live on disk, and the one download path (checksum, extraction, errors)."""

import hashlib
import os
import sys
import zipfile
from pathlib import Path
from urllib import request

from tqdm.auto import tqdm

from ..utils.validation import raise_invalid

_CHUNK = 1 << 20


def get_data_home(data_home=None):
    """Return the folder that holds (or will hold) skrec's data sets.

    Nothing is created here: a loader creates the folder only when it has to download.

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        An explicit folder. When omitted, the environment variable ``SKREC_DATA`` is used
        if set, else ``$XDG_CACHE_HOME/skrec``, else ``~/.cache/skrec``.

    Returns
    -------
    pathlib.Path
        The folder, with ``~`` expanded.

    Examples
    --------
    >>> get_data_home("/tmp/my_data").as_posix()
    '/tmp/my_data'
    >>> from pathlib import Path
    >>> isinstance(get_data_home(), Path)  # $SKREC_DATA or the user cache folder
    True
    """
    if data_home is None:
        env = os.environ.get("SKREC_DATA")
        if env:
            return Path(env).expanduser()
        cache = os.environ.get("XDG_CACHE_HOME")
        base = Path(cache).expanduser() if cache else Path("~/.cache").expanduser()
        return base / "skrec"
    if not isinstance(data_home, (str, os.PathLike)):
        raise_invalid("data_home", "a str, an os.PathLike or None", data_home, TypeError)
    return Path(data_home).expanduser()


def _md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_extract(archive, target):
    """Extract a zip archive under ``target``, refusing members that would escape it."""
    target = Path(target).resolve()
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            dest = (target / member.filename).resolve()
            if dest != target and target not in dest.parents:
                raise OSError(f"refusing to extract {member.filename!r} from {archive}: "
                              f"the path leaves {target}.")
        zf.extractall(target)


def _copy_with_progress(response, out, name):
    """Copy a download to ``out`` in chunks, with a progress bar on stderr (sized when the
    server sends a length)."""
    size = response.headers.get("Content-Length") if hasattr(response, "headers") else None
    with tqdm(total=int(size) if size and size.isdigit() else None, unit="B", unit_scale=True,
              desc=f"downloading {name}", file=sys.stderr, leave=False) as bar:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            bar.update(len(chunk))


def _download(url, part, failed, fix):
    """Stream ``url`` into the file ``part`` (its folder created) with a progress bar.

    On any failure (network, HTTP, disk: all reported the same way) ``part`` is removed and
    ``OSError("<failed> (<the error>). <fix>")`` is raised.
    """
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        with request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            _copy_with_progress(response, out, part.name.removesuffix(".part"))
    except Exception as exc:
        part.unlink(missing_ok=True)
        raise OSError(f"{failed} ({type(exc).__name__}: {exc}). {fix}") from exc


def _fetch_archive(url, md5, data_home, *, missing, folder, what):
    """Download ``url`` into ``data_home`` (unless the archive is already there), check it, extract.

    Parameters
    ----------
    url : str
        Archive address; its file name is used in ``data_home``.
    md5 : str or None
        Expected md5 digest; ``None`` skips the check.
    data_home : pathlib.Path
        Target folder (created if needed).
    missing : str
        Name of the file the caller could not find (for the error message).
    folder : pathlib.Path
        Folder where ``missing`` was expected (for the error message).
    what : str
        Human name of the data set.

    Raises
    ------
    OSError
        When the download fails, the checksum does not match or extraction fails; the message
        says what was missing where, why the download failed and how to fix it.
    """
    name = url.rsplit("/", 1)[-1]
    archive = data_home / name
    fix = (f"To fix it, download {url} yourself and place it (or its extracted folder "
           f"{folder.name}/) in {data_home}, or pass data_home=... (or set the SKREC_DATA "
           f"environment variable) to a folder that already holds {folder.name}/{missing}.")
    head = f"{what}: file {missing!r} is missing under {folder}"
    downloaded = not archive.is_file()
    if downloaded:
        part = data_home / (name + ".part")
        _download(url, part, f"{head} and downloading {url} failed", fix)
        os.replace(part, archive)
    if md5 is not None:
        got = _md5(archive)
        if got != md5:
            if downloaded:
                archive.unlink(missing_ok=True)
            where = f"downloaded from {url} (now deleted)" if downloaded else "found there"
            raise OSError(f"{head}; the archive {archive} {where} failed its checksum "
                          f"(md5 {got}, expected {md5}): it may be truncated, corrupted or "
                          f"changed upstream. {fix}")
    try:
        _safe_extract(archive, data_home)
    except (OSError, zipfile.BadZipFile) as exc:
        raise OSError(f"{head} and extracting {archive} failed "
                      f"({type(exc).__name__}: {exc}). {fix}") from exc
    if downloaded:
        archive.unlink(missing_ok=True)
    if not (folder / missing).is_file():
        raise OSError(f"{head}, and the archive {url} did not contain it. {fix}")
