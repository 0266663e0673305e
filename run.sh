#!/usr/bin/env bash
# The two quick-start commands: `bash run.sh demo` and `bash run.sh test`.
# Each makes (once) a virtual environment in .venv with dynrnn and its test extras.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import dynrnn, pytest, xdist, hypothesis, nbclient, ipykernel, matplotlib, optax, tqdm" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
fi
case "${1:-}" in
  demo) shift; exec .venv/bin/python examples/char_lm.py "$@" ;;
  # two test processes: compiling is single-threaded, so on 2 cores this takes ~8 instead of
  # ~11.5 minutes; later arguments win (`bash run.sh test -n 0` runs in one process)
  test) shift; exec .venv/bin/python -m pytest -n 2 "$@" ;;
  *) echo "usage: bash run.sh demo|test [args...]" >&2; exit 2 ;;
esac
