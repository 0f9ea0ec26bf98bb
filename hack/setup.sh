#!/usr/bin/env bash
# Prepares a fresh machine: a Python 3.11 virtualenv with the project and its test tools, and the control-plane
# binaries (kube-apiserver, etcd, helm) built from Go modules into a cache outside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
bash hack/build-control-plane.sh all >/dev/null
echo "setup done: .venv ready, control-plane binaries in $(bash hack/build-control-plane.sh all)"
