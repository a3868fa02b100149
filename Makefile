# Two commands run everything: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install demo serve test lint typecheck bench clean chromium screenshots

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## Build the demo business into ./loyalty.db (or LOYALTY_DATABASE_URL) and serve the API on :8000.
demo: install
	$(VENV)/bin/loyalty demo --serve

serve: install
	$(VENV)/bin/loyalty serve

## The whole suite: lint, types, then the tests (on PostgreSQL too when LOYALTY_TEST_POSTGRES_URL is set).
## The web tests drive Debian's Chromium through Playwright (never a downloaded browser).
test: install lint typecheck chromium
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m pytest -q -n 2 --dist loadfile

## The README's screenshots (docs/screenshots/), taken by the browser tests; `make test` leaves them as they are.
screenshots: install chromium
	LOYALTY_WRITE_SCREENSHOTS=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m pytest -q -n 2 --dist loadfile tests/web -k browser

## Debian's Chromium for the browser tests: installed with apt-get when missing (CI runs as root).
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is missing: the browser tests cannot run" >&2; exit 1; }

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) loyalty.db loyalty.db-wal loyalty.db-shm .pytest_cache .mypy_cache .ruff_cache
