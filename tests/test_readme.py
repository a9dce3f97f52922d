"""The README's quickstart runs as written (on the real MovieLens-100k)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quickstart_runs(data_home, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has a python quickstart"
    monkeypatch.setenv("SKREC_DATA", str(data_home))
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    rmse = float(re.search(r"RMSE ([0-9.]+)", out).group(1))
    assert 0.85 < rmse < 1.0
    assert namespace["ids"].shape == (3, 10)
    assert namespace["search"].best_estimator_.n_items_ == 1682
