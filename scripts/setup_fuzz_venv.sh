#!/usr/bin/env bash
# .venv-fuzz: schemathesis (schema-generated requests against /v1/openapi.json), apart
# from .venv because it pins its own hypothesis, jsonschema and HTTP client versions.
# Used by tests/integration/test_fuzz.py (a short run) and bench/fuzz.py (`make bench-fuzz`).
# Environment: ENGRAM_FUZZ_VENV (default <repo>/.venv-fuzz).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCHEMATHESIS_VERSION="4.32.5"
exec bash "$ROOT/scripts/tool_venv.sh" schemathesis "${ENGRAM_FUZZ_VENV:-$ROOT/.venv-fuzz}" 3.10 \
    "\"\$VENV/bin/python\" -c 'import schemathesis, sys; \
sys.exit(schemathesis.__version__ != \"$SCHEMATHESIS_VERSION\")'" \
    -- "schemathesis==$SCHEMATHESIS_VERSION"
