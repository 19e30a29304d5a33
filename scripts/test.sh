#!/usr/bin/env bash
# The test command: install what is missing, then run the tests.
#   scripts/test.sh                 unit tests + the local-lab end-to-end tests (CI runs this)
#   scripts/test.sh --all           also the heavy suites (emulated Xen, Molecule, full sweeps)
#   scripts/test.sh -k response     extra arguments go to pytest
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/install.sh
marker=(-m "not heavy")
if [ "${1:-}" = "--all" ]; then marker=(); shift; fi
exec .venv/bin/pytest "${marker[@]}" "$@"
