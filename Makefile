# The two commands a newcomer needs: `make demo` and `make test`.
# Both create their own virtual environment (.venv) on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-tools lint setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/arrears demo

# `make test` also installs the browser and Node.js its tests use, when missing and apt-get may.
test: $(STAMP) test-tools
	$(BIN)/python -m pytest

test-tools:
	@bash scripts/ensure-test-tools

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .arrears-data arrears-report.html
