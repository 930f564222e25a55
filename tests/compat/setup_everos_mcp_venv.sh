#!/usr/bin/env bash
# .venv-everos-mcp: EverOS's MCP server (PyPI `everos-mcp`, the `everos-mcp` command) and
# the `mcp` client package, pinned with --no-deps in everos_mcp_requirements.txt beside
# this file. Environment: ENGRAM_EVEROS_MCP_VENV (default <repo>/.venv-everos-mcp).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec bash "$ROOT/scripts/tool_venv.sh" everos-mcp \
    "${ENGRAM_EVEROS_MCP_VENV:-$ROOT/.venv-everos-mcp}" 3.10 \
    '"$VENV/bin/everos-mcp" --help >/dev/null && "$VENV/bin/python" -c "import mcp.client.stdio"' \
    -- --no-deps -r "$ROOT/tests/compat/everos_mcp_requirements.txt"
