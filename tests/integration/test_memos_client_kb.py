"""MemOS's official Python client (memoryos, unmodified, in .venv-compat) through every
knowledge-base method, public memory and delete by agent_id / filter against a real
`engram serve`, uploading real files: a two-page PDF and a DOCX as a multipart form, a
TXT as base64 JSON (tests/compat/memos_kb_flow.py)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from tests import fixtures_docs as docs
from tests.compat_venvs import output
from tests.conftest import ROOT, EngramServer
from tests.integration.test_memos_client import compat_python  # noqa: F401 - fixture

pytestmark = pytest.mark.compat

FLOW = ROOT / "tests" / "compat" / "memos_kb_flow.py"
OK_LINE = "memos kb flow ok"


def make_files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.pdf").write_bytes(docs.pdf([
        docs.text_page(["Refund policy"]),
        docs.text_page(["Refunds over 500 euros need the approval of a regional manager."])]))
    (folder / "travel.docx").write_bytes(docs.docx_document())
    (folder / "notes.txt").write_text("Parking passes (qzparking) renew every March.\n")
    return folder


def test_official_memos_client_knowledge_bases(engram_server: EngramServer,
                                               compat_python: Path,  # noqa: F811
                                               tmp_path: Path) -> None:
    user = f"memos-kb-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith(("MEMOS_", "NACOS_"))}
    proc = subprocess.run(
        [str(compat_python), str(FLOW), "--base-url", engram_server.base_url,
         "--api-key", engram_server.api_key, "--other-api-key", engram_server.other_key,
         "--user", user, "--files", str(make_files(tmp_path / "files"))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = engram_server.log_path.read_text(errors="replace")[-3000:] \
        if engram_server.log_path and engram_server.log_path.exists() else "(no server log)"
    detail = f"{output(proc)}\n--- engram serve log (tail) ---\n{log}"
    assert proc.returncode == 0, f"MemOS knowledge-base flow failed for {user}\n{detail}"
    assert OK_LINE in proc.stdout.splitlines(), f"no '{OK_LINE}' line\n{detail}"
