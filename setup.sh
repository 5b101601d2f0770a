#!/usr/bin/env bash
# Set up a virtual environment with digit-tune installed, then run the given command in it.
#   bash setup.sh python -m model.train      # the main job
#   bash setup.sh python -m pytest           # the test suite
# VENV picks the environment's folder (default .venv). Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
# torch first, pinned: on these machines 2.13.0 is a CPU build on local disk; an unpinned
# request would pull a multi-GB CUDA build. Skipped when the venv already has a torch.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
fi
if ! "$VENV/bin/python" -c "import data.source, model.mlp, tuning" 2>/dev/null \
   || [ pyproject.toml -nt "$VENV/.digit-tune-installed" ]; then
  "$VENV/bin/python" -m pip install -q -e ".[dev,export]"
  touch "$VENV/.digit-tune-installed"
fi
if [ $# -gt 0 ]; then
  cmd="$1"; shift
  exec "$VENV/bin/$cmd" "$@"
fi
