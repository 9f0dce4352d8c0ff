# Set-up and entry points. `make demo` and `make test` work on a fresh machine:
# they create .venv, install torch==2.13.0 FIRST (so that no dependency picks another
# torch), then the package with its dev extra.
# Which torch build the pin gives depends on pip's configuration. On this project's own
# machines pip finds a local CPU wheel (2.13.0+cpu). On a stock Linux set-up that installs
# from PyPI, torch==2.13.0 is PyPI's default wheel, which bundles CUDA (multi-GB nvidia-*
# dependencies). For the CPU build there, install it into .venv before running make (the
# pin is then already satisfied and pip keeps it):
#   python3 -m venv .venv
#   .venv/bin/python -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check sklearn_rtl tests benchmarks examples

clean:
	rm -rf $(VENV) .pytest_cache
