#!/usr/bin/env bash
# The whole test suite: lint, types, CRD drift, unit, emulator conformance and end-to-end tests against a real
# kube-apiserver + etcd started by the test harness, then the tests on a real node (the image built from this tree,
# the chart's pods, Job mode with real Jobs; tests/node/, needs root). Extra arguments go to pytest.
# COCO_SKIP_NODE=1 leaves the node out (outside CI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
echo "== node prerequisites (Debian packages, kubelet & co., images)"
node=1
if ! bash hack/setup-node.sh >/dev/null; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "error: the node's prerequisites could not be prepared (required in CI)" >&2
    exit 1
  fi
  echo "warning: no real node here; tests/node will be skipped" >&2
  node=0
fi
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== CRDs match the models"; .venv/bin/coco-operator crds --check crds && .venv/bin/coco-operator crds --check charts/coco-operator/crds
echo "== pytest"; .venv/bin/pytest --ignore=tests/node "$@"
if [[ "${COCO_SKIP_NODE:-}" == "1" && "${CI:-}" != "true" ]]; then
  echo "== pytest: the real node (skipped: COCO_SKIP_NODE=1)"
  exit 0
fi
# A separate run, so the node (kubelet, containerd, controllers) runs only while its own tests do.
echo "== pytest: the real node"
((node)) || echo "(prerequisites missing: the node tests will report why)"
.venv/bin/pytest tests/node "$@"
