# The README's two commands: `make demo` and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup setup-test demo test lint typecheck unit bench pictogram clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup-test: $(VENV)/.test-installed

$(VENV)/.test-installed: $(VENV)/.installed
	bash scripts/setup.sh --test
	touch $@

demo: setup
	$(BIN)/xmodal demo

lint: setup-test
	$(BIN)/ruff check xmodal tests bench scripts
	$(BIN)/ruff format --check xmodal tests bench scripts

typecheck: setup-test
	$(BIN)/mypy

unit: setup-test
	XMODAL_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q

test: lint typecheck unit

bench: setup
	$(BIN)/python bench/bench_core.py

# Rebuild the bundled pictogram model from its npm sources (CPU, <= 90 min on 2 cores).
OUT ?= pictogram-model
CACHE ?= $(HOME)/.cache/xmodal-picto
pictogram: $(VENV)/.train-installed
	PYTHON=$(abspath $(BIN))/python bash scripts/train_pictogram.sh $(OUT) $(CACHE)

$(VENV)/.train-installed: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[train]"
	touch $@

clean:
	rm -rf demo-data .xmodal .pytest_cache .mypy_cache .ruff_cache
