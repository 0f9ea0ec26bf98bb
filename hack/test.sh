#!/usr/bin/env bash
# The whole test suite: lint, types, CRD drift, unit, emulator conformance and end-to-end tests against a real
# kube-apiserver + etcd started by the test harness. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== CRDs match the models"; .venv/bin/coco-operator crds --check crds && .venv/bin/coco-operator crds --check charts/coco-operator/crds
echo "== pytest"; .venv/bin/pytest "$@"
