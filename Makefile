# Two entry points for a newcomer on a fresh machine:
#   make demo   -> creates .venv, installs mlpentest[tamper], runs the tour of every attack (writes mlpentest-report/)
#   make test   -> creates .venv, installs mlpentest with its test extras, runs pytest
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned to the CPU build that lies on the project machines' disk; set TORCH= to skip it.
TORCH  ?= torch==2.13.0
EXTRAS ?= dev,torch,dask,tabular,tamper,serve

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[tamper]"
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(if $(TORCH),$(BIN)/pip install -q "$(TORCH)")
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/mlpentest demo --out mlpentest-report

test: $(VENV)/.test-installed
	$(BIN)/pytest -q

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests $(wildcard benchmarks)

clean:
	rm -rf $(VENV) mlpentest-report .pytest_cache
