# Two entry points for a fresh Debian machine: `make demo` and `make test`.
# Each sets up everything it needs (system packages, Docker engine, virtualenv, sandbox image)
# and skips what is already done, so a second run is fast.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev,cpu

.PHONY: demo test stack system venv image lint bench clean

demo: system venv image
	$(BIN)/startbox demo

# mypy (the packages and tests, as configured in pyproject.toml) runs beside the tests: a cold
# run is a minute of CPU that the suite's first minutes, mostly waiting on the engine, can spare;
# its report is printed after the tests', and either failing fails `make test`
test: system venv image
	$(BIN)/ruff check .
	@mkdir -p .mypy_cache; $(BIN)/mypy > .mypy_cache/report.txt 2>&1 & typing=$$!; \
	$(BIN)/pytest; tests=$$?; wait $$typing; typed=$$?; \
	echo "mypy:"; cat .mypy_cache/report.txt; test $$tests -eq 0 && test $$typed -eq 0

# the whole stack of compose.yaml in containers (model, API, workers, Redis, UI); it builds
# its own sandbox image
stack: system venv
	$(BIN)/startbox stack up

system:
	@scripts/setup-system.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@scripts/install-venv.sh $(BIN)/python ".[$(EXTRAS)]"
	@touch $@

image: venv system
	$(BIN)/startbox sandbox build-image

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: system venv image
	$(BIN)/startbox sandbox bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
