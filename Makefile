# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing.
# `make check` runs what CI runs: `make lint` (ruff), `make typecheck` (mypy) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
SYS_PY ?= python3
EXTRAS ?= dev,atari,dmc,go

.PHONY: demo test lint typecheck check bench-search install clean

# A GPU machine ships its own CUDA torch: reuse it through system site-packages and never reinstall it.
# Elsewhere, take the CPU wheel torch==2.13.0 (on the machine's disk) before anything can pull a CUDA build.
$(VENV)/.installed: pyproject.toml Makefile
	@if $(SYS_PY) -c "import torch" 2>/dev/null; then \
	    $(SYS_PY) -m venv --system-site-packages $(VENV); \
	else \
	    $(SYS_PY) -m venv $(VENV) && $(PY) -m pip install -q "torch==2.13.0"; \
	fi
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m gym_planning.demo

# Numba's disk cache misses edits in modules that a cached kernel calls (CONTRIBUTING.md), so `make test`
# keeps its cache in a folder named after a hash of the package's sources: any edit starts a fresh cache.
SOURCES_HASH = $(shell find gym_planning -name '*.py' | LC_ALL=C sort | xargs cat | sha1sum | cut -c1-12)
NUMBA_TEST_CACHE = $(VENV)/numba-cache

test: $(VENV)/.installed
	@mkdir -p $(NUMBA_TEST_CACHE) && find $(NUMBA_TEST_CACHE) -mindepth 1 -maxdepth 1 ! -name $(SOURCES_HASH) -exec rm -rf {} +
	NUMBA_CACHE_DIR=$(NUMBA_TEST_CACHE)/$(SOURCES_HASH) $(PY) -m pytest -q

# Static checks (the dev extra installs ruff and mypy; settings in pyproject.toml).
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed
	$(PY) -m mypy

# Everything CI runs (.ci/run): lint, type check, then the tests.
check: lint typecheck test

bench-search: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m benchmarks.search

clean:
	rm -rf $(VENV)
