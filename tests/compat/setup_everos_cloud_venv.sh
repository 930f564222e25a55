#!/usr/bin/env bash
# .venv-everos-cloud: EverOS's cloud SDK (PyPI `everos-cloud`, the v2 API), pinned with
# --no-deps in everos_cloud_requirements.txt beside this file, so the SDK runs exactly as
# a client of Engram would install it. Environment: ENGRAM_EVEROS_CLOUD_VENV
# (default <repo>/.venv-everos-cloud).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec bash "$ROOT/scripts/tool_venv.sh" everos-cloud \
    "${ENGRAM_EVEROS_CLOUD_VENV:-$ROOT/.venv-everos-cloud}" 3.9 \
    '"$VENV/bin/python" -c "from everos_cloud import EverOS"' \
    -- --no-deps -r "$ROOT/tests/compat/everos_cloud_requirements.txt"
