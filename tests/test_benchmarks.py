"""The benchmark tool (``python -m benchmarks``): references, tuning split, runner, reports,
the study and yardstick registries."""

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import peers, report, speed, studies, suite, yardsticks
from benchmarks._common import synthetic_matrix
from benchmarks.__main__ import main as cli
from benchmarks.params import STUDIES
from benchmarks.tune import FitOnHistory, search_space
from skrec import EASE, BaselineBiases
from skrec.datasets import make_interactions
from skrec.model_selection import evaluate, holdout_split

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def planted():
    return make_interactions(300, 80, n_clusters=4, density=0.08, noise=0.1, random_state=0).X


def test_popularity_and_ease_rank_like_brute_force(planted):
    hist, held = holdout_split(planted, 0.2, random_state=0)
    pop = peers.Popularity().fit(hist)
    ids, scores = pop.recommend(hist[:5], k=3)
    counts = np.asarray((hist != 0).sum(axis=0)).ravel().astype(float)
    for row, got, score in zip(hist[:5].toarray(), ids, scores):
        masked = np.where(row > 0, -np.inf, counts)
        assert np.array_equal(score, np.sort(masked)[::-1][:3]) and np.array_equal(masked[got], score)
    # Two independent EASE implementations: numpy here, skrec's closed form (dropout 0).
    ease = peers.EASE(lam=20.0).fit(hist)
    ours = EASE(alpha=20.0, input_dropout=0.0, user_norm=0.0, item_norm=0.0, device="cpu").fit(hist)
    a = evaluate(ease, hist, held, ("ndcg@10", "recall@20"))
    b = evaluate(ours, hist, held, ("ndcg@10", "recall@20"))
    assert a["ndcg@10"] == pytest.approx(b["ndcg@10"], abs=1e-6)
    assert a["ndcg@10"] > 1.5 * evaluate(pop, hist, held, ("ndcg@10",))["ndcg@10"]


def test_reference_fit_adds_y_like_skrec(planted):
    X, y = holdout_split(planted, 0.3, random_state=1)
    assert np.array_equal(peers.Popularity().fit(X, y).counts_,
                          peers.Popularity().fit(X + y).counts_)


def test_implicit_adapters_fold_in_and_check_rows(planted):
    pytest.importorskip("implicit")
    als = peers.ImplicitALS(factors=8, iterations=5).fit(planted)
    ids, scores = als.recommend(planted[:4], k=5)
    assert ids.shape == (4, 5) and np.all(np.diff(scores, axis=1) <= 1e-6)
    assert not (planted[:4].toarray()[np.arange(4)[:, None], ids] > 0).any()  # history excluded
    bpr = peers.ImplicitBPR(factors=8, iterations=5, same_users=True).fit(planted)
    with pytest.raises(ValueError, match="same_users=True needs the 300 training rows"):
        bpr.recommend(planted[:4], k=5)
    unseen = peers.ImplicitBPR(factors=8, iterations=5).fit(planted).recommend(planted[:4], k=5)[0]
    assert unseen.shape == (4, 5)


def test_search_space_keeps_validation_targets_out_of_training(planted):
    fit, rest = planted[:200], planted[200:]
    hist, held = holdout_split(rest, 0.2, random_state=0)
    X, y, cv = search_space(fit, hist, held, same_users=False)
    (train, test), = cv
    assert y[train].nnz == 0 and (y[test] != held).nnz == 0 and (X[test] != hist).nnz == 0
    X, y, cv = search_space(hist, hist, held, same_users=True)
    wrapped = FitOnHistory(peers.Popularity()).fit(X, y)  # y must never be trained on
    assert np.array_equal(wrapped.estimator_.counts_, peers.Popularity().fit(hist).counts_)


def test_suite_runs_every_protocol_and_reports(tmp_path):
    records = suite.run("synthetic", models=["BaselineBiases", "Popularity", "EASE"], device="cpu",
                        progress=False, log=lambda m: None)
    assert {(r["protocol"], r["model"]) for r in records} == (
        {("P1", "BaselineBiases")} | {(p, m) for p in ("P2", "P3", "P4") for m in ("Popularity", "EASE")})
    assert all(r["status"] == "ok" and r["fit_s"] >= 0 and r["peak_rss_mib"] > 0 for r in records)
    by = {(r["protocol"], r["model"]): r for r in records}
    for p, metric in (("P2", "ndcg@100"), ("P3", "ndcg@10"), ("P4", "ndcg@20")):
        assert by[(p, "EASE")][metric] > by[(p, "Popularity")][metric]
    assert 0.5 < by[("P1", "BaselineBiases")]["rmse"] < 2.0

    written = report.write(records, tmp_path, "env line", "python -m benchmarks --dataset synthetic")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["records"]) == len(records)
    assert (tmp_path / "results.csv").read_text().splitlines()[0].startswith("dataset,protocol,model")
    table = (tmp_path / "results.md").read_text()
    assert all(f"| {r['model']} |" in table for r in records if r["family"] == "reference")
    assert {p.name for p in written} >= {"quality_vs_time_P2.png", "quality_vs_time_P1.png"}

    section = report.compare_section(records, "cmd")
    assert "| synthetic P2 | ndcg@100 | – | EASE" in section  # no skrec ranker was run
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- compare:start -->\nold\n<!-- compare:end -->\nrest\n")
    report.update_readme(readme, section)
    text = readme.read_text()
    assert "old" not in text and section in text and text.endswith("rest\n")
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        report.update_readme(readme, section)


def test_seeds_report_mean_and_spread_and_fit_a_deterministic_model_once(monkeypatch, tmp_path):
    calls = []
    real_run_one = suite.run_one

    def counting(name, *args, random_state=0, **kwargs):
        calls.append((name, random_state))
        return real_run_one(name, *args, random_state=random_state, **kwargs)

    monkeypatch.setattr(suite, "run_one", counting)
    records = suite.run("synthetic", ["P2"], ["Popularity", "ALSRanker"], device="cpu", seeds=[0, 1, 2],
                        progress=False, log=lambda m: None)
    assert calls == [("Popularity", 0), ("ALSRanker", 0), ("ALSRanker", 1), ("ALSRanker", 2)]
    by = {r["model"]: r for r in records}
    als = by["ALSRanker"]
    assert als["seeds"] == [0, 1, 2] and len(als["per_seed"]["ndcg@100"]) == 3
    assert als["ndcg@100"] == pytest.approx(np.mean(als["per_seed"]["ndcg@100"]))
    assert als["ndcg@100_sd"] == pytest.approx(np.std(als["per_seed"]["ndcg@100"], ddof=1))
    assert "ndcg@100_sd" not in by["Popularity"] and "seeds" not in by["Popularity"]
    table = report.markdown(records)
    assert "over seeds 0, 1, 2" in table and f"{als['ndcg@100']:.4f} ± {als['ndcg@100_sd']:.4f}" in table
    assert f"ALSRanker {als['ndcg@100']:.4f} ± {als['ndcg@100_sd']:.4f}" in report.compare_section(records, "cmd")
    report.write(records, tmp_path, "", "cmd")
    assert "ndcg@100_sd" in (tmp_path / "results.csv").read_text().splitlines()[0]
    # a randomised peer gets the seed too
    assert suite.build("implicit ALS", "synthetic", "P2", random_state=3).random_state == 3


def test_seeds_must_be_integers(capsys):
    with pytest.raises(SystemExit):
        cli(["--dataset", "synthetic", "--seeds", "0,x"])
    assert "--seeds: expected comma-separated integers" in capsys.readouterr().err


def test_missing_packages_and_failures_are_rows_not_crashes(monkeypatch, tmp_path):
    monkeypatch.setattr(peers, "available", lambda module: False)
    real_build = suite.build

    def failing(name, *args, **kwargs):
        if name == "Popularity":
            raise RuntimeError("planted failure")
        return real_build(name, *args, **kwargs)

    monkeypatch.setattr(suite, "build", failing)
    code = cli(["--dataset", "synthetic", "--protocols", "P2", "--models", "Popularity,EASE,implicit ALS",
                "--device", "cpu", "--no-progress", "--out", str(tmp_path)])
    assert code == 1  # a failed model makes the run fail, with its row saying why
    rows = {r["model"]: r for r in json.loads((tmp_path / "results.json").read_text())["records"]}
    assert rows["implicit ALS"]["status"].startswith("missing")
    assert rows["Popularity"]["status"] == "error: RuntimeError: planted failure"
    assert rows["EASE"]["status"] == "ok"


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="models: expected names"):
        suite.run("synthetic", models=["SVD"], progress=False)
    with pytest.raises(ValueError, match="protocol: beauty supports"):
        suite.protocol_split("beauty", "P2")


def test_speed_times_recommend_beside_a_plain_topk(monkeypatch, tmp_path):
    monkeypatch.setitem(speed.SHAPES, "tiny", (300, 120, 3000))
    assert speed.main(["--shapes", "tiny", "--scales", "1", "--epochs", "1", "--models", "BaselineBiases",
                       "--yardstick", "plain-mf", "--yardstick-batches", "2", "--recommend", "--device", "cpu",
                       "--out", str(tmp_path)]) == 0
    scored = [r for r in json.loads((tmp_path / "speed.json").read_text())["rows"] if r.get("recommend")]
    assert len(scored) == 1 and scored[0]["epoch_s"] > 0 and scored[0]["plain_s"] > 0 and scored[0]["fit_s"] > 0
    assert "| recommend | fold-in + scores + torch.topk |" in (tmp_path / "speed.md").read_text()


def test_speed_reports_epoch_time_and_growth(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(speed.SHAPES, "tiny", (300, 60, 3000))
    assert speed.main(["--shapes", "tiny", "--scales", "1,2", "--epochs", "2", "--models",
                       "MFRegressor,BaselineBiases", "--yardstick", "dataloader-mf,plain-mf", "--yardstick-batches", "3",
                       "--device", "cpu", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "speed.json").read_text())
    rows = saved["rows"]
    assert [r["model"] for r in rows] == ["MFRegressor", "BaselineBiases",
                                          "per-sample DataLoader (MF, batch 64)",
                                          yardsticks.YARDSTICKS["plain-mf"].label,
                                          "MFRegressor", "BaselineBiases"]
    assert all(r["epoch_s"] > 0 and r["rate"] > 0 for r in rows)
    assert rows[0]["growth"] == 1.0 and rows[4]["growth"] > 0
    assert {"command", "date", "device", "versions"} <= set(saved)
    with pytest.raises(SystemExit):
        speed.main(["--yardstick", "no-such-loop"])


@pytest.mark.parametrize("name", sorted(yardsticks.YARDSTICKS))
def test_every_yardstick_times_one_tiny_epoch(name):
    stick = yardsticks.YARDSTICKS[name]
    assert stick.kind in ("explicit", "implicit") and stick.estimator in speed.SPEED_MODELS
    X = synthetic_matrix(40, 30, 300, kind=stick.kind, random_state=0)
    assert stick.run(X, "cpu", epochs=1, n_batches=2) > 0


def test_last_items_keeps_the_latest_in_order():
    import scipy.sparse as sp

    order = sp.csr_matrix(np.array([[3.0, 0, 1, 2], [0, 0, 0, 0], [0, 5, 0, 4]]))
    assert yardsticks.last_items(order, 2, 9).tolist() == [[3, 0], [9, 9], [3, 1]]


def test_epoch_time_reads_history():
    X = make_interactions(100, 40, kind="explicit", random_state=0).X
    seconds, fit_s = speed.epoch_time(BaselineBiases(solver="gradient"), X, 3, "cpu")
    assert 0 < seconds <= fit_s


@pytest.mark.data
def test_real_protocol_splits_load(data_home):
    p2 = suite.protocol_split("ml1m", "P2", data_home)
    fit, hist, held = p2.tests[0][1:]
    assert fit.shape[1] == hist.shape[1] and not p2.same_users
    assert hist.multiply(held).nnz == 0 and set(np.unique(fit.data)) == {1.0}
    p3 = suite.protocol_split("beauty", "P3", data_home)
    _, fit, hist, held = p3.tests[0]
    assert p3.order and np.all(np.diff(held.indptr) == 1)  # one target per user
    binary = suite.model_inputs("EASE", (fit,), p3.order)[0]
    assert set(np.unique(binary.data)) == {1.0} and fit.data.max() > 1  # order keys kept for sequences
    p1 = suite.protocol_split("ml100k", "P1", data_home, folds=("u1", "u2"))
    assert [t[0] for t in p1.tests] == ["u1", "u2"] and p1.tests[0][3].nnz == 20_000


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_every_study_resolves_to_buildable_estimators(name):
    study = studies.resolve(name)
    assert study.dataset in suite.DATASETS and set(study.protocols) <= set(suite.DATASETS[study.dataset])
    assert study.entries and (not study.writeup or study.was)
    fit = synthetic_matrix(60, 30, 500, kind="implicit", random_state=0)
    for entry in study.entries:
        assert entry.model in suite.CATALOGUE and set(entry.protocols) <= set(study.protocols)
        for point in studies.candidates(entry):
            params = studies.constructor_params(entry, point, fit, device="cpu")
            est = studies.make_estimator(entry, params)
            inner = est.estimator if isinstance(est, studies.ChunkedFit) else est
            given = inner.get_params(deep=False)
            assert all(given[k] is v or given[k] == v for k, v in params.items())


def test_study_overrides_and_bad_names():
    study = studies.resolve("sequence-ml1m", overrides={"dropout": 0.4}, max_epochs=7)
    seq, pop = study.entries
    assert seq.params["dropout"] == 0.4 and seq.params["max_iter"] == 7 and "dropout" not in pop.params
    dae = studies.resolve("autoencoder-ml1m", entries=["Mult-DAE"], max_epochs=30,
                          overrides={"alpha": [0.0, 0.1]}).entries
    assert [e.label for e in dae] == ["Mult-DAE"] and dae[0].epochs.max_epochs == 30
    assert dae[0].grid == {"alpha": [0.0, 0.1]} and "alpha" not in dae[0].params
    p2 = studies.resolve("bpr-ml1m", protocols=["P2"])
    assert p2.protocols == ("P2",) and p2.entries[0].protocols == ("P2",)
    with pytest.raises(ValueError, match="protocols: bpr-ml1m has"):
        studies.resolve("bpr-ml1m", protocols=["P3"])
    with pytest.raises(ValueError, match="study: expected one of"):
        studies.resolve("no-such-study")
    with pytest.raises(ValueError, match="entries:"):
        studies.resolve("bpr-ml1m", entries=["EASE"])
    with pytest.raises(ValueError, match="no entry of bpr-ml1m takes it"):
        studies.resolve("bpr-ml1m", overrides={"lam": 1.0})


def test_study_list_and_help_exit_cleanly(capsys):
    assert cli(["study", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{name}:" in listed for name in STUDIES)
    for argv in (["--help"], ["study", "--help"], ["speed", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            cli(argv)
        assert exit_.value.code == 0
    assert "study NAME" in capsys.readouterr().out


def test_smoke_study_runs_end_to_end(tmp_path, capsys):
    assert cli(["study", "synthetic-smoke", "--device", "cpu", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["command"].startswith("python -m benchmarks study synthetic-smoke")
    assert {"date", "device", "versions"} <= set(saved) and saved["study"]["name"] == "synthetic-smoke"
    rows = {(r["protocol"], r["model"]): r for r in saved["records"]}
    assert set(rows) == {(p, e) for p, entries in (("P1", ("BaselineBiases", "MFRegressor")), (
        "P2", ("EASE (reference)", "closed form", "Mult-VAE", "popularity"))) for e in entries}
    assert all(r["status"] == "ok" for r in rows.values())
    assert rows[("P2", "EASE (reference)")]["chosen"]["lam"] in (50.0, 200.0)
    assert len(rows[("P2", "closed form")]["grid_scores"]) == 4 and "alpha" in rows[("P2", "closed form")]["adapted"]
    mf = rows[("P1", "MFRegressor")]  # refitted for the validation fit's best epoch, without stopping
    assert mf["chosen"]["early_stopping"] is False and mf["n_iter"] == mf["chosen"]["max_iter"]
    vae = rows[("P2", "Mult-VAE")]  # chunks of one epoch: the chosen count is what the test fit trains
    assert vae["chosen_epochs"] == vae["n_iter"]
    assert vae["n_iter"] in (1, 2, 3)
    assert "chosen" not in rows[("P2", "popularity")] and rows[("P2", "popularity")]["ndcg@100"] > 0
    table = (tmp_path / "results.md").read_text()
    assert "# Study `synthetic-smoke`" in table and "| EASE (reference) |" in table and "device:" in table


# ------------------------------------------------------------ the offline main job
def _fresh_env(tmp_path):
    """The environment of a new user: no SKREC_DATA, an empty HOME and cache, no network use."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("SKREC_DATA", "XDG_CACHE_HOME")}
    home = tmp_path / "home"
    home.mkdir()
    env.update(HOME=str(home), OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return env, home


def test_main_job_runs_on_the_bundled_set_in_a_fresh_environment(tmp_path):
    # a subprocess from a folder outside the repository, so no shared/data folder is in reach
    import subprocess
    import sys

    env, home = _fresh_env(tmp_path)
    # The shared/data folder beside the repository is hidden by pointing the lookup elsewhere: the
    # job must not need it (it reads the copy shipped inside the package).
    code = ("import benchmarks._common as c, pathlib, sys; c._SHARED = pathlib.Path('/nonexistent');"
            "from benchmarks.__main__ import main; sys.exit(main(sys.argv[1:]))")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", code, "--protocols", "P2", "--models", "Popularity,ItemKNN",
                           "--no-progress", "--device", "cpu", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line.replace("**", "") for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert any(r.startswith("| ItemKNN |") for r in rows) and any(r.startswith("| Popularity |") for r in rows)
    saved = json.loads((out / "results.json").read_text())["records"]
    assert {r["dataset"] for r in saved} == {"latest-small"} and all(r["status"] == "ok" for r in saved)
    by = {r["model"]: r for r in saved}
    assert by["ItemKNN"]["ndcg@100"] > by["Popularity"]["ndcg@100"] > 0
    assert not list(home.rglob("*skrec*")) and not list(home.rglob("*.csv*"))  # nothing downloaded


def test_main_job_offline_with_missing_data_prints_one_line_and_exits_2(monkeypatch, tmp_path, capsys):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setenv("SKREC_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr("urllib.request.urlopen", offline)
    for dataset, folder in (("ml100k", "ml-100k/"), ("ml1m", "ml-1m/"), ("beauty", "s3rec/Beauty.txt")):
        assert cli(["--dataset", dataset, "--no-progress", "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "SKREC_DATA" in err and folder in err
        assert "network is unreachable" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing fitted, nothing written
    # the searches and the studies say the same
    for command in (["tune", "--dataset", "ml100k", "--protocol", "P2"], ["study", "p1-ml100k", "--out", str(tmp_path)]):
        assert cli(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "SKREC_DATA" in err and "ml-100k/" in err


def test_fetch_file_checks_the_checksum(monkeypatch, tmp_path):
    import hashlib
    import io

    from benchmarks._common import fetch_file

    class Response(io.BytesIO):
        headers = {"Content-Length": "5"}

    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: Response(b"hello"))
    good = hashlib.sha256(b"hello").hexdigest()
    with pytest.raises(OSError, match="failed its checksum"):
        fetch_file("https://example.org/f.txt", "0" * 64, tmp_path / "d" / "f.txt", "a set")
    assert not any((tmp_path / "d").iterdir())  # no partial file left behind
    path = fetch_file("https://example.org/f.txt", good, tmp_path / "d" / "f.txt", "a set")
    assert path.read_bytes() == b"hello"


def test_latest_small_protocol_splits():
    p1 = suite.protocol_split("latest-small", "P1")
    assert [t[0] for t in p1.tests] == ["k1"]
    _, fit, _, held = p1.tests[0]
    assert fit.nnz + held.nnz == 100_836 and fit.multiply(held).nnz == 0
    assert abs(held.nnz - 100_836 / 5) <= 1
    five = suite.protocol_split("latest-small", "P1", folds=("k1", "k2", "k3", "k4", "k5"))
    assert sum(t[3].nnz for t in five.tests) == 100_836  # the test folds partition the ratings
    with pytest.raises(ValueError, match="folds: expected names"):
        suite.protocol_split("latest-small", "P1", folds=("u1",))
    p3 = suite.protocol_split("latest-small", "P3")
    _, hist, _, last = p3.tests[0]
    assert np.all(np.diff(last.indptr) == 1) and hist.shape == last.shape
    # the target is each user's latest positive (ties by item index aside)
    assert np.all(last.max(axis=1).toarray().ravel() >= hist.max(axis=1).toarray().ravel())
    p2 = suite.protocol_split("latest-small", "P2")
    train = p2.tests[0][1]
    assert set(np.unique(train.data)) == {1.0} and train.shape[1] == hist.shape[1]


def test_time_split_protocol_holds_out_what_follows_the_cut():
    p5 = suite.protocol_split("latest-small", "P5")
    _, fit, hist, held = p5.tests[0]
    assert p5.order and p5.same_users and (fit != hist).nnz == 0
    assert hist.data.max() < held.data.min()  # values are timestamps: history strictly before the cut
    scored = np.diff(held.indptr) > 0
    assert scored.sum() > 10 and (np.diff(hist.indptr)[scored] > 0).all()  # only users seen before
    tune_fit, _, tune_held = p5.tune
    assert tune_fit.data.max() < tune_held.data.min() and tune_held.data.max() < held.data.min()
    assert set(suite.DEFAULT_PROTOCOLS) == {"P1", "P2", "P3", "P4"}  # P5 runs when asked for


def test_defaults_command_scores_defaults_beside_the_configuration(capsys):
    from benchmarks import defaults

    records = defaults.compare(["synthetic:P1", "synthetic:P2"], ["BaselineBiases", "EASE (EDLAE+DAN)", "ItemKNN"],
                               device="cpu", log=lambda m: None)
    by = {(r["protocol"], r["model"]): r for r in records}
    assert set(by) == {("P1", "BaselineBiases"), ("P2", "EASE (EDLAE+DAN)"), ("P2", "ItemKNN")}
    assert all(r["status"] == "ok" for r in records)
    base = by[("P1", "BaselineBiases")]  # the simpler model of P1 is its own default: a ratio of 1
    assert base["default"] == base["simpler_default"] and base["beats_simpler"]
    ease = by[("P2", "EASE (EDLAE+DAN)")]
    assert ease["same"] and ease["gain"] == 1.0  # no configuration for the synthetic sets: the defaults run
    assert ease["default"] > ease["simpler_default"] and ease["beats_simpler"]  # above popularity
    table = defaults.markdown(records)
    assert "| synthetic P2 | EASE (EDLAE+DAN) | ndcg@100 |" in table
    with pytest.raises(SystemExit):
        cli(["defaults", "--cells", "beauty:P1"])
    assert "DATASET:PROTOCOL" in capsys.readouterr().err
