#!/usr/bin/env bash
# .venv-everos: EverOS's official Python SDK (PyPI `everos`, `from everos import EverOS`),
# pinned with --no-deps in everos_requirements.txt beside this file, so the SDK runs
# exactly as a client of Engram would install it. Environment: ENGRAM_EVEROS_VENV
# (default <repo>/.venv-everos).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec bash "$ROOT/scripts/tool_venv.sh" everos "${ENGRAM_EVEROS_VENV:-$ROOT/.venv-everos}" 3.9 \
    '"$VENV/bin/python" -c "from everos import EverOS"' \
    -- --no-deps -r "$ROOT/tests/compat/everos_requirements.txt"
