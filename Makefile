# The two commands of a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit interop browser bench setup node-deps browser-deps pdf-deps call-deps bundle clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/collab-server

node-deps: tests/interop/node_modules/.installed bench/node_modules/.installed

tests/interop/node_modules/.installed: tests/interop/package.json tests/interop/package-lock.json
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error
	touch $@

bench/node_modules/.installed: bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	touch $@

PY_SOURCES := collab_server persistence integrations iep_collab cluster tests bench
# Most tests wait on servers, sockets and databases: two workers, a test file each at a time
# (files share their servers and browsers).
PARALLEL := -n 2 --dist loadfile
# Every test that reads frames from a socket, run again without the fast receive path.
SOCKET_TESTS := tests/collab_server/test_sync.py tests/collab_server/test_wire.py \
	tests/collab_server/test_store_failure.py tests/collab_server/test_join_budget.py tests/interop

lint: $(STAMP)
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not interop and not browser"

interop: $(STAMP) node-deps
	$(BIN)/pytest -m interop

test: $(STAMP) node-deps
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest $(PARALLEL)
	COLLAB_FAST_RECEIVE=false $(BIN)/pytest -q $(PARALLEL) $(SOCKET_TESTS)

bench: $(STAMP) node-deps
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) tests/interop/node_modules bench/node_modules data

# The browser editor: its npm dependencies, and `make bundle` to rebuild the committed bundle
# in collab_server/static/ after changing static/ (tests fail while it is stale).
node-deps: static/node_modules/.installed
unit: static/node_modules/.installed

static/node_modules/.installed: static/package.json static/package-lock.json
	cd static && npm ci --no-audit --no-fund --loglevel=error
	touch $@

bundle: static/node_modules/.installed
	cd static && node build.mjs

# Debian's Chromium drives tests/browser; a browser build is never downloaded.
browser-deps:
	@test -x /usr/bin/chromium || { apt-get update && \
		apt-get install -y --no-install-recommends chromium chromium-driver; }

test: browser-deps

browser: $(STAMP) node-deps browser-deps
	$(BIN)/pytest -m browser

# PDF export: fonts with Arabic glyphs (Noto) for WeasyPrint, and poppler's pdftotext/pdffonts
# for the tests; Debian packages installed with apt-get when missing, never assumed. `make run`
# serves without them (PDFs then use whatever fonts the system has).
pdf-deps:
	@{ fc-list | grep -q 'Noto Naskh Arabic' && command -v pdftotext >/dev/null; } || { \
		apt-get update && apt-get install -y --no-install-recommends fonts-noto-core poppler-utils; }

test: pdf-deps

# Voice calls are tested through a real TURN server: Debian's coturn, started by the tests.
call-deps:
	@command -v turnserver >/dev/null || { apt-get update && \
		apt-get install -y --no-install-recommends coturn; }

test: call-deps
