#!/usr/bin/env bash
# Mutation testing of sktransfer with mutmut (installed by `pip install -e ".[dev]"`).
#
#   tools/mutation.sh                                   # the modules of issue 12's scope
#   tools/mutation.sh sktransfer/tasks/_splits.py ...   # only these files (a change's)
#   MUTATION_TESTS="tests/model_selection/test_transfer.py -m 'not slow'" \
#       tools/mutation.sh sktransfer/model_selection/_transfer.py   # and these tests
#
# mutmut copies the package and the tests into mutants/, runs the whole suite
# once to learn which tests reach which function, then runs every mutant
# against those tests only. The score (killed / all mutants that ran) and the
# survivors are written to benchmarks/results/mutation/<label>.txt; read a
# survivor with `mutmut show <name>`. Not part of CI: on 2 cores the
# suite-wide first pass alone takes minutes.
#
# MUTATION_TESTS (pytest arguments, shell-quoted) narrows the first pass, and
# so the tests each mutant can meet, to the tests of the files under test:
# minutes instead of hours. mutmut reads its settings from ./pyproject.toml
# only, so the run happens in a copy of the working tree (tracked and
# untracked files that git does not ignore) in $MUTATION_DIR (default
# /tmp/sktransfer-mutation-<label>; replaced at each run, and refused if it
# holds anything else), whose pyproject.toml gets the selection
# as `pytest_add_cli_args_test_selection`; this tree and its pyproject.toml
# are left alone. Run `mutmut show <name>` in that directory. A survivor of a
# narrowed run may still be killed by a test outside the selection: re-check
# it against the wider tests before calling it equivalent.
#
# MUTATION_RESUME=1 (with MUTATION_TESTS) keeps the results of the previous
# run in the same $MUTATION_DIR: mutmut reruns the mutants of every function
# whose source changed since, and this script also reruns that run's survivors
# (so tests added since can kill them) and mutants never run; every other
# kill stands (adding tests can kill a mutant, never revive one; a changed or
# removed test is not seen: start afresh after weakening a test). A changed
# MUTATION_TESTS makes mutmut start afresh by itself.
#
# MUTMUT_CHILDREN sets mutmut's parallel children (default 2).
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
label="$(printf '%s\n' "$@" | sed 's#^sktransfer/##; s#\.py$##; s#/_*#_#g' | paste -sd+ -)"
out="$PWD/benchmarks/results/mutation"
mkdir -p "$out"

header=""
if [ -n "${MUTATION_TESTS:-}" ]; then
    run_dir="${MUTATION_DIR:-${TMPDIR:-/tmp}/sktransfer-mutation-$label}"
    case "$(realpath -m "$run_dir")" in
        "$PWD" | "$PWD"/* | / ) echo "MUTATION_DIR must be outside this tree" >&2
            exit 2 ;;
    esac
    if [ -e "$run_dir" ] && [ ! -e "$run_dir/.mutation-run" ]; then
        echo "$run_dir exists and is not a previous run's copy: remove it or" \
            "choose another MUTATION_DIR" >&2
        exit 2
    fi
    previous=""
    if [ "${MUTATION_RESUME:-0}" = 1 ] && [ -d "$run_dir/mutants" ]; then
        previous="$(mktemp -d)"
        mv "$run_dir/mutants" "$previous/mutants"
    fi
    rm -rf "$run_dir"
    mkdir -p "$run_dir"
    touch "$run_dir/.mutation-run"
    # The working tree as it is, uncommitted changes included.
    git ls-files -z --cached --others --exclude-standard \
        | python -c 'import os, shutil, sys
for name in sys.stdin.read().split("\0"):
    if name and os.path.isfile(name):
        target = os.path.join(sys.argv[1], name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(name, target)' "$run_dir"
    python - "$run_dir/pyproject.toml" "$MUTATION_TESTS" <<'PY'
import json, re, shlex, sys
from pathlib import Path

path, selection = Path(sys.argv[1]), shlex.split(sys.argv[2])
text, n = re.subn(
    r"(?m)^pytest_add_cli_args_test_selection\s*=.*$",
    "pytest_add_cli_args_test_selection = " + json.dumps(selection),
    path.read_text(),
)
if n != 1:
    sys.exit(f"{path}: expected one pytest_add_cli_args_test_selection line")
path.write_text(text)
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mutmut reads it with toml
    pass
else:
    mutmut = tomllib.loads(text)["tool"]["mutmut"]
    assert mutmut["pytest_add_cli_args_test_selection"] == selection
PY
    cd "$run_dir"
    header="# tests: $MUTATION_TESTS (run in $run_dir)"
fi

rm -rf mutants
names=("${patterns[@]}")
if [ -n "${previous:-}" ]; then
    mv "$previous/mutants" mutants
    rmdir "$previous"
    # Survivors and mutants without tests run again; mutants outside the
    # given files are marked skipped, so that a run without names (which
    # runs only mutants without a result) runs just these files' rest.
    python - "${patterns[@]}" <<'PY'
import fnmatch, glob, json, sys

patterns = sys.argv[1:]
for path in glob.glob("mutants/**/*.py.meta", recursive=True):
    with open(path) as f:
        data = json.load(f)
    codes = data["exit_code_by_key"]
    for name, code in codes.items():
        if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns):
            codes[name] = 34 if code is None else code
        elif code in (0, 33):
            codes[name] = None
    with open(path, "w") as f:
        json.dump(data, f)
PY
    # Newer sources make mutmut regenerate every file's mutants, comparing
    # each function's hash with the previous run's.
    find sktransfer -name '*.py' -exec touch {} +
    names=()
fi
start=$(date +%s)
mutmut run --max-children "${MUTMUT_CHILDREN:-2}" "${names[@]}"
seconds=$(( $(date +%s) - start ))

{
    if [ -n "$header" ]; then echo "$header"; fi
    python tools/mutation_score.py --seconds "$seconds" "${patterns[@]}"
} | tee "$out/$label.txt"
