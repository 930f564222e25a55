#!/usr/bin/env bash
# Creates .venv-sam, the virtualenv that holds the AWS SAM CLI. It lives apart from
# .venv because aws-sam-cli pins an older boto3 than the project (and moto) need.
# Used by tests/contract/test_template.py (`sam validate --lint`) and by the deploy
# steps in docs/aws.md (`sam build`, `sam deploy`).
#
# Idempotent: does nothing when the venv already runs the pinned `sam --version`.
# Exits non-zero on any failure.
#
# Environment: PYTHON (default python3, needs >= 3.9), ENGRAM_SAM_VENV (default
# <repo>/.venv-sam).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ENGRAM_SAM_VENV:-$ROOT/.venv-sam}"
PY="${PYTHON:-python3}"
SAM_VERSION="1.170.0"
SAM_PIN="aws-sam-cli==$SAM_VERSION"

say() { echo "setup_sam_venv: $*" >&2; }

up_to_date() {
    [ -x "$VENV/bin/sam" ] \
        && SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" --version 2>/dev/null | grep -q "$SAM_VERSION"
}

# Two callers at once (make + pytest) must not install over each other: lock a file
# that is always there (this script, read-only, so no stray lock file is left behind).
exec 9<"${BASH_SOURCE[0]}"
flock 9

if up_to_date; then
    say "$VENV already has SAM CLI $SAM_VERSION; nothing to do"
    exit 0
fi

start=$(date +%s)
command -v "$PY" >/dev/null || { say "no $PY on PATH (set PYTHON)"; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
    || { say "$PY is older than 3.9 (aws-sam-cli needs >= 3.9)"; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PY" -m venv "$VENV"
fi

say "installing $SAM_PIN"
"$VENV/bin/pip" --disable-pip-version-check --no-input --quiet install "$SAM_PIN"

if ! up_to_date; then
    say "FAILED: $VENV/bin/sam does not report version $SAM_VERSION"
    SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" --version >&2 || true
    exit 1
fi
say "ready: $VENV ($(du -sh "$VENV" | cut -f1), $(( $(date +%s) - start )) s)"
