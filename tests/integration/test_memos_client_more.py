"""The rest of MemOS's official client (memoryos==2.0.33) against a real `engram serve`:
profiles (bind_profile_template, edit_profile, delete_profile), extract_memory, rerank
and chat, whole and streamed, through tests/compat/memos_profile_flow.py in the client's
own virtualenv (as tests/integration/test_memos_client.py runs the first flow).

The server's LLM is the scripted chat-completions endpoint (tests/fakes/openai_chat.py)
over real HTTP: it extracts as a careful model would (what Engram's rules find, in the
LLM's reply format), fills a profile field the rules cannot read, and answers chat from
the memories in the prompt. Also here, over
plain HTTP: chat's events arrive as the model writes them, and chat on a server without
an LLM is a 400 naming the setting."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid

import pytest
import requests
from tests.compat_venvs import output
from tests.conftest import ROOT, EngramServer, server_env
from tests.fakes.openai_chat import ScriptedChatServer
from tests.integration.test_memos_client import compat_python  # noqa: F401 - fixture

from engram.extraction.rules.extractor import RuleBasedExtractor
from engram.models.domain import MessageRecord, Role

pytestmark = pytest.mark.compat

FLOW = ROOT / "tests" / "compat" / "memos_profile_flow.py"
OK_LINE = "memos profile flow ok"
LLM_KEY = "sk-test-llm-key-0123456789"


def extraction(body: dict) -> dict:
    """What Engram's rules find in the asked messages, in the LLM's reply format."""
    prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
    asked = [json.loads(line) for line in prompt.splitlines() if line.startswith("{")]
    out = []
    for m in asked:
        if m.get("role") != "user" or not m.get("text"):
            continue
        record = MessageRecord(tenant_id="t", user_id="u", conversation_id="c",
                               message_id=m["id"], seq=0, role=Role.user, text=m["text"])
        for c in RuleBasedExtractor().extract([record]).candidates:
            if c.memory_type.value == "WorkingMemory":
                continue
            out.append({"memory_type": c.memory_type.value, "memory_key": c.memory_key,
                        "memory_value": c.memory_value, "tags": c.tags[:5],
                        "confidence": 0.9, "source_message_ids": [m["id"]],
                        "preference_type": c.preference_type, "polarity": c.polarity,
                        "reasoning": c.reasoning})
    return {"memories": out}


def answer(body: dict) -> str:
    """Chat: an answer from the memories the system prompt lists."""
    system = body["messages"][0]["content"]
    remembered = re.findall(r"^- (.+)$", system, re.MULTILINE)
    return "From what I remember: " + " ".join(remembered or ["nothing yet."])


def profile_fill(body: dict) -> dict:
    """Profile fields a careful model fills: a field named like a sport, from a memory
    naming one (rules cannot read a field named "Favourite sport")."""
    prompt = body["messages"][-1]["content"]
    asked = [json.loads(line) for line in prompt.splitlines() if line.startswith("{")]
    fields = [a["path"] for a in asked if "path" in a]
    memories = [a for a in asked if "memory" in a]
    out = []
    for path in fields:
        if "sport" in path[-1].lower():
            for m in memories:
                if "badminton" in m["memory"]:
                    out.append({"path": path, "value": "badminton", "memory_ids": [m["id"]]})
                    break
    return {"fields": out}


def respond(body: dict) -> str | dict:
    form = body.get("response_format")
    if form is None:
        return answer(body)
    name = form.get("json_schema", {}).get("name")
    if name == "ExtractionOutput":
        return extraction(body)
    if name == "ProfileFill":
        return profile_fill(body)
    return {"operations": []}  # resolution: every candidate left out is added


@pytest.fixture(scope="module")
def llm() -> ScriptedChatServer:
    with ScriptedChatServer(responder=respond) as server:
        yield server


@pytest.fixture(scope="module")
def served(llm, tmp_path_factory) -> EngramServer:
    server = EngramServer(
        data_dir=tmp_path_factory.mktemp("engram-memos-more") / "data",
        env=server_env(ENGRAM_LLM_MODEL="scripted-model", ENGRAM_LLM_BASE_URL=llm.base_url,
                       ENGRAM_LLM_API_KEY=LLM_KEY, ENGRAM_LLM_MAX_RETRIES="1",
                       ENGRAM_LLM_TIMEOUT_SECONDS="10"))
    server.start()
    yield server
    server.stop()


def test_official_memos_client_profiles_extract_rerank_and_chat(served, compat_python):  # noqa: F811
    user = f"memos-more-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith(("MEMOS_", "NACOS_"))}
    proc = subprocess.run(
        [str(compat_python), str(FLOW), "--base-url", served.base_url,
         "--api-key", served.api_key, "--other-api-key", served.other_key, "--user", user],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = served.log_path.read_text(errors="replace")[-3000:] \
        if served.log_path and served.log_path.exists() else "(no server log)"
    detail = f"{output(proc)}\n--- engram serve log (tail) ---\n{log}"
    assert proc.returncode == 0, f"MemOS client flow failed for user {user}\n{detail}"
    assert OK_LINE in proc.stdout.splitlines(), f"no '{OK_LINE}' line\n{detail}"


def test_chat_events_arrive_as_the_model_writes_them(served, llm):
    llm.stream_delay = 0.4  # between the model's chunks
    try:
        started = time.monotonic()
        with requests.post(f"{served.base_url}/chat", headers=served.headers(), stream=True,
                           timeout=30, json={"user_id": "streamer", "conversation_id": "c",
                                             "query": "hi", "stream": True,
                                             "add_message_on_answer": False}) as response:
            assert response.status_code == 200, response.text
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert "Content-Length" not in response.headers
            arrivals = []
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    arrivals.append((time.monotonic() - started, json.loads(line[5:])))
    finally:
        llm.stream_delay = 0.0
    kinds = [event["type"] for _, event in arrivals]
    assert kinds[-1] == "end" and kinds.count("text") >= 2, arrivals
    first, last = arrivals[0][0], arrivals[-1][0]
    assert last - first >= 0.3, f"every event came at once: {arrivals}"


def test_chat_without_an_llm_is_a_400_naming_the_setting(engram_server):
    response = engram_server.post("chat", {"user_id": "u", "conversation_id": "c",
                                           "query": "hi", "stream": True})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400 and "ENGRAM_LLM_MODEL" in body["message"]
    response = engram_server.post("extract/memory", {"messages": [
        {"role": "user", "content": "My name is Alice Chen."}]})
    assert response.status_code == 200 and response.json()["data"]["extractor"] == "rule-based"
