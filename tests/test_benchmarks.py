"""The benchmark suite (``python -m benchmarks``): references, tuning split, runner, reports."""

import json

import numpy as np
import pytest

from benchmarks import peers, report, speed, suite
from benchmarks.__main__ import main as cli
from benchmarks.tune import FitOnHistory, search_space
from skrec import AutoencoderRecommender, BaselineBiases
from skrec.datasets import make_interactions
from skrec.model_selection import evaluate, holdout_split


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
    ours = AutoencoderRecommender((), loss="mse", dropout=0.0, normalize=False, solver="closed_form",
                                  alpha=20.0, device="cpu").fit(hist)
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


def test_speed_reports_epoch_time_and_growth(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(speed.SHAPES, "tiny", (300, 60, 3000))
    assert speed.main(["--shapes", "tiny", "--scales", "1,2", "--epochs", "2", "--models",
                       "MFRegressor,BaselineBiases", "--yardstick-batches", "3", "--device", "cpu",
                       "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "speed.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["MFRegressor", "BaselineBiases",
                                          "seed-style per-sample DataLoader (MF, batch 64)",
                                          "MFRegressor", "BaselineBiases"]
    assert all(r["epoch_s"] > 0 and r["rate"] > 0 for r in rows)
    assert rows[0]["growth"] == 1.0 and rows[3]["growth"] > 0


def test_epoch_time_reads_history():
    X = make_interactions(100, 40, kind="explicit", random_state=0).X
    seconds, fit_s = speed.epoch_time(BaselineBiases(solver="adam"), X, 3, "cpu")
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
