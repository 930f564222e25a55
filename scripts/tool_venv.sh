#!/usr/bin/env bash
# Makes (or reuses) a tool's own virtualenv: for a client or CLI whose pinned
# dependencies must not meet the project's (MemOS's client, EverOS's SDK, the SAM CLI).
#
#   tool_venv.sh NAME VENV_DIR MIN_PYTHON CHECK -- PIP_INSTALL_ARGS...
#
# CHECK is a shell command, run with $VENV set, that exits 0 when the venv works. Nothing
# is installed when the venv passes CHECK and was installed with the same arguments
# (requirements files among them are compared by content). Exits non-zero on any failure.
# Environment: PYTHON (default python3).
set -euo pipefail

NAME=$1 VENV=$2 MIN_PYTHON=$3 CHECK=$4
shift 4
[ "${1:-}" = "--" ] && shift
PY="${PYTHON:-python3}"
STAMP="$VENV/.engram-tool-venv"

say() { echo "$NAME venv: $*" >&2; }
fingerprint() {
    { printf '%s\n' "$@"; for arg in "$@"; do if [ -f "$arg" ]; then cat "$arg"; fi; done; } \
        | sha256sum | cut -d' ' -f1
}
works() { VENV="$VENV" bash -c "$CHECK"; }
up_to_date() {
    [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] \
        && [ "$(cat "$STAMP")" = "$(fingerprint "$@")" ] && works >/dev/null 2>&1
}

# Two callers at once (make and pytest) must not install over each other: lock this
# script (read-only, so no stray lock file is left behind).
exec 9<"${BASH_SOURCE[0]}"
flock 9

if up_to_date "$@"; then
    say "$VENV is ready; nothing to do"
    exit 0
fi

start=$(date +%s)
command -v "$PY" >/dev/null || { say "no $PY on PATH (set PYTHON)"; exit 1; }
"$PY" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$MIN_PYTHON'.split('.'))))" \
    || { say "$PY is older than $MIN_PYTHON"; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PY" -m venv "$VENV"
fi
rm -f "$STAMP"
say "pip install $*"
"$VENV/bin/pip" --disable-pip-version-check --no-input --quiet install "$@"
if ! works >&2; then
    say "FAILED: the check does not pass: $CHECK"
    exit 1
fi
fingerprint "$@" >"$STAMP"
say "ready: $VENV ($(du -sh "$VENV" | cut -f1), $(( $(date +%s) - start )) s)"
