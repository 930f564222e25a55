#!/usr/bin/env bash
# Creates the test-only virtualenv .venv-compat that holds MemOS's official Python client
# (PyPI `memoryos`, `from memos.api.client import MemOSClient`). See requirements.txt
# beside this file for why everything is installed with --no-deps.
#
# Idempotent: does nothing when the venv already imports the client and was installed
# from the current requirements.txt. Exits non-zero on any failure.
#
# Environment: PYTHON (default python3, needs >= 3.10), ENGRAM_COMPAT_VENV (default
# <repo>/.venv-compat).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${ENGRAM_COMPAT_VENV:-$ROOT/.venv-compat}"
REQ="$ROOT/tests/compat/requirements.txt"
PY="${PYTHON:-python3}"
MEMOS_PIN="memoryos==2.0.33"
STAMP="$VENV/.engram-compat-requirements"

say() { echo "setup_venv: $*" >&2; }

req_hash() { sha256sum "$REQ" | cut -d' ' -f1; }

imports_client() {
    # memos writes a log file under $MEMOS_BASE_PATH/.memos and reads .env files at
    # import time: keep both away from the work tree.
    local scratch rc=0
    scratch="$(mktemp -d)"
    (cd "$scratch" && MEMOS_BASE_PATH="$scratch" PYTHON_DOTENV_DISABLED=1 \
        "$VENV/bin/python" -c 'from memos.api.client import MemOSClient' \
        >"$scratch/import.log" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ] && [ "${1:-}" = "--show" ]; then
        tail -n 30 "$scratch/import.log" >&2
    fi
    rm -rf "$scratch"
    return "$rc"
}

up_to_date() {
    [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(req_hash)" ] \
        && imports_client
}

# Two callers at once (make + pytest) must not install over each other: lock a file
# that is always there (read-only, so no stray lock file is left behind).
exec 9<"$REQ"
flock 9

if up_to_date; then
    say "$VENV already imports MemOSClient; nothing to do"
    exit 0
fi

start=$(date +%s)
command -v "$PY" >/dev/null || { say "no $PY on PATH (set PYTHON)"; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { say "$PY is older than 3.10 (memoryos needs >= 3.10)"; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PY" -m venv "$VENV"
fi

rm -f "$STAMP"
# --no-compile: bytecode for the ~10,000 modules would add ~180 MB; Python compiles the
# few hundred the client imports on first use.
INSTALL=("$VENV/bin/pip" --disable-pip-version-check --no-input --quiet
         install --no-deps --no-compile)
say "installing $MEMOS_PIN --no-deps"
"${INSTALL[@]}" "$MEMOS_PIN"
say "installing tests/compat/requirements.txt --no-deps"
"${INSTALL[@]}" -r "$REQ"

if ! imports_client --show; then
    say "FAILED: $VENV/bin/python cannot import memos.api.client.MemOSClient (see above)"
    exit 1
fi
req_hash >"$STAMP"
say "ready: $VENV ($(du -sh "$VENV" | cut -f1), $(( $(date +%s) - start )) s)"
