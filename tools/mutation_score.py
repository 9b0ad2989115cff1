"""Mutation score of the last `mutmut run`, from the records it left in mutants/.

Usage (``tools/mutation.sh`` calls it)::

    python tools/mutation_score.py [--seconds N] [PATTERN ...]

PATTERN is a mutant-name glob as given to ``mutmut run`` (for example
``sktransfer.tasks._splits.*``); none means every mutant. Mutants listed in
``tools/equivalent_mutants.txt`` (one name per line, ``#`` starts a reason)
are equivalent: no behaviour can tell them apart from the original, so they
count neither as killed nor as survived. The score is
killed / (every mutant that ran - the equivalent ones); timeouts count as
killed, as mutmut counts them, and are shown apart. Prints the counts per
file, the git blob of each file measured, the score and the survivors.
"""

import argparse
import fnmatch
import json
import subprocess
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# mutmut's exit codes (mutmut/stats.py); anything else is "suspicious".
STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    None: "not checked",
}


def equivalent_mutants():
    path = ROOT / "tools" / "equivalent_mutants.txt"
    if not path.exists():
        return set()
    names = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {name for name in names if name}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*")
    parser.add_argument("--seconds", type=int, default=None)
    args = parser.parse_args()
    equivalent = equivalent_mutants()
    per_file, survivors, stale = {}, [], []
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in codes.items():
            if args.patterns and not any(
                fnmatch.fnmatchcase(name, p) for p in args.patterns
            ):
                continue
            status = STATUS.get(code, "suspicious")
            if name in equivalent and status in ("killed", "timeout"):
                # Editing a function renumbers its mutants: a listed name now
                # names another mutant, which the tests kill.
                stale.append(name)
            elif name in equivalent:
                status = "equivalent"
            key = str(meta.relative_to(ROOT / "mutants")).removesuffix(".meta")
            per_file.setdefault(key, Counter())[status] += 1
            if status in ("survived", "no tests", "suspicious"):
                survivors.append(f"{name}  ({status})")
    total = Counter()
    for path, counts in per_file.items():
        total.update(counts)
        print(f"{path:50s} " + "  ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    # The source each file was measured at (tools/mutation_scope.py compares it
    # with the working tree's).
    for path in per_file:
        blob = subprocess.run(
            ["git", "hash-object", str(ROOT / path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"# blob {path} {blob}")
    ran = sum(v for k, v in total.items() if k not in ("not checked", "skipped"))
    scored = ran - total["equivalent"]
    # A mutant stopped at mutmut's time limit counts as killed, as mutmut counts
    # it; the count is shown apart because a mutant can hit the limit for a
    # reason other than the tests catching it (a progress bar under fork).
    score = (total["killed"] + total["timeout"]) / scored if scored else float("nan")
    print(
        f"\nmutants: {sum(total.values())}, ran: {ran}, killed: {total['killed']}, "
        f"survived: {total['survived']}, no tests: {total['no tests']}, "
        f"equivalent: {total['equivalent']}, not checked: {total['not checked']}, "
        f"timeout: {total['timeout']}"
    )
    if args.seconds is not None:
        print(f"run time: {args.seconds} s")
    print(f"mutation score: {score:.1%}  ((killed + timeout) / (ran - equivalent))")
    if stale:
        print("\nlisted as equivalent but killed (the list is stale: renumbered?):")
        print("\n".join(f"  {name}" for name in stale))
    if survivors:
        print("\nsurvivors (read one with `mutmut show NAME`):")
        print("\n".join(f"  {line}" for line in survivors))


if __name__ == "__main__":
    main()
