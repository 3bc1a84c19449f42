# Conduit: `make demo` and `make test` are the whole set-up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck generated unit interop perf-analyzer bench proto

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The installer's own stamp decides whether there is work to do (a no-op takes milliseconds).
perf-analyzer:
	benchmarks/perf_analyzer/install.sh .cache/perf_analyzer

demo: install
	$(VENV)/bin/conduit demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

generated: install
	$(PY) proto/generate.py --check

proto: install
	$(PY) proto/generate.py

# Two pytest processes: the interop tests load tritonclient, whose generated modules define the same protobuf
# package as Conduit's, and protobuf refuses to load both into one process.
unit: install
	$(PY) -m pytest tests --ignore=tests/interop -q

interop: install perf-analyzer
	$(PY) -m pytest tests/interop -q

test: lint typecheck generated unit interop

bench: install perf-analyzer
	$(PY) benchmarks/serving/run.py
