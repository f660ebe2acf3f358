# One command per job. Each creates .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SRC := relay tests $(wildcard bench)

.PHONY: run test check lint bench chaos fuzz clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

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
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

## The fault scenarios with real traffic, then the fuzzers; writes docs/chaos-results.md.
chaos: $(STAMP)
	$(BIN)/pip install --quiet -e '.[fuzz]'
	$(BIN)/python -m tests.chaos

## Coverage-guided fuzzing of the callback parser and the fields selector (docs/security.md).
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/pip install --quiet -e '.[fuzz]'
	$(BIN)/python -m tests.fuzz --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .relay-data .pytest_cache .mypy_cache .ruff_cache
