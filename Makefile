# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing.
VENV ?= .venv
PY := $(VENV)/bin/python
SYS_PY ?= python3
EXTRAS ?= dev,atari,dmc,go

.PHONY: demo test bench-search install clean

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

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench-search: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m benchmarks.search

clean:
	rm -rf $(VENV)
