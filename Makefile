# The two commands of the README: `make serve` and `make test`.
# Everything is installed into .venv on first use (and again when
# pyproject.toml changes); nothing needs to be installed beforehand but
# Python >= 3.11 with venv (and a C compiler for meinheld, which is optional).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("CacheGrid needs Python >= 3.11, not " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# meinheld, the fast worker, pins greenlet<0.5, which does not build on
	@# Python 3.11, and pip cannot override a pin: install greenlet 1.x, then
	@# meinheld without its dependencies. Only where it is safe (Python < 3.12);
	@# without it the server runs on gthread.
	@if $(BIN)/python -c 'import sys; sys.exit(sys.version_info >= (3, 12))'; then \
	  $(BIN)/python -m pip install --quiet 'greenlet>=1.1.3,<2' && \
	  $(BIN)/python -m pip install --quiet --no-deps meinheld==1.0.2 || \
	  echo "meinheld could not be installed: the server will use the gthread worker"; \
	else echo "Python >= 3.12: meinheld is unsafe here, the server will use the gthread worker"; fi
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/cachegrid serve

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
