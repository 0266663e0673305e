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
  echo "run.sh: installing dynrnn and its test dependencies into .venv (once; about 2 minutes, 600 MB)..." >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --progress-bar on -e ".[test]"
fi
case "${1:-}" in
  # lint and type checks (CI runs them before the tests): ruff, then pyright over dynrnn/
  lint) shift
    .venv/bin/python -c "import ruff, pyright" 2>/dev/null || .venv/bin/python -m pip install --quiet -e ".[test,lint]"
    .venv/bin/ruff check . && exec .venv/bin/pyright "$@" ;;
  demo) shift; exec .venv/bin/python examples/char_lm.py "$@" ;;
  # two test processes (compiling is single-threaded), the long notebook tests balanced by work
  # stealing: 12 minutes on 2 idle cores (11 min 37 s measured), about 16 on a busy machine;
  # later arguments win (`bash run.sh test -n 0` runs in one process)
  test) shift; exec .venv/bin/python -m pytest -n 2 --dist worksteal "$@" ;;
  *) echo "usage: bash run.sh demo|test|lint [args...]" >&2; exit 2 ;;
esac
