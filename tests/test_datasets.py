"""Tests for skrec.datasets: real-data loaders, readers, the id encoder, synthetic generators."""

import gzip
import hashlib
import io
import os
import subprocess
import sys
import time
import urllib.error
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from skrec.datasets import (InteractionEncoder, encode_frame, encode_interactions, get_data_home,
                            load_movielens, make_interactions, read_interactions, read_sequences)
from skrec.datasets import _movielens


def same_pattern(a, b):
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices))


def write(path, text):
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- ML-100k
@pytest.fixture(scope="module")
def ml100k(data_home):
    return load_movielens("100k", data_home=data_home, download=False)


def test_movielens_100k_published_stats(ml100k):
    b = ml100k
    assert isinstance(b.ratings, sp.csr_matrix) and b.ratings.dtype == np.float64
    assert b.ratings.shape == (943, 1682) and b.ratings.nnz == 100_000
    assert set(np.unique(b.ratings.data)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert b.ratings.has_canonical_format
    assert same_pattern(b.ratings, b.timestamps)
    assert b.timestamps.data.min() == 874724710 and b.timestamps.data.max() == 893286638
    np.testing.assert_array_equal(b.user_ids, np.arange(1, 944))
    np.testing.assert_array_equal(b.item_ids, np.arange(1, 1683))
    assert b.item_titles.shape == (1682,) and b.item_titles[0] == "Toy Story (1995)"
    assert b.item_titles[1] == "GoldenEye (1995)"
    assert "redistribut" in b.DESCR and "Harper" in b.DESCR
    # user 196 rated item 242 with 3 at 881250949 (first line of u.data)
    assert b.ratings[195, 241] == 3 and b.timestamps[195, 241] == 881250949


@pytest.mark.parametrize("fold", ["u1", "u2", "u3", "u4", "u5"])
def test_movielens_100k_official_folds(data_home, ml100k, fold):
    b = load_movielens("100k", data_home=data_home, download=False, fold=fold)
    assert b.fold == fold
    for part, n in (("train", 80_000), ("test", 20_000)):
        assert b[part].shape == (943, 1682) and b[part].nnz == n
        assert same_pattern(b[part], b[f"{part}_timestamps"])
        # aligned with the full matrices, value for value
        np.testing.assert_array_equal(b[part].toarray()[b[part].toarray() > 0],
                                      ml100k.ratings.toarray()[b[part].toarray() > 0])
        np.testing.assert_array_equal(b[f"{part}_timestamps"].data,
                                      ml100k.timestamps[b[part].nonzero()].A1)
    assert b.train.multiply(b.test).nnz == 0
    assert (b.train + b.test != ml100k.ratings).nnz == 0


def test_movielens_100k_test_folds_partition_and_ua(data_home, ml100k):
    total = sum(load_movielens("100k", data_home=data_home, download=False, fold=f).test
                for f in ("u1", "u2", "u3", "u4", "u5"))
    assert (total != ml100k.ratings).nnz == 0
    ua = load_movielens("100k", data_home=data_home, download=False, fold="ua")
    assert ua.train.nnz == 90_570 and ua.test.nnz == 9_430
    assert np.all(np.diff(ua.test.indptr) == 10)


def test_movielens_1m_without_ratings_file_offline(data_home, tmp_path):
    # the shared ml-1m folder has no full ratings.dat: with download=False this must say so
    with pytest.raises(OSError, match="ratings.dat") as info:
        load_movielens("1m", data_home=data_home, download=False)
    msg = str(info.value)
    assert str(data_home / "ml-1m") in msg and "download=False" in msg and "SKREC_DATA" in msg


def test_movielens_1m_layout_latin1_titles(data_home, tmp_path):
    titles = _movielens._titles(data_home / "ml-1m" / "movies.dat", "colons")
    assert len(titles) == 3_883 and titles[1] == "Toy Story (1995)"
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    write(folder / "ratings.dat", "2::7::4::978300760\n1::7::5::978300275\n1::9::3::978824291\n")
    (folder / "movies.dat").write_bytes("7::Café (1995)::Drama\n".encode("latin-1"))
    b = load_movielens("1m", data_home=tmp_path, download=False)
    np.testing.assert_array_equal(b.ratings.toarray(), [[5, 3], [4, 0]])
    np.testing.assert_array_equal(b.item_titles, ["Café (1995)", ""])
    assert same_pattern(b.ratings, b.timestamps) and b.timestamps[1, 0] == 978300760


# ----------------------------------------------------------------------------- other real files
def test_read_interactions_ml1m_ge4(data_home):
    t0 = time.perf_counter()
    b = read_interactions(data_home / "ml-1m" / "ratings_ge4_complete.dat")
    elapsed = time.perf_counter() - t0
    assert b.ratings.shape == (6_038, 3_533) and b.ratings.nnz == 575_281
    assert b.n_duplicates_dropped == 0
    values, counts = np.unique(b.ratings.data, return_counts=True)
    np.testing.assert_array_equal(values, [4.0, 5.0])
    np.testing.assert_array_equal(counts, [348_971, 226_310])
    assert same_pattern(b.ratings, b.timestamps)
    assert b.user_ids.dtype.kind == "i" and b.user_ids[0] == 1
    r = np.searchsorted(b.user_ids, 1)
    c = np.searchsorted(b.item_ids, 1193)
    assert b.ratings[r, c] == 5 and b.timestamps[r, c] == 978300760
    assert elapsed < 10, f"loading took {elapsed:.1f} s"


def test_read_sequences_beauty(data_home):
    t0 = time.perf_counter()
    b = read_sequences(data_home / "s3rec" / "Beauty.txt")
    elapsed = time.perf_counter() - t0
    assert b.order.shape == (22_363, 12_101)
    assert b.order.nnz + b.n_duplicates_dropped == 198_502
    assert sum(len(s) for s in b.sequences) == 198_502
    np.testing.assert_array_equal(b.user_ids, np.arange(1, 22_364))
    np.testing.assert_array_equal(b.item_ids, np.arange(1, 12_102))
    # first line: "1 1 2 3 4 5"
    np.testing.assert_array_equal(b.sequences[0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(b.order[0].toarray().ravel()[:5], [1, 2, 3, 4, 5])
    # every row: the stored value of the last item of the sequence is the sequence length
    last = np.array([s[-1] for s in b.sequences])
    lengths = np.array([len(s) for s in b.sequences])
    np.testing.assert_array_equal(b.order[np.arange(22_363), last].A1, lengths)
    assert np.all(np.diff(b.order.indptr) >= 5)
    assert elapsed < 5, f"loading took {elapsed:.1f} s"


def test_read_sequences_repeats_and_bad_input(tmp_path):
    p = write(tmp_path / "s.txt", "u2 b a b\nu1 c\n\nu3\n")
    b = read_sequences(p)
    np.testing.assert_array_equal(b.user_ids, ["u1", "u2", "u3"])
    np.testing.assert_array_equal(b.item_ids, ["a", "b", "c"])
    assert b.n_duplicates_dropped == 1
    np.testing.assert_array_equal(b.order.toarray(), [[0, 0, 1], [2, 3, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b.sequences[1], [1, 0, 1])
    assert b.sequences[2].size == 0
    with pytest.raises(ValueError, match="one line per user"):
        read_sequences(write(tmp_path / "d.txt", "1 2 3\n1 4\n"))
    with pytest.raises(FileNotFoundError, match="path"):
        read_sequences(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="empty"):
        read_sequences(write(tmp_path / "e.txt", "\n"))


# ----------------------------------------------------------------------------- download path
def test_get_data_home(monkeypatch, tmp_path):
    assert get_data_home(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("SKREC_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    monkeypatch.delenv("SKREC_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert get_data_home() == tmp_path / "xdg" / "skrec"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_data_home() == tmp_path / "home" / ".cache" / "skrec"
    assert not (tmp_path / "home").exists() and not (tmp_path / "xdg").exists()
    with pytest.raises(TypeError, match="data_home"):
        get_data_home(3)


def _offline(*args, **kwargs):
    raise urllib.error.URLError("network is unreachable")


def _fake_response(payload):
    def urlopen(url, *args, **kwargs):
        assert url.startswith("https://files.grouplens.org/datasets/movielens/")
        return io.BytesIO(payload)
    return urlopen


def _tiny_archive():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t10\t4\t100\n2\t10\t5\t200\n2\t30\t1\t300\n")
        zf.writestr("ml-100k/u.item", "10|Ten (1990)|x\n30|Thirty (1991)|y\n")
    return buf.getvalue()


def test_download_offline_message(monkeypatch, tmp_path):
    monkeypatch.setattr("urllib.request.urlopen", _offline)
    home = tmp_path / "data"
    with pytest.raises(OSError) as info:
        load_movielens("100k", data_home=home)
    msg = str(info.value)
    assert "'u.data'" in msg and str(home / "ml-100k") in msg
    assert "failed" in msg and "network is unreachable" in msg
    assert "SKREC_DATA" in msg and "data_home" in msg and "ml-100k.zip" in msg
    assert list(home.iterdir()) == []  # no partial download left behind


def test_download_checksum_mismatch(monkeypatch, tmp_path):
    monkeypatch.setattr("urllib.request.urlopen", _fake_response(b"not the GroupLens archive"))
    with pytest.raises(OSError, match="checksum"):
        load_movielens("1m", data_home=tmp_path)
    assert not (tmp_path / "ml-1m.zip").exists()
    # a hand-placed archive with a wrong checksum is reported and left in place
    monkeypatch.setattr("urllib.request.urlopen", _offline)
    (tmp_path / "ml-100k.zip").write_bytes(_tiny_archive())
    with pytest.raises(OSError, match="checksum") as info:
        load_movielens("100k", data_home=tmp_path)
    assert "found there" in str(info.value) and (tmp_path / "ml-100k.zip").exists()


def test_download_success_and_placed_archive(monkeypatch, tmp_path):
    payload = _tiny_archive()
    monkeypatch.setitem(_movielens._VARIANTS["100k"], "md5", hashlib.md5(payload).hexdigest())
    monkeypatch.setattr("urllib.request.urlopen", _fake_response(payload))
    b = load_movielens("100k", data_home=tmp_path / "dl")
    assert b.ratings.shape == (2, 2) and b.ratings.nnz == 3
    np.testing.assert_array_equal(b.item_titles, ["Ten (1990)", "Thirty (1991)"])
    assert not (tmp_path / "dl" / "ml-100k.zip").exists()
    # offline, an archive placed by hand is verified and extracted without the network
    monkeypatch.setattr("urllib.request.urlopen", _offline)
    (tmp_path / "ml-100k.zip").write_bytes(payload)
    b = load_movielens("100k", data_home=tmp_path)
    assert b.ratings.nnz == 3 and (tmp_path / "ml-100k" / "u.data").is_file()


def test_download_refuses_escaping_archive(monkeypatch, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.txt", "x")
    monkeypatch.setitem(_movielens._VARIANTS["100k"], "md5", hashlib.md5(buf.getvalue()).hexdigest())
    monkeypatch.setattr("urllib.request.urlopen", _fake_response(buf.getvalue()))
    home = tmp_path / "home"
    with pytest.raises(OSError, match="refusing"):
        load_movielens("100k", data_home=home)
    assert not (tmp_path / "evil.txt").exists()


def test_load_movielens_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="variant"):
        load_movielens("10m", data_home=tmp_path)
    with pytest.raises(ValueError, match="fold"):
        load_movielens("1m", data_home=tmp_path, fold="u1")
    with pytest.raises(ValueError, match="fold"):
        load_movielens("100k", data_home=tmp_path, fold="u9")
    with pytest.raises(TypeError, match="download"):
        load_movielens("100k", data_home=tmp_path, download="no")
    with pytest.raises(OSError, match="download=False"):
        load_movielens("latest-small", data_home=tmp_path, download=False)


def test_load_movielens_latest_small_layout(tmp_path):
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    write(folder / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n"
                                  "1,3,4.5,964981247\n2,1,2.5,1445714835\n")
    write(folder / "movies.csv", 'movieId,title,genres\n1,Toy Story (1995),Comedy\n'
                                 '3,"Grumpier Old Men, The (1995)",Comedy\n')
    b = load_movielens("latest-small", data_home=tmp_path, download=False)
    np.testing.assert_array_equal(b.ratings.toarray(), [[4.0, 4.5], [2.5, 0]])
    np.testing.assert_array_equal(b.item_titles, ["Toy Story (1995)", "Grumpier Old Men, The (1995)"])


# ----------------------------------------------------------------------------- read_interactions
@pytest.mark.parametrize("sep, header", [("::", ""), ("\t", ""), (",", "user,item,rating,ts\n"),
                                         (" ", ""), ("  ", "user item rating timestamp\n")])
def test_read_interactions_separators_and_header(tmp_path, sep, header):
    rows = [(3, 10, 5, 100), (1, 20, 3, 200), (3, 20, 1, 300)]
    text = header + "".join(sep.join(map(str, r)) + "\n" for r in rows)
    b = read_interactions(write(tmp_path / "r.txt", text))
    np.testing.assert_array_equal(b.user_ids, [1, 3])
    np.testing.assert_array_equal(b.item_ids, [10, 20])
    np.testing.assert_array_equal(b.ratings.toarray(), [[0, 3], [5, 1]])
    np.testing.assert_array_equal(b.timestamps.toarray(), [[0, 200], [100, 300]])


def test_read_interactions_string_ids_columns_gzip(tmp_path):
    p = tmp_path / "r.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write("x,alice,book,7\nx,bob,book,8\nx,alice,pen,9\n")
    b = read_interactions(p, columns=(None, "user", "item", "timestamp"))
    np.testing.assert_array_equal(b.user_ids, ["alice", "bob"])
    np.testing.assert_array_equal(b.item_ids, ["book", "pen"])
    np.testing.assert_array_equal(b.ratings.toarray(), [[1, 1], [1, 0]])
    np.testing.assert_array_equal(b.timestamps.toarray(), [[7, 9], [8, 0]])
    b = read_interactions(p, columns=(None, "user", "item"), dtype=np.float32)
    assert b.timestamps is None and b.ratings.dtype == np.float32


def test_read_interactions_duplicates(tmp_path):
    # (1, 10) three times: the latest timestamp wins, ties broken by file order
    p = write(tmp_path / "d.tsv", "1\t10\t1\t50\n1\t10\t2\t90\n1\t10\t3\t90\n1\t10\t4\t10\n2\t10\t5\t1\n")
    b = read_interactions(p)
    assert b.n_duplicates_dropped == 3
    np.testing.assert_array_equal(b.ratings.toarray(), [[3], [5]])
    np.testing.assert_array_equal(b.timestamps.toarray(), [[90], [1]])
    assert read_interactions(p, duplicates="first").ratings[0, 0] == 4
    assert read_interactions(p, duplicates="sum").ratings[0, 0] == 10
    with pytest.raises(ValueError, match=r"repeated pairs.*\(1, 10\)"):
        read_interactions(p, duplicates="error")


def test_read_interactions_bad_input(tmp_path):
    p = write(tmp_path / "r.txt", "1 2 3 4\n")
    with pytest.raises(FileNotFoundError, match="path"):
        read_interactions(tmp_path / "nope.txt")
    with pytest.raises(TypeError, match="path"):
        read_interactions(3)
    with pytest.raises(ValueError, match="columns"):
        read_interactions(p, columns=("user", "rating"))
    with pytest.raises(ValueError, match="columns"):
        read_interactions(p, columns=("user", "item", "rating", "timestamp", "extra"))
    with pytest.raises(ValueError, match="columns"):
        read_interactions(p, columns=("user", "item", "rating", "timestamp", None))
    with pytest.raises(ValueError, match="duplicates"):
        read_interactions(p, duplicates="keep")
    with pytest.raises(TypeError, match="dtype"):
        read_interactions(p, dtype=np.int64)
    with pytest.raises(ValueError, match="could not be read"):
        read_interactions(write(tmp_path / "bad.txt", "1 2 3 4\n1 3 three 5\n"))
    with pytest.raises(ValueError, match="empty"):
        read_interactions(write(tmp_path / "empty.txt", ""))


# ----------------------------------------------------------------------------- encoder
def test_encoder_round_trip_string_ids():
    rng = np.random.default_rng(0)
    users = np.array([f"user{k}" for k in rng.integers(0, 30, 300)])
    items = np.array([f"item{k}" for k in rng.integers(0, 50, 300)])
    values = rng.integers(1, 6, 300).astype(float)
    users_copy, items_copy, values_copy = users.copy(), items.copy(), values.copy()
    enc = InteractionEncoder(duplicates="last")
    X = enc.fit_transform(users, items, values)
    np.testing.assert_array_equal(users, users_copy)  # caller's arrays untouched
    np.testing.assert_array_equal(items, items_copy)
    np.testing.assert_array_equal(values, values_copy)
    assert X.shape == (enc.n_users_, enc.n_items_) and X.has_canonical_format
    assert list(enc.user_ids_) == sorted(set(users)) and list(enc.item_ids_) == sorted(set(items))
    dense = np.zeros(X.shape)
    dense[enc.transform_users(users), enc.transform_items(items)] = values  # last one wins
    np.testing.assert_array_equal(X.toarray(), dense)
    rows, cols = X.nonzero()
    np.testing.assert_array_equal(enc.transform_users(enc.inverse_transform_users(rows)), rows)
    np.testing.assert_array_equal(enc.inverse_transform_items(cols.reshape(-1, 1)).ravel(),
                                  enc.item_ids_[cols])
    assert clone(enc).get_params() == enc.get_params()


def test_encode_interactions_fixed_ids_and_unknown():
    b = encode_interactions([5, 7], ["b", "a"], [1.0, 2.0], user_ids=[7, 5, 9], item_ids=["b", "a"])
    np.testing.assert_array_equal(b.X.toarray(), [[0, 2], [1, 0], [0, 0]])
    np.testing.assert_array_equal(b.user_ids, [7, 5, 9])
    with pytest.raises(ValueError, match=r"users must be ids known.*1 unknown ids, e.g. \[8\]"):
        encode_interactions([5, 8], ["b", "a"], user_ids=[7, 5])
    with pytest.raises(ValueError, match=r"items must be ids known.*'zz'"):
        encode_interactions([5], ["zz"], item_ids=["a"])
    with pytest.raises(ValueError, match="users must be ids known"):
        encode_interactions(["5"], ["a"], user_ids=[5])  # a str id is not the int id
    enc = InteractionEncoder(handle_unknown="ignore").fit([1, 2], [1, 2])
    np.testing.assert_array_equal(enc.transform([1, 3], [2, 2]).toarray(), [[0, 1], [0, 0]])
    np.testing.assert_array_equal(enc.transform_items([2, 9]), [1, -1])
    given = np.array([3, 1, 2])
    b = encode_interactions([1], [1], user_ids=given)
    b.user_ids[0] = 99
    assert given[0] == 3  # the caller's id array is never shared


def test_encode_interactions_timestamps_and_duplicates():
    b = encode_interactions(["u", "u", "v"], ["a", "a", "a"], [1.0, 2.0, 3.0],
                            timestamps=[20, 10, 5], duplicates="last")
    np.testing.assert_array_equal(b.X.toarray(), [[1], [3]])
    np.testing.assert_array_equal(b.timestamps.toarray(), [[20], [5]])
    assert same_pattern(b.X, b.timestamps) and b.n_duplicates_dropped == 1
    b = encode_interactions(["u", "u"], ["a", "a"], duplicates="sum")
    assert b.X[0, 0] == 2.0
    with pytest.raises(ValueError, match="duplicates='error'"):
        encode_interactions(["u", "u"], ["a", "a"])


def test_encode_frame_with_pandas():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"uid": ["b", "a", "b"], "iid": [3, 3, 1], "stars": [4.0, 5.0, 2.0],
                       "when": pd.to_datetime(["2020-01-01", "2020-01-02", "1970-01-01 00:00:10"],
                                              format="mixed")})
    df_copy = df.copy()
    b = encode_frame(df, "uid", "iid", value_col="stars", time_col="when")
    pd.testing.assert_frame_equal(df, df_copy)
    np.testing.assert_array_equal(b.user_ids, ["a", "b"])
    np.testing.assert_array_equal(b.X.toarray(), [[0, 5], [2, 4]])
    assert b.timestamps[1, 0] == 10.0 and b.timestamps[1, 1] == 1577836800.0
    b2 = encode_frame(df.astype({"uid": object}), "uid", "iid")
    np.testing.assert_array_equal(b2.X.toarray(), [[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="value_col"):
        encode_frame(df, "uid", "iid", value_col="rating")
    with pytest.raises(TypeError, match="df"):
        encode_frame([1, 2, 3])


def test_encoder_bad_input():
    with pytest.raises(ValueError, match="items must be of the same length"):
        encode_interactions([1, 2], [1])
    with pytest.raises(ValueError, match="users must be a 1-D"):
        encode_interactions([[1, 2]], [1, 2])
    with pytest.raises(TypeError, match="users"):
        encode_interactions("abc", [1, 2, 3])
    with pytest.raises(ValueError, match="users must be ids without NaN"):
        encode_interactions([1.0, np.nan], [1, 2])
    with pytest.raises(ValueError, match="users must be a non-empty"):
        encode_interactions([], [])
    with pytest.raises(ValueError, match="values must be free of NaN"):
        encode_interactions([1, 2], [1, 2], [1.0, np.nan])
    with pytest.raises(TypeError, match="values must be a 1-D array of numbers"):
        encode_interactions([1, 2], [1, 2], ["a", "b"])
    with pytest.raises(ValueError, match="timestamps must be of the same length"):
        encode_interactions([1, 2], [1, 2], timestamps=[1])
    with pytest.raises(ValueError, match="user_ids must be unique"):
        encode_interactions([1], [1], user_ids=[1, 1])
    with pytest.raises(ValueError, match="duplicates"):
        encode_interactions([1], [1], duplicates="max")
    with pytest.raises(TypeError, match="users must hold ids of one sortable type"):
        encode_interactions(np.array([1, "a"], dtype=object), [1, 2])
    enc = InteractionEncoder().fit([1, 2], [1, 2])
    with pytest.raises(ValueError, match="idx must be indices in"):
        enc.inverse_transform_items([2])
    with pytest.raises(TypeError, match="idx"):
        enc.inverse_transform_users([0.5])


# ----------------------------------------------------------------------------- synthetic
@pytest.mark.parametrize("kind", ["implicit", "explicit", "sequence"])
def test_make_interactions_deterministic(kind):
    a = make_interactions(120, 60, kind=kind, random_state=3)
    b = make_interactions(120, 60, kind=kind, random_state=3)
    c = make_interactions(120, 60, kind=kind, random_state=4)
    assert isinstance(a.X, sp.csr_matrix) and a.X.shape == (120, 60) and a.X.has_canonical_format
    assert (a.X != b.X).nnz == 0 and (a.X != c.X).nnz > 0
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key])
    gen = make_interactions(50, 30, kind=kind, random_state=np.random.default_rng(0))
    assert gen.X.nnz > 0


def test_make_interactions_implicit_structure():
    b = make_interactions(400, 300, n_clusters=6, density=0.05, noise=0.1, random_state=0)
    assert set(np.unique(b.X.data)) == {1.0}
    assert abs(b.X.nnz / (400 * 300) - 0.05) < 0.01
    assert np.all(np.diff(b.X.indptr) >= 1)
    rows, cols = b.X.nonzero()
    share = (b.user_cluster[rows] == b.item_cluster[cols]).mean()
    assert share > 0.85  # about 1 - noise + noise / n_clusters
    # popular items are popular: the top decile by planted popularity collects most clicks
    clicks = np.asarray(b.X.sum(axis=0)).ravel()
    top = np.argsort(-b.item_popularity)[:30]
    assert clicks[top].sum() > 0.2 * clicks.sum()
    rand = make_interactions(400, 300, n_clusters=6, noise=1.0, random_state=0)
    r, c = rand.X.nonzero()
    assert abs((rand.user_cluster[r] == rand.item_cluster[c]).mean() - 1 / 6) < 0.05


def test_make_interactions_explicit_structure():
    b = make_interactions(300, 200, kind="explicit", n_clusters=4, density=0.1, noise=0.1,
                          random_state=0)
    assert set(np.unique(b.X.data)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert b.user_factors.shape == (300, 4) and b.item_factors.shape == (200, 4)
    rows, cols = b.X.nonzero()
    truth = (b.global_mean + b.user_bias[rows] + b.item_bias[cols]
             + np.sum(b.user_factors[rows] * b.item_factors[cols], axis=1))
    assert np.corrcoef(truth, b.X.data)[0, 1] > 0.85
    assert abs(b.X.nnz / (300 * 200) - 0.1) < 0.02


def test_make_interactions_sequence_structure():
    b = make_interactions(200, 400, kind="sequence", n_clusters=4, density=0.05, noise=0.1,
                          random_state=0)
    X, T = b.X, b.transition
    np.testing.assert_allclose(np.asarray(T.sum(axis=1)).ravel(), 1.0)
    hits = total = 0
    for r in range(X.shape[0]):
        row = X[r]
        # positions are exactly 1..L: one stored value per item, no repeated item
        np.testing.assert_array_equal(np.sort(row.data), np.arange(1, row.nnz + 1))
        seq = row.indices[np.argsort(row.data)]
        assert row.nnz >= 2
        hits += int(np.sum(T[seq[:-1], seq[1:]].A1 > 0))
        total += seq.size - 1
    assert hits / total > 0.6  # most consecutive pairs are planted transitions


def test_make_interactions_bad_params():
    with pytest.raises(ValueError, match="kind"):
        make_interactions(kind="ratings")
    with pytest.raises(ValueError, match="density"):
        make_interactions(density=0)
    with pytest.raises(ValueError, match="density"):
        make_interactions(density=1.5)
    with pytest.raises(ValueError, match="n_clusters"):
        make_interactions(10, 5, n_clusters=6)
    with pytest.raises(ValueError, match="n_users"):
        make_interactions(0)
    with pytest.raises(TypeError, match="n_items"):
        make_interactions(10, 5.0)
    with pytest.raises(ValueError, match="noise"):
        make_interactions(noise=1.5)
    assert make_interactions(20, 10, kind="explicit", noise=1.5, random_state=0).X.nnz > 0
    with pytest.raises(TypeError, match="random_state"):
        make_interactions(random_state="seed")


def test_public_api():
    import skrec.datasets as ds
    assert sorted(ds.__all__) == sorted(
        ["InteractionEncoder", "encode_frame", "encode_interactions", "get_data_home",
         "load_movielens", "make_interactions", "read_interactions", "read_sequences"])
    for name in ds.__all__:
        assert "Examples" in getattr(ds, name).__doc__


def test_works_without_pandas():
    # pandas is not a runtime dependency: block it and use the encoder and a generator
    code = ("import sys; sys.modules['pandas'] = None\n"
            "import skrec.datasets as d\n"
            "b = d.encode_frame({'user': ['a', 'b'], 'item': [1, 1]})\n"
            "print(b.X.nnz, d.make_interactions(20, 10, random_state=0).X.shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2 (20, 10)"


# ------------------------------------------------------------------ the bundled latest-small
def test_load_movielens_latest_small_bundled_offline(monkeypatch, tmp_path):
    # no data folder, no network: the copy shipped inside the package is read
    monkeypatch.setenv("SKREC_DATA", str(tmp_path / "nothing-here"))
    monkeypatch.setattr("urllib.request.urlopen", _offline)
    b = load_movielens("latest-small")
    assert b.ratings.shape == (610, 9724) and b.ratings.nnz == 100_836
    assert b.timestamps.nnz == b.ratings.nnz
    np.testing.assert_array_equal(b.timestamps.indices, b.ratings.indices)
    np.testing.assert_array_equal(b.timestamps.indptr, b.ratings.indptr)
    assert set(np.unique(b.ratings.data)) == set(np.arange(1, 11) / 2)  # half stars 0.5 .. 5.0
    assert b.timestamps.data.min() >= 828_000_000 and b.timestamps.data.max() < 1_538_000_000
    assert (np.diff(b.ratings.indptr) >= 20).all()
    # titles aligned with the columns: movieId 1 is Toy Story, 2571 The Matrix
    titles = dict(zip(b.item_ids.tolist(), b.item_titles.tolist()))
    assert titles[1] == "Toy Story (1995)" and titles[2571] == "Matrix, The (1999)"
    assert (b.item_titles != "").all()
    assert "redistributed" in b.DESCR and "commercial" in b.DESCR and "Harper" in b.DESCR
    assert not (tmp_path / "nothing-here").exists()


def test_load_movielens_latest_small_bundled_matches_the_release(data_home):
    # the shipped, compressed copy is the shared 2018-09-26 release, value for value
    bundled = load_movielens("latest-small")
    release = load_movielens("latest-small", data_home=data_home, download=False)
    assert (bundled.ratings != release.ratings).nnz == 0
    assert (bundled.timestamps != release.timestamps).nnz == 0
    np.testing.assert_array_equal(bundled.item_titles, release.item_titles)
    np.testing.assert_array_equal(bundled.user_ids, release.user_ids)


def test_load_movielens_latest_small_bundled_corrupted(monkeypatch, tmp_path):
    import lzma

    folder = tmp_path / "bundled"
    folder.mkdir()
    (folder / "ratings.csv.xz").write_bytes(lzma.compress(b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n"))
    monkeypatch.setattr(_movielens, "_BUNDLED", folder)
    with pytest.raises(OSError, match="failed its checksum.*reinstall skrec"):
        load_movielens("latest-small")
    (folder / "ratings.csv.xz").unlink()
    with pytest.raises(OSError, match="installation is incomplete"):
        load_movielens("latest-small")
