# One entry point for people and CI. Every target sets itself up first (a .venv in the repo root,
# pinned by requirements/constraints-py3.11.txt), so a fresh clone needs nothing but Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := requirements/constraints-py3.11.txt
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup test test-fast lint format demo sandbox docs bench lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python --constraint $(CONSTRAINTS) --editable '.[dev]'
	@touch $(STAMP)

## The whole suite (unit, integration against the sandbox, example DAGs, slow end-to-end tests).
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Everything but the tests marked slow.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## The example batch-transcription DAG end to end against a local KubeAI on real Whisper (tiny.en, offline).
demo: setup
	$(BIN)/python -m airflow_provider_kubeai_speech.sandbox.demo

## A local KubeAI in the foreground (real Whisper); its connections are written to .sandbox/connections.env.
sandbox: setup
	$(BIN)/python -m airflow_provider_kubeai_speech.sandbox --engine faster-whisper --state-dir .sandbox

## Speed and memory figures, measured side by side (writes benchmarks/RESULTS.rst).
bench: setup
	$(BIN)/python benchmarks/run_all.py

## The documentation site, warnings as errors.
docs: setup
	$(BIN)/sphinx-build -E -a -W --keep-going -q -b html docs docs/_build/html

## Re-pin every dependency (needs the package registry).
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --output-file $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .demo .sandbox .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
