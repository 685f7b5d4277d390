# Two commands for a fresh clone: `make demo` and `make test`. Each creates .venv and installs
# what it needs (the library alone for the demo, the library plus its dev tools for the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck contracts docs pytest bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed  ## run the end-to-end demo on the embedded default (SQLite)
	$(BIN)/python -m suuupra_commerce.demo

test: lint typecheck contracts docs pytest  ## everything CI runs

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

contracts: $(VENV)/.installed-dev
	$(BIN)/lint-imports

docs: $(VENV)/.installed-dev  ## the documentation site, warnings as errors
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-dev  ## the benchmark suite: one table, written to benchmarks/results/
	$(BIN)/python -m benchmarks.suite

bench-quick: $(VENV)/.installed-dev  ## the same, smaller (a few minutes)
	$(BIN)/python -m benchmarks.suite --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache data .site
