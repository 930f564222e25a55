"""MemOS's official Python client (PyPI memoryos==2.0.33, `memos.api.client.MemOSClient`)
against a real `engram serve`.

The client lives in its own virtualenv (.venv-compat, made by tests/compat/setup_venv.sh:
memoryos drags in far too much to share the project's venv), so the flow runs as a
subprocess: tests/compat/memos_client_flow.py. The client validates every response with
its own pydantic models; the script checks the content on top of that.
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

FLOW = ROOT / "tests" / "compat" / "memos_client_flow.py"
VENV = Path(os.environ.get("ENGRAM_COMPAT_VENV", ROOT / ".venv-compat"))
OK_LINE = "memos client flow ok"



@pytest.fixture(scope="module")
def compat_python() -> Path:
    """.venv-compat's python, the venv made (or found up to date) first."""
    return venv_python("setup_venv.sh", VENV)


def test_official_memos_client_flow(engram_server: EngramServer, compat_python: Path) -> None:
    user = f"memos-client-{uuid.uuid4().hex[:12]}"
    # Nothing of the project's own Python setup, nor any MEMOS_* / Nacos setting, leaks in.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith(("MEMOS_", "NACOS_"))}
    proc = subprocess.run(
        [str(compat_python), str(FLOW), "--base-url", engram_server.base_url,
         "--api-key", engram_server.api_key, "--user", user],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    log = engram_server.log_path.read_text(errors="replace")[-3000:] \
        if engram_server.log_path and engram_server.log_path.exists() else "(no server log)"
    detail = f"{output(proc)}\n--- engram serve log (tail) ---\n{log}"
    assert proc.returncode == 0, f"MemOS client flow failed for user {user}\n{detail}"
    assert OK_LINE in proc.stdout.splitlines(), f"no '{OK_LINE}' line\n{detail}"

