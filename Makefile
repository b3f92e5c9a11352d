# Two entry points (see README): `make example` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: example test lint bench serve

$(STAMP): pyproject.toml scripts/system-deps.sh
	bash scripts/system-deps.sh || echo "warning: system packages missing (scripts/system-deps.sh): PDF reports, the web tests on PostgreSQL and the DICOM tests need them"
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

example: $(STAMP)
	$(VENV)/bin/reirrad assess examples/npc-reirradiation-2026.yaml

# The web tests run on SQLite in the first pass and again on PostgreSQL when DATABASE_URL is
# set (.ci/run starts a server with scripts/start-postgres.sh; in CI they must not be skipped).
test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q
	@if [ -n "$${DATABASE_URL:-}" ]; then \
	  echo "web tests on PostgreSQL"; \
	  REIRRAD_WEB_DB=postgres $(PY) -m pytest -q tests/web; \
	elif [ -n "$${CI:-}" ]; then \
	  echo "error: DATABASE_URL is not set: the web tests must also run on PostgreSQL in CI" >&2; \
	  exit 1; \
	else \
	  echo "note: the web tests ran on SQLite only; for PostgreSQL too:" \
	    'eval "$$(bash scripts/start-postgres.sh)" && make test && bash scripts/stop-postgres.sh'; \
	fi

# The web application on http://127.0.0.1:8000 (data folder: DATA=..., default ~/.local/share/reirrad)
serve: $(STAMP)
	$(VENV)/bin/reirrad serve $(if $(DATA),--data $(DATA))

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/dvh_vs_dicompyler.py
