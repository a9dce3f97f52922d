"""Turn the suite's records into a Markdown table, JSON/CSV files, plots and the README section;
and a study's records (``python -m benchmarks study``) into its Markdown and JSON files."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from benchmarks._common import environment
from benchmarks.suite import METRICS

__all__ = ["markdown", "write", "plot", "compare_section", "update_readme", "study_markdown", "write_study"]

_PROTOCOL_TITLES = {
    "P1": "P1 rating holdout (RMSE, MAE; lower is better)",
    "P2": "P2 strong generalization (unseen users folded in)",
    "P3": "P3 leave-last-out (full ranking)",
    "P4": "P4 per-user 80/20 holdout",
    "P5": "P5 global time split (after the 80th percentile of the timestamps, users seen before)",
}
_COLUMNS = ("fit_s", "predict_s", "peak_rss_mib", "cuda_peak_mib", "device")


def _headline(protocol):
    """The metric a protocol's plot and comparison rank by: RMSE for P1, else the last (NDCG)."""
    return METRICS[protocol][0] if protocol == "P1" else METRICS[protocol][-1]


def _fmt(value):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def markdown(records, environment=""):
    """One table per protocol: metrics, fit and predict seconds, peak memory, device."""
    out = []
    for protocol in dict.fromkeys(r["protocol"] for r in records):
        rows = [r for r in records if r["protocol"] == protocol]
        metrics = METRICS[protocol]
        folds = max((r.get("n_folds", 1) for r in rows), default=1)
        seeds = next((r["seeds"] for r in rows if "seeds" in r), None)
        out.append(f"### {rows[0]['dataset']} — {_PROTOCOL_TITLES[protocol]}"
                   + (f", {folds} folds (times are totals)" if folds > 1 else "")
                   + (f"; mean ± standard deviation over seeds {', '.join(map(str, seeds))} (times per seed;"
                      " a deterministic model fitted once)" if seeds else ""))
        out.append("")
        out.append("| model | " + " | ".join(metrics) + " | fit s | predict s | peak RSS MiB | CUDA peak MiB | device |")
        out.append("|---|" + "---:|" * (len(metrics) + 4) + "---|")
        for r in rows:
            if r.get("status") != "ok":
                out.append(f"| {r['model']} | " + " | ".join(["–"] * (len(metrics) + 4)) + f" | {r['status']} |")
                continue
            name = f"**{r['model']}**" if r["family"] == "skrec" else r["model"]
            cells = [_fmt(r[m]) + (f" ± {r[m + '_sd']:.4f}" if m + "_sd" in r else "") for m in metrics]
            cells += [f"{r['fit_s']:.2f}", f"{r['predict_s']:.2f}", f"{r['peak_rss_mib']:.0f}",
                      _fmt(r["cuda_peak_mib"]), r["device"]]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    if environment:
        out.append(environment)
    return "\n".join(out)


def write(records, out_dir, environment="", command=""):
    """``results.json``, ``results.csv``, ``results.md`` (and plots) under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(
        {"command": command, "environment": environment, "records": records}, indent=1, default=str))
    keys = ["dataset", "protocol", "model", "family", "status", *dict.fromkeys(
        m for p in METRICS.values() for m in p), *dict.fromkeys(
        f"{m}_sd" for p in METRICS.values() for m in p), "n_folds", *_COLUMNS, "n_iter"]
    with open(out_dir / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    (out_dir / "results.md").write_text(f"Command: `{command}`\n\n" + markdown(records, environment) + "\n")
    return plot(records, out_dir)


def _value_text(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _params_text(params):
    return ", ".join(f"{k}={_value_text(v)}" for k, v in params.items()) or "(the one configuration)"


def _per_fold(values, folds, fmt):
    return "; ".join(f"{f}: {fmt(v)}" for f, v in zip(folds, values))


def _study_row(r, metrics, with_folds):
    if r.get("status") != "ok":
        return f"| {r['model']} | " + " | ".join(["–"] * (len(metrics) + 7 + with_folds)) + f" | {r['status']} |"
    folds = r.get("folds", [])
    name = f"**{r['model']}**" if r["family"] == "skrec" else r["model"]
    cells = [_fmt(r[m]) for m in metrics]
    if with_folds:
        cells.append(" ".join(_fmt(v) for v in r["per_fold"][metrics[0]]) if "per_fold" in r else "–")
    validation = r.get("validation")
    if isinstance(validation, list):
        cells.append(" ".join(_fmt(v) for v in validation))
    elif validation is not None:
        cells.append(_fmt(validation))
    else:
        cells.append(f"{_fmt(r['own_validation'])} (fit's own split)" if r.get("own_validation") is not None
                     else "– (not searched)")
    chosen = r.get("chosen")
    if isinstance(chosen, list):
        cells.append(_per_fold(chosen, folds, _params_text))
    else:
        cells.append("fixed" if chosen is None else _params_text(chosen))
    if r.get("adapted"):
        cells[-1] += f" (the estimator's {_params_text(r['adapted'])})"
    epochs = r.get("n_iter")
    best = r.get("best_iteration")
    cells.append("–" if epochs is None else f"{epochs}" + (f" (best {best})" if best and best != epochs else ""))
    cells += [f"{r['tune_s']:.1f}", f"{r['fit_s']:.2f}", f"{r['predict_s']:.2f}", f"{r['peak_rss_mib']:.0f}",
              r["device"]]
    return f"| {name} | " + " | ".join(cells) + " |"


def study_markdown(records, info, command, study):
    """A study's report: its header (command, what it replaces, environment), then one table
    per protocol with the test metrics, the choice made on validation data and the times."""
    out = [f"# Study `{study.name}`", "", study.about + ".", "", f"Command: `{command}`", ""]
    if study.was:
        out += [f"Replaces the per-issue command `{study.was}`"
                + (f" (write-up: `benchmarks/results/{study.writeup}`)." if study.writeup else "."), ""]
    out += [environment(info=info), ""]
    for protocol in dict.fromkeys(r["protocol"] for r in records):
        rows = [r for r in records if r["protocol"] == protocol]
        metrics = METRICS[protocol]
        with_folds = any("per_fold" in r for r in rows)
        folds = max((r.get("n_folds", 1) for r in rows), default=1)
        select = rows[0]["select"] if "select" in rows[0] else ""
        out.append(f"### {rows[0]['dataset']} — {_PROTOCOL_TITLES[protocol]}"
                   + (f", {folds} folds (metrics are means, times totals)" if folds > 1 else ""))
        out.append("")
        head = list(metrics) + ([f"per-fold {metrics[0]}"] if with_folds else []) + [
            f"validation {select}", "chosen on validation", "epochs", "tune s", "fit s", "predict s",
            "peak RSS MiB", "device"]
        out.append("| entry | " + " | ".join(head) + " |")
        out.append("|---|" + "---:|" * (len(metrics) + with_folds + 1) + "---|---:|" + "---:|" * 4 + "---|")
        out += [_study_row(r, metrics, with_folds) for r in rows]
        out.append("")
    out.append("Validation: the search's score of the chosen point on the protocol's validation data "
               "(GridSearchCV, one predefined split); test metrics: one fit of the choice per test fold, "
               "scored once. \"tune s\" is the search, \"fit s\" the test fits.")
    return "\n".join(out)


def write_study(records, out_dir, info, command, study):
    """``results.md`` and ``results.json`` of a study under ``out_dir``.

    Parameters
    ----------
    records : list of dict
        :func:`benchmarks.studies.run_study`'s records.
    out_dir : path
        Created when missing.
    info : dict
        :func:`benchmarks._common.environment_info` (date, device, versions).
    command : str
        The command line that produced the records.
    study : benchmarks.studies.Study
        The resolved study (its name, dataset, protocols and entries are saved).

    Returns
    -------
    list of Path
        The two files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = [dict(label=e.label, model=e.model, params=e.params, grid=e.grid, protocols=e.protocols,
                    epochs=e.epochs if isinstance(e.epochs, (str, type(None))) else vars(e.epochs), adapt=e.adapt)
               for e in study.entries]
    payload = {"command": command, "date": info["date"], "device": info["device"], "versions": info["versions"],
               "machine": info["machine"], "environment": environment(info=info),
               "study": dict(name=study.name, about=study.about, dataset=study.dataset, protocols=study.protocols,
                             tune_per_fold=study.tune_per_fold, replaces=study.was, writeup=study.writeup,
                             entries=entries),
               "records": records}
    paths = [out_dir / "results.md", out_dir / "results.json"]
    paths[0].write_text(study_markdown(records, info, command, study) + "\n")
    paths[1].write_text(json.dumps(payload, indent=1, default=str))
    return paths


def plot(records, out_dir):
    """Quality against fit time per protocol, and the training curves of ``history_``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    ok = [r for r in records if r.get("status") == "ok"]
    for protocol in dict.fromkeys(r["protocol"] for r in ok):
        rows = [r for r in ok if r["protocol"] == protocol]
        metric = _headline(protocol)
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in rows:
            ax.scatter(r["fit_s"], r[metric], marker="o" if r["family"] == "skrec" else "s")
            ax.annotate(r["model"], (r["fit_s"], r[metric]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("fit time (s, log scale)")
        ax.set_ylabel(metric)
        ax.set_title(f"{rows[0]['dataset']} {protocol}: {metric} vs fit time")
        path = Path(out_dir) / f"quality_vs_time_{protocol}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
        curves = [r for r in rows if r.get("history")]
        if curves:
            fig, ax = plt.subplots(figsize=(6, 4))
            for r in curves:
                ax.plot([h["epoch"] for h in r["history"]], [h["loss"] for h in r["history"]], label=r["model"])
            ax.set_yscale("log")
            ax.set_xlabel("epoch")
            ax.set_ylabel("training loss (log scale)")
            ax.set_title(f"{rows[0]['dataset']} {protocol}: training curves (last fold)")
            ax.legend(fontsize=7)
            path = Path(out_dir) / f"curves_{protocol}.png"
            fig.tight_layout()
            fig.savefig(path, dpi=120)
            plt.close(fig)
            written.append(path)
    return written


def compare_section(records, command):
    """The README's "How skrec compares" table: per dataset and protocol, skrec's best estimator
    against the best reference, with their fit times."""
    seeds = next((r["seeds"] for r in records if "seeds" in r), None)
    lines = [f"Generated by `{command}` from the committed runs."
             + (f" Mean ± standard deviation over seeds {', '.join(map(str, seeds))}." if seeds else ""), "",
             "| data, protocol | metric | best skrec estimator | best reference | skrec fit s | reference fit s |",
             "|---|---|---|---|---:|---:|"]
    ok = [r for r in records if r.get("status") == "ok"]
    for key in dict.fromkeys((r["dataset"], r["protocol"]) for r in ok):
        metric = _headline(key[1])
        sign = -1 if key[1] == "P1" else 1  # RMSE: lower is better
        best = {}
        for family in ("skrec", "reference"):
            rows = [r for r in ok if (r["dataset"], r["protocol"]) == key and r["family"] == family]
            best[family] = max(rows, key=lambda r: sign * r[metric]) if rows else None
        cells = [f"{b['model']} {b[metric]:.4f}" + (f" ± {b[metric + '_sd']:.4f}" if metric + "_sd" in b else "")
                 if b else "–" for b in best.values()]
        times = [f"{b['fit_s']:.1f}" if b else "–" for b in best.values()]
        lines.append(f"| {key[0]} {key[1]} | {metric} | " + " | ".join(cells + times) + " |")
    return "\n".join(lines)


_MARKERS = ("<!-- compare:start -->", "<!-- compare:end -->")


def update_readme(readme, section):
    """Replace the text between the compare markers of ``readme`` with ``section``."""
    readme = Path(readme)
    text = readme.read_text()
    pattern = re.compile(re.escape(_MARKERS[0]) + ".*?" + re.escape(_MARKERS[1]), re.S)
    if not pattern.search(text):
        raise ValueError(f"readme: expected the markers {_MARKERS} in {readme}")
    readme.write_text(pattern.sub(lambda _: f"{_MARKERS[0]}\n{section}\n{_MARKERS[1]}", text))


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Print (or write into the README) the comparison "
                                                 "table of one or more results.json files")
    parser.add_argument("results", nargs="+", help="results.json files written by python -m benchmarks")
    parser.add_argument("--readme", default=None, help="README.md whose compare block is replaced")
    args = parser.parse_args(argv)
    runs = [json.loads(Path(p).read_text()) for p in args.results]
    command = "python -m benchmarks.report " + " ".join(args.results) + (" --readme README.md" if args.readme else "")
    section = compare_section([r for run in runs for r in run["records"]], command)
    section += "\n\n" + "\n".join(sorted({f"- {run['environment']}" for run in runs}))
    if args.readme:
        update_readme(args.readme, section)
    else:
        print(section)


if __name__ == "__main__":
    main()
