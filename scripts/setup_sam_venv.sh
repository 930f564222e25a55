#!/usr/bin/env bash
# .venv-sam: the AWS SAM CLI, apart from .venv because aws-sam-cli pins an older boto3
# than the project (and moto) need. Used by tests/contract/test_template.py
# (`sam validate --lint`) and for `sam build` / `sam deploy` (README, On AWS).
# Environment: ENGRAM_SAM_VENV (default <repo>/.venv-sam).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SAM_VERSION="1.170.0"
exec bash "$ROOT/scripts/tool_venv.sh" sam "${ENGRAM_SAM_VENV:-$ROOT/.venv-sam}" 3.9 \
    "SAM_CLI_TELEMETRY=0 \"\$VENV/bin/sam\" --version | grep -q $SAM_VERSION" \
    -- "aws-sam-cli==$SAM_VERSION"
