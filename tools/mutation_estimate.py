"""Estimated mutation score of meta/ when a full run does not fit.

Usage::

    python tools/mutation_estimate.py RUN_DIR SAMPLE_FILE [RERUN_DIR NAMES_FILE]

RUN_DIR is a mutmut run directory of ``sktransfer/meta`` (``tools/mutation.sh``
with ``MUTATION_DIR``) stopped part way; SAMPLE_FILE names mutants drawn
uniformly at random among those it had not checked, then run there
(``mutmut run NAME ...``). Per file, the score counts the mutants checked
before the sample exactly and the unchecked ones at the sample's kill rate;
the 95% interval is the sample's binomial error (finite-population corrected).
RERUN_DIR and NAMES_FILE give results of some of those mutants re-run later
(with new tests), which replace the first ones. Equivalent mutants
(``tools/equivalent_mutants.txt``) are left out; timeouts count as killed.
"""

import glob
import json
import math
import sys
from pathlib import Path

# mutmut exit codes of a killed mutant or a timeout (tools/mutation_score.py)
KILLED = {1, 3, 36, -24, 24, 152, 255}


def read_names(path):
    text = Path(path).read_text()
    names = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return {name for name in names if name}


def main(run, sample_file, rerun=None, names_file=None):
    overlay = {}
    if rerun is not None:
        names = read_names(names_file)
        for meta in glob.glob(f"{rerun}/mutants/sktransfer/meta/*.py.meta"):
            codes = json.load(open(meta))["exit_code_by_key"]
            overlay.update(
                {k: v for k, v in codes.items() if k in names and v is not None}
            )
    sample = read_names(sample_file)
    equivalent = read_names(Path(__file__).resolve().parent / "equivalent_mutants.txt")
    print(f"{'file':22s} {'mutants':>7s} {'checked':>7s} {'sample':>6s} "
          f"{'sample killed':>13s} {'est. score':>10s}")  # fmt: skip
    killed_total = scored_total = variance = 0.0
    for meta in sorted(glob.glob(f"{run}/mutants/sktransfer/meta/*.py.meta")):
        if meta.endswith("/_closed_form.py.meta"):  # measured in full
            continue
        codes = json.load(open(meta))["exit_code_by_key"]
        if not codes:
            continue
        codes = {k: overlay.get(k, v) for k, v in codes.items()}
        first = {k: v for k, v in codes.items() if k not in sample and v is not None}
        drawn = {k: v for k, v in codes.items() if k in sample and v is not None}
        n_unchecked = sum(k not in first for k in codes)
        first_scored = [v for k, v in first.items() if k not in equivalent]
        drawn_scored = [v for k, v in drawn.items() if k not in equivalent]
        n_drawn = len(drawn_scored)
        drawn_killed = sum(v in KILLED for v in drawn_scored)
        # the equivalent share of the unchecked mutants, from the sample too
        eq_rate = (len(drawn) - n_drawn) / len(drawn) if drawn else 0.0
        unchecked = n_unchecked * (1 - eq_rate)
        if n_drawn:
            rate = drawn_killed / n_drawn
            fpc = 1 - n_drawn / max(unchecked, 1)
            variance += (unchecked**2) * rate * (1 - rate) / n_drawn * fpc
        elif n_unchecked == 0:
            rate = 1.0
        else:
            sys.exit(f"{meta}: unchecked mutants and no sample")
        killed = sum(v in KILLED for v in first_scored) + rate * unchecked
        scored = len(first_scored) + unchecked
        killed_total += killed
        scored_total += scored
        name = Path(meta).name.removesuffix(".meta")
        print(f"{name:22s} {len(codes):7d} {len(first):7d} {len(drawn):6d} "
              f"{drawn_killed:6d}/{n_drawn:<6d} {killed / scored:10.1%}")  # fmt: skip
    half = 1.96 * math.sqrt(variance) / scored_total
    print(f"meta/ (without _closed_form.py): estimated score "
          f"{killed_total / scored_total:.1%} +- {half:.1%} (95%)")  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:])
