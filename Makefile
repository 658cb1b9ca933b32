# Two commands do all the set-up on a fresh machine: `make train` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TASK ?= cartpole-swingup
ARGS ?=

.PHONY: train test lint install install-dev smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# torch first, the build that fits this machine: CPU-only without an NVIDIA GPU (see the script).
install: $(BIN)/python
	$(BIN)/python scripts/install_torch.py
	$(BIN)/pip install -e .

install-dev: $(BIN)/python
	$(BIN)/python scripts/install_torch.py
	$(BIN)/pip install -e ".[dev]"

# Train on the default task with the paper's settings; extra flags via ARGS="...".
train: install
	$(BIN)/planet train --task $(TASK) $(ARGS)

lint: install-dev
	$(BIN)/ruff check src tests benchmarks scripts examples

test: lint
	$(BIN)/pytest

# The front door as a new user meets it: a new venv built as `make train` builds one, then a
# debug run on a dm_control task and on toy-reach (scripts/smoke.sh).
smoke:
	bash scripts/smoke.sh

clean:
	rm -rf $(VENV) .smoke build dist src/*.egg-info .pytest_cache .ruff_cache
