# The two commands of the README: `make serve` and `make test`.
# Everything is installed into .venv on first use (and again when
# pyproject.toml changes); nothing needs to be installed beforehand but
# Python >= 3.11 with venv (and a C compiler for meinheld, which is optional).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A changed patch set rebuilds meinheld: its version names the patches' digest.
MEINHELD_BUILD := $(wildcard cachegrid/meinheld_build/*.py cachegrid/meinheld_build/patches/*.patch)

.PHONY: setup serve test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(MEINHELD_BUILD)
	@$(PYTHON) -c 'import sys; sys.exit("CacheGrid needs Python >= 3.11, not " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m cachegrid.meinheld_build
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/cachegrid serve

test: $(STAMP)
	$(BIN)/python -m pytest

# The developer's loop, under a minute: no process started, no fuzzing.
test-fast: $(STAMP)
	CACHEGRID_FAST_TESTS_ONLY=1 $(BIN)/python -m pytest -q -m "not process and not fuzz and not slow"

# On demand, not part of the tests: about half an hour on a 2-core machine.
# Needs wrk (apt-get install wrk). Writes docs/benchmarks-*.md.
bench: $(STAMP)
	$(BIN)/python benchmarks/engine_bench.py --output docs/benchmarks-engine.md
	$(BIN)/python benchmarks/http_bench.py --output docs/benchmarks-http.md
	$(BIN)/python benchmarks/loadtest_vs_wrk.py --output docs/benchmarks-loadtest.md

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
