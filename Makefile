# One-command setup: every target creates or reuses .venv with only the Python on PATH.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test test-quick lint bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# `make run` installs htq and its runtime dependencies alone; `make test` (the rule above) adds
# the development tools, however the two are run one after the other.
$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/htq up

# In 4 processes (most tests wait on sockets and timers, so 4 keep 2 cores busy), each with its
# own Valkey; the slowest tests are listed. Bytecode is cached even where the environment says
# PYTHONDONTWRITEBYTECODE: otherwise each of the 5 pytest processes rewrites ~350 plugin modules
# again (2 s of CPU each), and every `htq` process a test starts compiles htq again.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n 4 --dist worksteal --durations=15

test: $(STAMP)
	$(PYTEST)

# Everything but the slow fault runs (tests marked `slow`, in tests/test_faults.py).
test-quick: $(STAMP)
	$(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The benchmarks also draw a chart, and profiles need py-spy: the optional `bench` extra.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
