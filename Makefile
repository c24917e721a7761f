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

.PHONY: setup serve test test-fast lint bench soak fuzz clean

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

# Static checks, run by CI before the tests: ruff (lint and format) over the
# tree, mypy over the package, and the house rules a tool can check
# (scripts/house_rules.py: sizes of files, classes and functions).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/house_rules.py

# On demand, not part of the tests: about 45 minutes on a 2-core machine.
# Needs wrk, redis-server and memcached (apt-get install wrk redis-server memcached) and libcachesim (the dev extra). Writes docs/benchmarks-*.md. fast_default.py
# builds stock meinheld once, for its ceiling, in .bench/stock-meinheld.
bench: $(STAMP)
	$(BIN)/python benchmarks/fast_default.py --output docs/benchmarks-fast-default.md
	$(BIN)/python benchmarks/events_bench.py --output docs/benchmarks-events.md
	$(BIN)/python benchmarks/engine_bench.py --output docs/benchmarks-engine.md
	$(BIN)/python benchmarks/client_bench.py --output docs/benchmarks-client.md
	$(BIN)/python benchmarks/hit_ratio.py --output docs/benchmarks-hit-ratio.md
	$(BIN)/python benchmarks/http_bench.py --output docs/benchmarks-http.md
	$(BIN)/python benchmarks/loadtest_vs_wrk.py --output docs/benchmarks-loadtest.md
	$(BIN)/python benchmarks/snapshot_bench.py --output docs/benchmarks-snapshot.md
	$(BIN)/python benchmarks/cluster_bench.py --output docs/benchmarks-cluster.md

# 10 minutes of mixed load on the default server, RSS sampled every 10 s
# (SOAK_MINUTES=2 for a shorter run). Writes docs/benchmarks-soak.md and .svg.
SOAK_MINUTES ?= 10
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py --minutes $(SOAK_MINUTES) --output docs/benchmarks-soak.md

# The fuzz targets (fuzz/README.md): builds both (needs clang with libFuzzer:
# apt-get install clang-14 libclang-rt-14-dev libfuzzer-14-dev) and runs each
# for FUZZ_SECONDS, one after the other, at niceness FUZZ_NICE. Until their
# fixes land, the fuzz build carries fuzz/proposed (FUZZ_WITH_PROPOSED=0: not).
FUZZ_SECONDS ?= 300
FUZZ_NICE ?= 19
FUZZ_WITH_PROPOSED ?= 1
fuzz: $(STAMP)
	FUZZ_WITH_PROPOSED=$(FUZZ_WITH_PROPOSED) $(BIN)/python fuzz/build.py
	FUZZ_WITH_PROPOSED=$(FUZZ_WITH_PROPOSED) $(BIN)/python fuzz/campaign.py --seconds $(FUZZ_SECONDS) --nice $(FUZZ_NICE)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
