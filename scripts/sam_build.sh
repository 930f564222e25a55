#!/usr/bin/env bash
# `sam build` for python3.12 on this machine, no container, then the size check.
#   scripts/sam_build.sh [BUILD_DIR]      (default .aws-sam/build)
# Environment: ENGRAM_SAM_VENV (default <repo>/.venv-sam), ENGRAM_PYTHON (the project's
# Python, default <repo>/.venv/bin/python), ENGRAM_MODEL_DIR (default
# <repo>/.venv/share/engram/minilm-onnx, written by `make setup`), PYTHON312 (a CPython
# 3.12: found on PATH or under pyenv otherwise). The SAM CLI needs python3.12 on PATH
# for the functions (runtime python3.12); the layer's Makefile uses it for pip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="$(realpath -m "${1:-$ROOT/.aws-sam/build}")"
SAM="${ENGRAM_SAM_VENV:-$ROOT/.venv-sam}/bin/sam"
MODEL_DIR="${ENGRAM_MODEL_DIR:-$ROOT/.venv/share/engram/minilm-onnx}"

find_python312() {
    local candidate
    # `python3.12 -c` rather than `command -v`: a pyenv shim exists even where 3.12 is
    # not the selected version, and fails when run.
    candidate="$(python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || true)"
    if [ -z "$candidate" ]; then
        for candidate in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3.12 \
                         /usr/bin/python3.12 /usr/local/bin/python3.12; do
            [ -x "$candidate" ] && break
            candidate=""
        done
    fi
    echo "$candidate"
}

PYTHON312="${PYTHON312:-$(find_python312)}"
if [ -z "$PYTHON312" ]; then
    echo "sam_build.sh: no python3.12 found (the functions' runtime); install one or set PYTHON312" >&2
    exit 1
fi
if [ ! -f "$MODEL_DIR/model-int8.onnx" ]; then
    echo "sam_build.sh: $MODEL_DIR has no model-int8.onnx: run 'make setup' (it exports the model)" >&2
    exit 1
fi
cd "$ROOT"
PATH="$(dirname "$PYTHON312"):$PATH" LAYER_PYTHON="$PYTHON312" ENGRAM_MODEL_DIR="$MODEL_DIR" \
    SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
    "$SAM" build --template-file "$ROOT/template.yaml" --build-dir "$BUILD_DIR"
"${ENGRAM_PYTHON:-$ROOT/.venv/bin/python}" "$ROOT/scripts/check_sizes.py" "$BUILD_DIR" --json "$BUILD_DIR/sizes.json"
