# The README's two commands: `make demo` and `make test`. Everything else here is a convenience.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Reinstall when the package metadata changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
TEST_STAMP := $(STAMP)-test
PYTEST_ARGS ?=
# Test processes (pytest-xdist): one per core plus one, since many tests wait on processes and sockets
# rather than compute. The slow tests are scheduled first, the longest first (tests/conftest.py).
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) + 1 )))
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal

.PHONY: demo test test-fast install install-test lint bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setuptools' "Editable installation" notice is not a problem; a newcomer reads it as one.
QUIET_PIP := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet

$(STAMP): $(BIN)/python pyproject.toml
	$(QUIET_PIP) -e .
	@touch $@

$(TEST_STAMP): $(STAMP)
	$(QUIET_PIP) -e '.[test]'
	@touch $@

install: $(STAMP)
install-test: $(TEST_STAMP)

## The main job end to end on its embedded defaults (synthetic data, local cluster).
## Real data: make demo DATA=../shared/data/ml-100k SOURCE=movielens (or a Criteo TSV, SOURCE=criteo).
demo: $(STAMP)
	$(BIN)/recsys demo $(if $(SOURCE),--source=$(SOURCE)) $(if $(DATA),--data=$(DATA)) $(DEMO_ARGS)

## The whole test suite (what CI runs).
test: $(TEST_STAMP)
	$(BIN)/ruff check recsys pipelines serving tests benchmarks
	$(BIN)/mypy recsys pipelines serving benchmarks
	$(PYTEST) $(PYTEST_ARGS)

## The unit tests only (no multi-process jobs, studies or the demo): fast feedback while editing.
test-fast: $(TEST_STAMP)
	$(BIN)/ruff check recsys pipelines serving tests benchmarks
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

## Ruff and mypy (strict on recsys/activations, recsys/repro, the feature spec; see [tool.mypy]).
lint: $(TEST_STAMP)
	$(BIN)/ruff check recsys pipelines serving tests benchmarks
	$(BIN)/mypy recsys pipelines serving benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/activations.py --json out/bench/activations.json
	$(BIN)/python benchmarks/preprocess.py --json out/bench/preprocess.json
	$(BIN)/python benchmarks/train.py --json out/bench/train.json
	$(BIN)/python benchmarks/serving_latency.py --json out/bench/serving.json
	$(BIN)/python benchmarks/startup.py --json out/bench/startup.json

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .mypy_cache
