# The commands README names. Everything a command needs is installed by `setup`,
# only when missing (the stamp file tracks pyproject.toml).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.engram-installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
DATA   ?= .engram

.PHONY: setup serve test test-fast bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: a plain requirement would pull the CUDA build (GBs).
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[local,aws,dev]'
	touch $(STAMP)

serve: setup
	$(BIN)/engram serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not compat"

lint: setup
	$(BIN)/ruff check layers tests

clean:
	rm -rf $(VENV) .venv-compat .pytest_cache
