#!/usr/bin/env bash
# .venv-compat: MemOS's official Python client (PyPI `memoryos`,
# `from memos.api.client import MemOSClient`), installed with --no-deps (see
# requirements.txt beside this file for why) and --no-compile (bytecode for its ~10,000
# modules would add ~180 MB). Environment: ENGRAM_COMPAT_VENV (default <repo>/.venv-compat).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# memos writes a log under $MEMOS_BASE_PATH/.memos and reads .env files at import time:
# the check keeps both away from the work tree.
CHECK='d=$(mktemp -d); trap "rm -rf $d" EXIT; cd "$d" && MEMOS_BASE_PATH="$d" \
  PYTHON_DOTENV_DISABLED=1 "$VENV/bin/python" -c "from memos.api.client import MemOSClient"'
exec bash "$ROOT/scripts/tool_venv.sh" memos "${ENGRAM_COMPAT_VENV:-$ROOT/.venv-compat}" 3.10 \
    "$CHECK" -- --no-deps --no-compile memoryos==2.0.33 -r "$ROOT/tests/compat/requirements.txt"
