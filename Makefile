# Two commands do all the set-up on a fresh machine: `make train` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TASK ?= cartpole-swingup
ARGS ?=

.PHONY: train test lint install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -e ".[dev]"

# Train on the default task with the paper's settings; extra flags via ARGS="...".
train: install
	$(BIN)/planet train --task $(TASK) $(ARGS)

lint: install-dev
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
