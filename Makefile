# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint format bench clean docs frontend

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m brygga.demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports  # the layer contract in pyproject.toml (docs/architecture.md)
	.ci/services.sh chromium  # the browser tests: install it (root + apt) or say how
	$(BIN)/pytest

# The edit-and-test loop: lint, then every test not marked slow, stopping at the first failure
# (docs/testing.md). `make test` stays the full gate CI runs.
test-fast: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/pytest -m "not slow" -x -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# Rebuild the vendored design system (needs node and npm; the built files are committed).
frontend:
	frontend/build.sh

docs: $(STAMP)
	$(BIN)/brygga schema-docs --out docs/data-model.md

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache .import_linter_cache .grimp_cache
