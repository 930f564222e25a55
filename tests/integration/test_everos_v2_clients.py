"""EverOS's v2 clients, unmodified, against a real `engram serve`: the cloud SDK (PyPI
everos-cloud==1.0.0) over every /api/v2 route, and the MCP server (PyPI everos-mcp==0.1.1)
started on stdio as its README says, pointed at Engram, driven by an MCP client.

Each lives in its own virtualenv (.venv-everos-cloud, .venv-everos-mcp, made from PyPI by
tests/compat/setup_everos_cloud_venv.sh and setup_everos_mcp_venv.sh; a failed setup
fails the test), so the flows run as subprocesses: tests/compat/everos_cloud_flow.py and
everos_mcp_flow.py.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from tests.compat_venvs import output, venv_python
from tests.conftest import ROOT, EngramServer

pytestmark = pytest.mark.compat

COMPAT = ROOT / "tests" / "compat"
CLOUD_VENV = Path(os.environ.get("ENGRAM_EVEROS_CLOUD_VENV", ROOT / ".venv-everos-cloud"))
MCP_VENV = Path(os.environ.get("ENGRAM_EVEROS_MCP_VENV", ROOT / ".venv-everos-mcp"))


@pytest.fixture(scope="module")
def cloud_python() -> Path:
    return venv_python("setup_everos_cloud_venv.sh", CLOUD_VENV)


@pytest.fixture(scope="module")
def mcp_python() -> Path:
    return venv_python("setup_everos_mcp_venv.sh", MCP_VENV)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith(("EVEROS_", "EVER_OS_"))}


def run_flow(server: EngramServer, argv: list[str], cwd: Path, ok_line: str) -> None:
    proc = subprocess.run(argv, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=600)
    log = server.log_path.read_text(errors="replace")[-3000:] \
        if server.log_path and server.log_path.exists() else "(no server log)"
    detail = f"{output(proc)}\n--- engram serve log (tail) ---\n{log}"
    assert proc.returncode == 0, f"flow failed\n{detail}"
    assert ok_line in proc.stdout.splitlines(), f"no '{ok_line}' line\n{detail}"


def test_everos_cloud_sdk_drives_every_v2_route(engram_server: EngramServer,
                                                cloud_python: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Dana's notes: the locker combination at the music school is 2468.\n")
    run_flow(engram_server, [
        str(cloud_python), str(COMPAT / "everos_cloud_flow.py"),
        "--base-url", engram_server.root_url, "--api-key", engram_server.api_key,
        "--other-key", engram_server.other_key, "--user", f"cloud-{uuid.uuid4().hex[:12]}",
        "--notes", str(notes)], tmp_path, "everos cloud flow ok")


def test_everos_mcp_server_adds_and_finds_a_memory(engram_server: EngramServer,
                                                   mcp_python: Path, tmp_path: Path) -> None:
    run_flow(engram_server, [
        str(mcp_python), str(COMPAT / "everos_mcp_flow.py"),
        "--base-url", engram_server.root_url, "--api-key", engram_server.api_key,
        "--user", f"mcp-{uuid.uuid4().hex[:12]}",
        "--server", str(MCP_VENV / "bin" / "everos-mcp")], tmp_path, "everos mcp flow ok")
