#!/usr/bin/env bash
# .venv-mem0: mem0's platform client (PyPI `mem0ai`, `from mem0 import MemoryClient`),
# pinned with --no-deps in mem0_requirements.txt beside this file, so the client runs
# exactly as a mem0 user installs it. Environment: ENGRAM_MEM0_VENV
# (default <repo>/.venv-mem0).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec bash "$ROOT/scripts/tool_venv.sh" mem0 "${ENGRAM_MEM0_VENV:-$ROOT/.venv-mem0}" 3.9 \
    'MEM0_TELEMETRY=False "$VENV/bin/python" -c "from mem0 import MemoryClient"' \
    -- --no-deps -r "$ROOT/tests/compat/mem0_requirements.txt"
