# One command per job. Each creates .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := constraints.txt

SRC := relay tests $(wildcard bench)

.PHONY: run test check lint lock bench chaos fuzz clean

# Installs exactly the versions pinned in $(LOCK) (pyproject.toml keeps the ranges).
$(STAMP): pyproject.toml $(LOCK)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[embedded,dev]'
	touch $(STAMP)

## Pin every dependency (all extras) within pyproject.toml's ranges into $(LOCK): run it after
## changing a dependency, commit both. `make test`, `make bench` and the Dockerfile install from it.
lock:
	test -x $(BIN)/pip || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --all-extras --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file $(LOCK) pyproject.toml

## Run the relay (listener + workers) on an embedded Redis, with demo credentials.
run: $(STAMP)
	$(BIN)/relay run --demo

## Every check CI runs: lint, format, types, then the whole test suite.
test: $(STAMP)
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)
	$(BIN)/mypy
	$(BIN)/pytest

check: test

bench: $(STAMP)
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[bench]'
	$(BIN)/python -m bench

## The fault scenarios with real traffic, then the fuzzers; writes docs/chaos-results.md.
chaos: $(STAMP)
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[fuzz]'
	$(BIN)/python -m tests.chaos

## Coverage-guided fuzzing of the callback parser, the fields selector and webhook filters (docs/security.md).
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[fuzz]'
	$(BIN)/python -m tests.fuzz --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .relay-data .pytest_cache .mypy_cache .ruff_cache
