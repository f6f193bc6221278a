# tickwatch: `make run` starts the daemon on the bundled sample data, `make test` runs the suite.
# Both create ./.venv and install what they need on first use (a fresh machine needs only python3.11+).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
CONFIG ?= alerts.yaml

.PHONY: run test test-fast lint format bench chaos check sample clean

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

test: $(STAMP)
	$(BIN)/python -m pytest

chaos: $(STAMP)
	$(BIN)/python -m pytest -m chaos -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/rules_scale.py
	$(BIN)/python bench/feed.py
	$(BIN)/python bench/delivery.py

sample: $(STAMP)
	$(BIN)/python scripts/make_sample.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
