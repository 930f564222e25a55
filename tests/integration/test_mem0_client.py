"""mem0's platform client (PyPI mem0ai==2.2.1, `MemoryClient`), unmodified, against a real
`engram serve`: every method Engram serves (tests/compat/mem0_client_flow.py, run in
the client's own virtualenv .venv-mem0 made by tests/compat/setup_mem0_venv.sh)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from tests.compat_venvs import output, venv_python
from tests.conftest import ROOT, EngramServer

pytestmark = pytest.mark.compat

FLOW = ROOT / "tests" / "compat" / "mem0_client_flow.py"
VENV = Path(os.environ.get("ENGRAM_MEM0_VENV", ROOT / ".venv-mem0"))
OK_LINE = "mem0 client flow ok"



@pytest.fixture(scope="module")
def mem0_python() -> Path:
    return venv_python("setup_mem0_venv.sh", VENV)


def test_official_mem0_client_flow(engram_server: EngramServer, mem0_python: Path,
                                   tmp_path: Path) -> None:
    user = f"mem0-client-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith("MEM0_")}
    env["MEM0_TELEMETRY"] = "False"
    env["HOME"] = str(tmp_path)  # the client writes ~/.mem0/config.json
    proc = subprocess.run(
        [str(mem0_python), str(FLOW), "--host", engram_server.root_url,
         "--api-key", engram_server.api_key, "--other-key", engram_server.other_key,
         "--user", user, "--hook-url", "https://hooks.example.com/engram"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    log = engram_server.log_path.read_text(errors="replace")[-3000:] \
        if engram_server.log_path and engram_server.log_path.exists() else "(no server log)"
    detail = f"{output(proc)}\n--- engram serve log (tail) ---\n{log}"
    assert proc.returncode == 0, f"mem0 client flow failed for user {user}\n{detail}"
    assert OK_LINE in proc.stdout.splitlines(), f"no '{OK_LINE}' line\n{detail}"


def test_mem0_routes_need_the_api_key(engram_server: EngramServer) -> None:
    import requests

    for method, path in (("GET", "/v1/ping/"), ("POST", "/v3/memories/search/"),
                         ("DELETE", "/v2/entities/user/alice/"),
                         ("GET", "/api/v1/webhooks/projects/tenant-a/")):
        for headers in ({}, {"Authorization": "Token not-a-key"}):
            answer = requests.request(method, f"{engram_server.root_url}{path}", json={},
                                      headers=headers, timeout=30)
            assert answer.status_code == 401, (method, path, answer.text)
    # mem0's client reads `detail`
    answer = requests.post(f"{engram_server.root_url}/v3/memories/search/",
                           json={"query": "x", "filters": {"colour": "red", "user_id": "u"}},
                           headers=engram_server.headers(), timeout=30)
    assert answer.status_code == 422 and "colour" in answer.json()["detail"]
