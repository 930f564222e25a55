#!/usr/bin/env bash
# Creates the test-only virtualenv .venv-everos that holds EverOS's official Python SDK
# (PyPI `everos`, `from everos import EverOS`), pinned in everos_requirements.txt beside
# this file. Kept apart from the project's venv so the SDK runs exactly as a client of
# Engram would install it.
#
# Idempotent: does nothing when the venv imports the SDK and was installed from the
# current requirements file. Exits non-zero on any failure.
#
# Environment: PYTHON (default python3, needs >= 3.9), ENGRAM_EVEROS_VENV (default
# <repo>/.venv-everos).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${ENGRAM_EVEROS_VENV:-$ROOT/.venv-everos}"
REQ="$ROOT/tests/compat/everos_requirements.txt"
PY="${PYTHON:-python3}"
STAMP="$VENV/.engram-everos-requirements"

say() { echo "setup_everos_venv: $*" >&2; }
req_hash() { sha256sum "$REQ" | cut -d' ' -f1; }
imports_sdk() { "$VENV/bin/python" -c 'from everos import EverOS' >/dev/null 2>&1; }

up_to_date() {
    [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(req_hash)" ] \
        && imports_sdk
}

# Two callers at once must not install over each other.
exec 9<"$REQ"
flock 9

if up_to_date; then
    say "$VENV already imports EverOS; nothing to do"
    exit 0
fi

start=$(date +%s)
command -v "$PY" >/dev/null || { say "no $PY on PATH (set PYTHON)"; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PY" -m venv "$VENV"
fi
rm -f "$STAMP"
say "installing tests/compat/everos_requirements.txt --no-deps"
"$VENV/bin/pip" --disable-pip-version-check --no-input --quiet install --no-deps -r "$REQ"
if ! "$VENV/bin/python" -c 'from everos import EverOS'; then
    say "FAILED: $VENV/bin/python cannot import everos.EverOS (see above)"
    exit 1
fi
req_hash >"$STAMP"
say "ready: $VENV ($(du -sh "$VENV" | cut -f1), $(( $(date +%s) - start )) s)"
