"""EverOS's official Python SDK (PyPI everos==0.1.1, `from everos import EverOS`), unmodified,
against a real `engram serve`: its transparent multimodal add (sign, S3-style POST upload,
object keys in place of local paths), task status, search, get, group and agent memory,
groups, senders and settings (another tenant's ids are 404s), flush and delete.

The SDK lives in its own virtualenv (.venv-everos, made by
tests/compat/setup_everos_venv.sh), so the flow runs as a subprocess:
tests/compat/everos_client_flow.py. The files it uploads are made here, for real.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from tests import fixtures_docs as docs
from tests.compat_venvs import output, venv_python
from tests.conftest import ROOT, EngramServer

pytestmark = pytest.mark.compat

FLOW = ROOT / "tests" / "compat" / "everos_client_flow.py"
VENV = Path(os.environ.get("ENGRAM_EVEROS_VENV", ROOT / ".venv-everos"))
OK_LINE = "everos client flow ok"



@pytest.fixture(scope="module")
def everos_python() -> Path:
    return venv_python("setup_everos_venv.sh", VENV)


def test_official_everos_sdk_flow(engram_server: EngramServer, everos_python: Path,
                                  tmp_path: Path) -> None:
    user = f"everos-sdk-{uuid.uuid4().hex[:12]}"
    pdf = tmp_path / "falcon-report.pdf"
    pdf.write_bytes(docs.pdf_text_on_page_two())
    image = tmp_path / "memos.png"
    image.write_bytes(docs.text_png(["MemOS stores memories", "and finds them again"]))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith(("EVEROS_", "EVER_OS_"))}
    proc = subprocess.run(
        [str(everos_python), str(FLOW), "--base-url", engram_server.root_url,
         "--api-key", engram_server.api_key, "--other-key", engram_server.other_key,
         "--user", user, "--pdf", str(pdf), "--image", str(image)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    log = engram_server.log_path.read_text(errors="replace")[-3000:] \
        if engram_server.log_path and engram_server.log_path.exists() else "(no server log)"
    detail = f"{output(proc)}\n--- engram serve log (tail) ---\n{log}"
    assert proc.returncode == 0, f"EverOS SDK flow failed for user {user}\n{detail}"
    assert OK_LINE in proc.stdout.splitlines(), f"no '{OK_LINE}' line\n{detail}"
