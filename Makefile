# Two entry points (see README): `make example` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: example test lint bench

$(STAMP): pyproject.toml scripts/system-deps.sh
	bash scripts/system-deps.sh || echo "warning: chromium/poppler-utils not installed: PDF reports and their tests will be skipped"
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

example: $(STAMP)
	$(VENV)/bin/reirrad assess examples/npc-reirradiation-2026.yaml

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/dvh_vs_dicompyler.py
