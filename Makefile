# One entry point for people and CI. Every target sets itself up first (a .venv in the repo root,
# pinned by requirements/constraints-py3.11.txt), so a fresh clone needs nothing but Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := requirements/constraints-py3.11.txt
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
## Two workers (the machine's cores); a test file stays on one worker, so its fixtures are shared.
PYTEST_WORKERS ?= -n 2 --dist loadfile

.PHONY: setup test test-fast test-deployment postgres kubectl lint format demo sandbox docs dist bench lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml sandbox/pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python --constraint $(CONSTRAINTS) \
		--editable ./sandbox --editable '.[dev]'
	@touch $(STAMP)

## The whole suite (unit, integration against the sandbox, example DAGs, slow end-to-end tests,
## and tests/deployment: PostgreSQL + scheduler + dag-processor + triggerer + api-server).
## The deployment tests install Debian's postgresql when it is missing (as root, apt-get).
test: setup
	$(BIN)/python -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

## Only the real-deployment layer (a few minutes).
test-deployment: setup
	$(BIN)/python -m pytest tests/deployment $(PYTEST_ARGS)

## Install Debian's postgresql when missing, and check that a private cluster starts and stops
## (the deployment tests do this themselves; this target is for a machine being prepared).
postgres:
	@dir=$$(mktemp -d) && chmod 755 $$dir && \
	port=$$($(PYTHON) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') && \
	bash tests/deployment/postgres.sh start $$dir/pg $$port && bash tests/deployment/postgres.sh stop $$dir/pg && rm -rf $$dir

## Debian's kubectl (kubernetes-client) for the sandbox's kubectl tests, when missing; skipped
## with a reason without root or apt-get (those tests then skip too).
kubectl:
	@command -v kubectl >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client; } || \
		echo "kubectl not installed (needs root and apt-get): its tests will skip"

## Everything but the tests marked slow.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## The example batch-transcription DAG end to end against a local KubeAI on real Whisper (tiny.en, offline).
demo: setup
	$(BIN)/python scripts/demo.py

## A local KubeAI in the foreground (real Whisper); its connections are written to .sandbox/connections.env.
## It is its own distribution (sandbox/, import package local_kubeai), installed editable by setup.
sandbox: setup
	$(BIN)/python -m local_kubeai --engine faster-whisper --state-dir .sandbox

## Wheels and sdists of the provider and of the sandbox (local-kubeai) in dist/, checked by twine.
DIST ?= dist
dist: setup
	rm -rf $(DIST) build sandbox/build
	$(BIN)/python -m build --outdir $(DIST) .
	$(BIN)/python -m build --outdir $(DIST) sandbox
	$(BIN)/twine check --strict $(DIST)/*

## Speed and memory figures, measured side by side (writes benchmarks/RESULTS.rst).
bench: setup
	$(BIN)/python benchmarks/run_all.py

## The documentation site, warnings as errors.
docs: setup
	$(BIN)/sphinx-build -E -a -W --keep-going -q -b html docs docs/_build/html

## Re-pin every dependency (needs the package registry). local-kubeai is this repository's sandbox/
## (it is on no registry): given as a path, and left out of the pins.
lock: setup
	echo "-e ./sandbox" | $(BIN)/uv pip compile - pyproject.toml --extra dev --python-version 3.11 \
		--no-emit-package local-kubeai --custom-compile-command "make lock" --output-file $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .demo .sandbox .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
