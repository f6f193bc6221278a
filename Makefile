# tickwatch: `make run` starts the daemon on the bundled sample data, `make test` runs the suite.
# Both create ./.venv and install what they need on first use (a fresh machine needs only python3.11+).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
CONFIG ?= alerts.yaml

.PHONY: run test test-fast lint format bench chaos check sample backtest clean chromium

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing tickwatch into $(VENV) (first run only) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

run: $(STAMP)
	$(BIN)/tickwatch run --config $(CONFIG)

check: $(STAMP)
	$(BIN)/tickwatch check --config $(CONFIG)
	$(BIN)/tickwatch test rules/tests

test: $(STAMP) chromium
	$(BIN)/python -m pytest

# The status page's browser test (tests/e2e/test_status_page.py) drives Debian's chromium through
# Playwright (whose own browser download cannot work offline). Installed when missing and apt-get
# is there: as root (CI), or through sudo -n. A no-op once installed; if it cannot be installed
# the test skips, or fails when CI is set.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || ! command -v apt-get >/dev/null || { \
	  sudo=$$(test "$$(id -u)" = 0 || echo sudo -n); \
	  apt="$$sudo env DEBIAN_FRONTEND=noninteractive apt-get -qq -o=Dpkg::Use-Pty=0"; \
	  echo "installing chromium for the status page's browser test (first run only) ..."; \
	  $$apt install -y chromium >/dev/null 2>&1 \
	  || { $$apt update && $$apt install -y chromium >/dev/null; } \
	  || echo "could not install chromium: the browser test will skip (fail under CI)"; }

chaos: $(STAMP)
	$(BIN)/python -m pytest -m chaos -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# each bench prints its own tables and writes its headline figures to bench/results/; the last
# step prints them as one table and writes bench/results.json and bench/latency.png
bench: $(STAMP)
	@rm -f bench/results/*.json
	$(BIN)/python bench/pipeline.py --json bench/results/pipeline.json
	$(BIN)/python bench/rules_scale.py --json bench/results/rules_scale.json
	$(BIN)/python bench/feed.py --json bench/results/feed.json
	$(BIN)/python bench/delivery.py --json bench/results/delivery.json
	$(BIN)/python bench/e2e.py --json bench/results/e2e.json
	$(BIN)/python bench/reload.py --json bench/results/reload.json
	$(BIN)/python bench/lease.py --json bench/results/lease.json
	$(BIN)/python bench/backtest.py --json bench/results/backtest.json
	$(BIN)/python bench/report.py bench/results --out bench/results.json --png bench/latency.png

# the shipped rules on the bundled sample: a table, and var/backtest/report.html with a chart per rule
backtest: $(STAMP)
	$(BIN)/tickwatch backtest --config $(CONFIG) --from 2026-03-16 --out var/backtest

sample: $(STAMP)
	$(BIN)/python scripts/make_sample.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
