# Entry points; the scripts in hack/ do the work.
PYTHON ?= .venv/bin/python
BENCH_ARGS ?=

.PHONY: test image demo bench bench-smoke bench-permissions

test:  ## lint, types, CRD drift, unit, emulator and end-to-end tests
	bash hack/test.sh

image:  ## the operator image (docker if present, else buildah from a local Debian base); IMAGE=name:tag
	bash hack/image.sh --tag $(or $(IMAGE),localhost/coco-operator:dev)

demo:  ## kube-apiserver + etcd, emulated Confluence and Meilisearch, the operator, the examples
	bash hack/demo.sh

bench:  ## sync vs peers (1,000 and 10,000 pages, 50 ms latency) and operator scale; writes docs/benchmarks.md
	bash hack/setup.sh
	$(PYTHON) -m pip install --quiet -e '.[test,bench]'
	$(PYTHON) -m bench.run $(BENCH_ARGS)

bench-smoke:  ## the same in under a minute (100 pages, 5 ms latency, 20 Datasources); writes nothing into docs/
	bash hack/setup.sh
	$(PYTHON) -m pip install --quiet -e '.[test,bench]'
	$(PYTHON) -m bench.run --smoke $(BENCH_ARGS)

bench-permissions:  ## permissions.mode sync vs none (1,000 and 10,000 pages, 10% restricted); writes docs/bench-permissions.md
	bash hack/setup.sh
	$(PYTHON) -m pip install --quiet -e '.[test,bench]'
	$(PYTHON) -m bench.permissions $(BENCH_ARGS)
