#!/usr/bin/env bash
# Mutation testing of sktransfer with mutmut (installed by `pip install -e ".[dev]"`).
#
#   tools/mutation.sh                                   # the modules of issue 12's scope
#   tools/mutation.sh sktransfer/tasks/_splits.py ...   # only these files (a change's)
#
# mutmut copies the package and the tests into mutants/, runs the whole suite
# once to learn which tests reach which function, then runs every mutant
# against those tests only. The score (killed / all mutants that ran) and the
# survivors are written to benchmarks/results/mutation/<label>.txt; read a
# survivor with `mutmut show <name>`. Not part of CI: on 2 cores the
# suite-wide first pass alone takes minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$#" -eq 0 ]; then
    set -- sktransfer/meta sktransfer/tasks sktransfer/model_selection \
        sktransfer/finetune sktransfer/base.py
fi
patterns=()
for path in "$@"; do
    module="${path%.py}"
    module="${module%/}"
    patterns+=("${module//\//.}.*")
done
label="$(printf '%s\n' "$@" | sed 's#^sktransfer/##; s#\.py$##; s#/#_#g' | paste -sd+ -)"
out="benchmarks/results/mutation"
mkdir -p "$out"

rm -rf mutants
start=$(date +%s)
mutmut run --max-children "${MUTMUT_CHILDREN:-2}" "${patterns[@]}"
seconds=$(( $(date +%s) - start ))

python tools/mutation_score.py --seconds "$seconds" "${patterns[@]}" | tee "$out/$label.txt"
