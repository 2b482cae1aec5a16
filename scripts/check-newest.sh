#!/usr/bin/env bash
# Non-blocking drift check: install the newest releases that pyproject.toml allows, WITHOUT the lock, into a
# fresh virtualenv, and run the test suite, so a release that breaks us is seen before the lock is moved.
# CI does not run this (CI installs the lock); run it by hand or on a schedule:  bash scripts/check-newest.sh
# Machines with a pip-wide cap (e.g. /etc/xdg/pip/constraints.txt) get the newest release under that cap;
# pass --no-caps to ignore pip's configuration files, caps included (a newer torch is then a multi-GB download).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${HARDSIGHT_NEWEST_VENV:-/tmp/hardsight-newest-venv}"
if [[ "${1:-}" == "--no-caps" ]]; then export PIP_CONFIG_FILE=/dev/null; shift; fi  # PIP_CONSTRAINT="" does not
rm -rf "$venv"
python3 -m venv "$venv"
. "$venv/bin/activate"
python -m pip install -q --upgrade pip
pip install -q --upgrade --upgrade-strategy eager -e '.[test]'
echo "newest versions installed:"
pip list --format=freeze | grep -iE '^(torch|torchvision|lightning|timm|onnx|onnxscript|onnxruntime|numpy|fastapi|optuna)==' | sed 's/^/  /'
pytest -q "$@"
