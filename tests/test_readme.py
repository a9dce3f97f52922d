"""The README: its quickstart and model tour run as written (on the MovieLens latest-small copy shipped with
skrec, so anywhere and offline), its table is current."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quickstart_runs(monkeypatch, tmp_path, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has a python quickstart"
    monkeypatch.setenv("SKREC_DATA", str(tmp_path / "no-data-here"))  # the shipped copy is enough
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    rmse = float(re.search(r"RMSE ([0-9.]+)", out).group(1))
    assert 0.8 < rmse < 1.0
    assert namespace["ids"].shape == (3, 10)
    assert namespace["search"].best_estimator_.n_items_ == 9724
    assert not (tmp_path / "no-data-here").exists()


def test_model_tour_runs(monkeypatch, tmp_path, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2, "the README has a tour of the models after the quickstart"
    monkeypatch.setenv("SKREC_DATA", str(tmp_path / "no-data-here"))
    namespace = {}
    head = blocks[0].split("# Model selection")[0]  # the data and the baseline, without the search
    exec(compile(head + blocks[1], "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    mf = float(re.search(r"MF RMSE ([0-9.]+)", out).group(1))
    base = float(re.search(r"^RMSE ([0-9.]+)", out, flags=re.M).group(1))
    assert mf < base  # factors improve on the biases
    ndcg = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+) \{'ndcg@10': ([0-9.]+)", out, flags=re.M)}
    popular = namespace["evaluate"](namespace["Popularity"]().fit(namespace["P_hist"]),
                                    namespace["P_hist"], namespace["P_held"], metrics=("ndcg@10",))["ndcg@10"]
    assert set(ndcg) == {"BPR", "EASE", "Mult-DAE"} and all(v > popular for v in ndcg.values()), (ndcg, popular)
    assert 0 < namespace["seq"].score(namespace["T_hist"], namespace["T_last"]) <= 1


def test_model_table_lists_every_estimator():
    """The README's model table names exactly the estimators ``skrec`` exports (renames included)."""
    import skrec

    exported = sorted(name for name in skrec.__all__ if isinstance(getattr(skrec, name), type)
                      and issubclass(getattr(skrec, name), skrec.BaseRecommender)
                      and name not in ("BaseRecommender", "TorchRecommender"))
    text = README.read_text()
    table = text.split("| estimator | what | fold-in of a new history row |")[1].split("\n\n")[0]
    rows = table.strip().splitlines()[1:]  # after the separator line
    names = [re.match(r"\| `(\w+)` \|", line).group(1) for line in rows]
    assert sorted(names) == exported


def test_scaling_example_runs(monkeypatch, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3, "the README has a scaling example after the model tour"
    monkeypatch.setenv("SKREC_DATA", str(tmp_path / "no-data-here"))
    namespace = {}
    head = blocks[0].split("# Explicit ratings")[0]  # the data
    exec(compile(head + blocks[2], "README.md", "exec"), namespace)
    assert namespace["search"].best_params_["damping"] in (1.0, 5.0, 20.0)
    assert namespace["ids"].shape == (610, 10)
