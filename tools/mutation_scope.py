"""Mutation score over issue 12's whole scope, from the per-module reports.

Usage::

    python tools/mutation_scope.py [REPORT ...]

``tools/mutation.sh`` writes one report per run to
``benchmarks/results/mutation/`` (the default REPORTs). Each file of the
scope (``sktransfer/meta/``, ``tasks/``, ``model_selection/``, ``finetune/``
and ``base.py``) is counted from the newest report that covers it (of
reports committed together, the one of the file's current source), and only
if that report measured the file as it is now: reports carry the git blob of
each file they measured (``# blob PATH SHA``), and a report without one for
the file does not count. A survivor named since in
``tools/equivalent_mutants.txt`` counts as equivalent. Files with no current
report are listed as not measured, and the score says so. Prints the counts
per file and the score (killed + timeout) / (all - equivalent).
"""

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCOPE = ["sktransfer/meta", "sktransfer/tasks", "sktransfer/model_selection",
         "sktransfer/finetune", "sktransfer/base.py"]  # fmt: skip
FILE_LINE = re.compile(r"^(sktransfer/\S+\.py)\s+((?:[a-z ]+ \d+\s*)+)$")
COUNT = re.compile(r"([a-z][a-z ]*?) (\d+)")
SURVIVOR = re.compile(r"^\s+(sktransfer\.\S+)\s+\((survived|no tests|suspicious)\)")
BLOB = re.compile(r"^# blob (\S+) ([0-9a-f]{40})\b")


def git(*args):
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()


def scope_files():
    files = []
    for entry in SCOPE:
        path = ROOT / entry
        paths = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        # mutmut mutates function bodies: a file without functions (an
        # __init__, docstring templates) has no mutants.
        files += [
            str(p.relative_to(ROOT))
            for p in paths
            if re.search(r"(?m)^\s*def ", p.read_text())
        ]
    return files


def equivalent_mutants():
    text = (ROOT / "tools" / "equivalent_mutants.txt").read_text()
    names = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return {name for name in names if name}


def module_of(path):
    return path.removesuffix(".py").replace("/", ".")


def read_report(path):
    """Counts per file, survivors and blobs of one report."""
    counts, survivors, blobs = {}, [], {}
    for line in path.read_text().splitlines():
        if match := FILE_LINE.match(line):
            counts[match[1]] = Counter(
                {k.strip(): int(v) for k, v in COUNT.findall(match[2])}
            )
        elif match := SURVIVOR.match(line):
            survivors.append((match[1], match[2]))
        elif match := BLOB.match(line):
            blobs[match[1]] = match[2]
    return counts, survivors, blobs


def is_current(source, blobs):
    """Whether the report measured ``source`` as it is in the working tree."""
    return blobs.get(source) == git("hash-object", source)


def main(reports):
    equivalent = equivalent_mutants()
    newest = {}  # file -> ((time, current), report, counts, survivors, current, blobs)
    for report in reports:
        counts, survivors, blobs = read_report(report)
        name = str(report.relative_to(ROOT))
        commit_time = git("log", "-1", "--format=%ct", "--", name)
        # an uncommitted report is newer than any committed one
        changed = git("status", "--porcelain", "--", name)
        when = float("inf") if changed or not commit_time else int(commit_time)
        for source, per_file in counts.items():
            current = is_current(source, blobs)
            # Of reports committed together, the one of the current source.
            if source in newest and newest[source][0] >= (when, current):
                continue
            prefix = module_of(source) + "."
            mine = [(n, s) for n, s in survivors if n.startswith(prefix)]
            newest[source] = ((when, current), report, per_file, mine, current, blobs)
    total, missing = Counter(), []
    for source in scope_files():
        if source not in newest:
            missing.append(source)
            continue
        _, report, per_file, survivors, current, blobs = newest[source]
        per_file = per_file.copy()
        for name, status in survivors:
            if name in equivalent:
                per_file[status] -= 1
                per_file["equivalent"] += 1
        complete = not per_file["not checked"]
        label = report.name
        if not current:
            label += " (STALE)" if source in blobs else " (no blob)"
        elif not complete:
            label += " (INCOMPLETE: mutants not checked)"
        if current and complete:
            total.update(per_file)
        else:
            missing.append(source)
        print(f"{source:45s} {label:45s} "
              + "  ".join(f"{k} {v}" for k, v in sorted(per_file.items())))  # fmt: skip
    ran = sum(v for k, v in total.items() if k not in ("not checked", "skipped"))
    scored = ran - total["equivalent"]
    print(
        f"\nmutants: {sum(total.values())}, killed: {total['killed']}, "
        f"survived: {total['survived']}, no tests: {total['no tests']}, "
        f"equivalent: {total['equivalent']}, not checked: {total['not checked']}"
    )
    score = (total["killed"] + total["timeout"]) / scored if scored else float("nan")
    print(
        f"mutation score over the measured files: {score:.1%}  "
        f"((killed + timeout {total['timeout']}) / (all - equivalent))"
    )
    if missing:
        print("not measured at their current state (no mutants counted):")
        print("\n".join(f"  {source}" for source in missing))
    return 0


if __name__ == "__main__":
    given = [Path(p).resolve() for p in sys.argv[1:]]
    default = sorted((ROOT / "benchmarks" / "results" / "mutation").glob("*.txt"))
    sys.exit(main(given or default))
