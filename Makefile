# Conduit: `make demo` and `make test` are the whole set-up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck generated unit interop perf-analyzer bench proto toolchains stubs compat fuzz \
	topology

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The native front (native/, Rust: tonic, PyO3), compiled with the crates pinned in native/Cargo.lock and installed
# into the environment as conduit_native; rebuilt when its sources change (a cold build takes minutes on two cores).
NATIVE := $(VENV)/.native
$(NATIVE): $(STAMP) native/Cargo.toml native/Cargo.lock native/pyproject.toml native/conduit_native.pyi \
		$(wildcard native/src/*.rs)
	cd native && VIRTUAL_ENV=$(abspath $(VENV)) $(abspath $(VENV))/bin/maturin develop --release --locked --quiet
	touch $(NATIVE)

install: $(STAMP) $(NATIVE)

# What the non-Python clients, the proto checks and the tests need, each from its own registry: Debian's protoc, C++
# gRPC, PostgreSQL server and Chromium; clients/go's modules; the npm packages of proto/ and clients/node. Installs
# only what is missing (a no-op takes about a second).
toolchains:
	clients/toolchains.sh

# The installer's own stamp decides whether there is work to do (a no-op takes milliseconds).
perf-analyzer:
	benchmarks/perf_analyzer/install.sh .cache/perf_analyzer

demo: install
	$(VENV)/bin/conduit demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd native && cargo fmt --check && cargo clippy --release --locked --quiet -- -D warnings

typecheck: install
	$(VENV)/bin/mypy

# Committed stubs (Python, Go, TypeScript) against a fresh generation; C++ must generate (Java's Maven build generates
# its own, in the stub tests).
generated: install toolchains
	$(PY) proto/generate.py --check --lang all

proto: install
	$(PY) proto/generate.py

# Stubs of every language into clients/<language>/ (Python's in place), from the one script; Java's through its build.
stubs: install toolchains
	$(PY) proto/generate.py --lang all
	cd clients/java && mvn -q -B generate-sources

# proto/ against its previous committed version: `buf breaking` with the wire and JSON rules (proto/buf.yaml).
compat: install toolchains
	$(PY) proto/compat.py

# Two pytest processes: the interop tests load tritonclient, whose generated modules define the same protobuf
# package as Conduit's, and protobuf refuses to load both into one process.
# Every test on the default (native) gRPC front, then the data-plane suite again on the Python front: both fronts
# serve the same product.
unit: install toolchains
	$(PY) -m pytest tests --ignore=tests/interop -q
	CONDUIT_FRONT=python $(PY) -m pytest tests/inference_server -q

# The conformance suite (tritonclient, perf_analyzer, the wire format) on each front.
interop: install perf-analyzer
	$(PY) -m pytest tests/interop -q
	CONDUIT_FRONT=python $(PY) -m pytest tests/interop -q

test: lint typecheck generated compat unit interop

# The loopback topology (README, Running on more than one machine): PostgreSQL, two control planes, three servers
# and Envoy, under load while processes are killed and restarted; prints its figures. TOPOLOGY_DIR keeps every log.
TOPOLOGY_DIR ?=
topology: install toolchains
	$(PY) -m tests.topology $(TOPOLOGY_DIR)

# Coverage-guided fuzzing of request decoding and validation (atheris), longer than the half minute the unit tests
# give it: FUZZ_SECONDS (default ten minutes), FUZZ_SEED (0: a fresh one each run). It starts from the committed
# corpus; new inputs go to .cache/fuzz/corpus and a finding to .cache/fuzz/ (README, Fuzzing).
FUZZ_SECONDS ?= 600
FUZZ_SEED ?= 0
fuzz: install
	mkdir -p .cache/fuzz/corpus
	$(PY) -m tests.inference_server.fuzz -max_total_time=$(FUZZ_SECONDS) -seed=$(FUZZ_SEED) -print_final_stats=1 \
		-artifact_prefix=.cache/fuzz/ .cache/fuzz/corpus tests/inference_server/fuzz/corpus

# Conduit side by side with MLServer and the floors (benchmarks/serving/results.md); about ten minutes.
bench: install perf-analyzer
	benchmarks/compare
