# The commands a newcomer types. `make demo` and `make test` set everything up on their own.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := $(VENV)/.installed-marl

.PHONY: setup demo test bench lint format clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

# The MARL libraries of examples/ (torchrl, benchmarl, ray[rllib], supersuit): the tests of
# examples/ run when they are installed, so `make test` installs them; `make demo` does not.
$(EXTRAS): $(STAMP)
	$(BIN)/pip install -q -e ".[dev,marl]"
	touch $(EXTRAS)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m tapfinger.demo

test: $(EXTRAS)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/sim_throughput.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
