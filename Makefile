# Two commands a new user needs (each sets itself up on a fresh Debian/Ubuntu machine):
#   make conformance   the conformance suites against the embedded Datadog emulator -> Allure report
#   make test          the project's own tests (harness, emulator, suites end to end)
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip
PYTEST_ARGS ?=
TARGETS ?=

.PHONY: setup conformance test report emulator bench clean nss-tools

setup: $(VENV)/.installed node_modules/.installed browser nss-tools

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "setup: npm (Node.js 20+) is needed for the Allure report"; exit 1; }
	npm ci --no-audit --no-fund --silent
	@touch $@

# Playwright's own Chromium where present, else Debian's (playwright install cannot download here).
browser:
	@if ls $${PLAYWRIGHT_BROWSERS_PATH:-$$HOME/.cache/ms-playwright}/chromium-*/chrome-linux*/chrome >/dev/null 2>&1 \
	    || [ -x /usr/lib/chromium/chromium ] || [ -n "$$DDOAUTH_CHROMIUM" ]; then :; \
	else \
	    echo "setup: installing Debian's chromium"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

# certutil: Chromium trusts network.ca_bundle (the emulator's CA too) through a per-bundle NSS database
nss-tools:
	@command -v certutil >/dev/null || { \
	    echo "setup: installing libnss3-tools (certutil)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libnss3-tools >/dev/null; \
	}

conformance: setup
	$(PY) -m harness.cli conformance $(if $(TARGETS),--targets $(TARGETS)) $(PYTEST_ARGS)

# Two sessions: the project's tests, then the suites against the embedded emulator. In one session
# pytest's reordering (the suites' session-scoped targets) can run a tests/ module that starts its
# own Playwright while the suites' session Playwright is alive, which Playwright's sync API refuses.
test: setup
	$(PY) -m pytest tests -p no:cacheprovider $(PYTEST_ARGS)
	$(PY) -m pytest suites -p no:cacheprovider $(PYTEST_ARGS)

report:
	$(PY) -m harness.cli report --results reports/allure-results --out reports/allure-report

emulator: setup
	$(VENV)/bin/ddoauth-emulator --port 8443

bench: setup
	$(PY) scripts/bench_emulator.py

clean:
	rm -rf reports/allure-results reports/allure-report reports/verdict.json reports/run-stats.jsonl reports/pages
