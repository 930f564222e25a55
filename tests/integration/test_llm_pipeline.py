"""`engram serve` with an LLM configured, end to end over real HTTP: the server's `openai`
client talks to a scripted chat-completions server (no LLM can run here), which answers
extraction and conflict-resolution requests by their schema and the messages they carry.

The scripted conversation of the issue: "I like spicy food", later "but I don't really
like heavy oil, such as spicy hot pot" → the refined preference is current and the old
one is in its history; a tool-call conversation → both tool memory types; an invalid
reply repaired; an endpoint that is down → a failed task that retry/task completes."""

from __future__ import annotations

import json

import pytest
import requests
from tests.conftest import EngramServer, server_env
from tests.fakes.openai_chat import ScriptedChatServer

pytestmark = pytest.mark.slow

LLM_KEY = "sk-test-llm-key-0123456789"
SPICY = "The user likes spicy food"
NOT_OILY = "The user doesn't really like heavy oil, such as spicy hot pot or Mao Xue Wang"
MERGED = "The user likes spicy food but not heavy, oily dishes such as spicy hot pot"


def asked_messages(body: dict) -> list[dict]:
    """The messages an extraction request carries (one JSON object a line, in the first
    user message; a repair request appends the bad reply and the error after it)."""
    prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
    return [json.loads(line) for line in prompt.splitlines() if line.startswith("{")]


def memory(kind: str, key: str, value: str, sources: list[str], **extra) -> dict:
    return {"memory_type": kind, "memory_key": key, "memory_value": value, "tags": ["food"],
            "confidence": 0.9, "source_message_ids": sources, **extra}


def extraction(body: dict) -> dict:
    """What a careful model would extract from the messages of the test conversations."""
    out = []
    for m in asked_messages(body):
        text = m.get("text", "")
        if text == "I like spicy food":
            out.append(memory("PreferenceMemory", "Food preference", SPICY, [m["id"]],
                              preference_type="explicit", polarity="positive",
                              reasoning="The user said so."))
        elif text.startswith("But I don't really like heavy oil"):
            out.append(memory("PreferenceMemory", "Food preference", NOT_OILY, [m["id"]],
                              preference_type="explicit", polarity="negative",
                              reasoning="The user said so."))
        elif m.get("tool_calls"):
            call = m["tool_calls"][0]
            out += [memory("ToolSchemaMemory", "get_weather",
                           "get_weather returns the forecast for a city; parameters: city, "
                           "date", [m["id"]]),
                    memory("ToolTrajectoryMemory", "Weather in Hangzhou",
                           f"Called get_weather with {json.dumps(call['arguments'])}; it "
                           "returned light rain, 18°C; the task worked", [m["id"]],
                           tool_succeeded=True)]
    return {"memories": out}


def resolution(body: dict) -> dict:
    """Refine: the newer, narrower preference updates the older one (alias E1)."""
    prompt = body["messages"][-1]["content"]
    assert "E1" in prompt and "likes spicy food" in prompt, prompt
    return {"operations": [{"op": "update", "candidate": 1, "target": "E1", "value": MERGED,
                            "reason": "refines the earlier food preference"}]}


def respond(body: dict) -> dict:
    name = body["response_format"]["json_schema"]["name"]
    return {"ExtractionOutput": extraction, "ResolutionOutput": resolution}[name](body)


@pytest.fixture(scope="module")
def llm() -> ScriptedChatServer:
    with ScriptedChatServer(responder=respond) as server:
        yield server


@pytest.fixture(scope="module")
def served(llm, tmp_path_factory) -> EngramServer:
    server = EngramServer(
        data_dir=tmp_path_factory.mktemp("engram-llm") / "data",
        env=server_env(ENGRAM_LLM_MODEL="scripted-model", ENGRAM_LLM_BASE_URL=llm.base_url,
                       ENGRAM_LLM_API_KEY=LLM_KEY, ENGRAM_LLM_MAX_RETRIES="1",
                       ENGRAM_LLM_TIMEOUT_SECONDS="5"))
    server.start()
    yield server
    server.stop()


def add(server: EngramServer, user: str, messages: list[dict], **extra) -> dict:
    res = server.post("add/message", {"user_id": user, "conversation_id": "c1",
                                      "messages": messages, **extra})
    assert res.status_code == 200, res.text
    return server.wait_task(res.json()["data"]["task_id"])


def test_a_refined_preference_is_current_and_the_old_one_is_in_its_history(served, llm):
    first = add(served, "spicy", [
        {"role": "user", "content": "I like spicy food", "chat_time": "2025-09-12 08:00:00",
         "message_id": "m1"},
        {"role": "assistant", "content": "Got it, I remember, you like spicy food.",
         "chat_time": "2025-09-12 08:01:00", "message_id": "m2"}])
    assert first["status"] == "completed", first
    (added,) = first["memory_views"]["added"]
    # No existing memory near it: added without asking the model to resolve anything.
    assert first["usage"]["calls"] == 1 and first["usage"]["prompt_tokens"] > 0
    assert first["memory_views"]["decisions"][0]["action"] == "add"

    second = add(served, "spicy", [
        {"role": "user", "content": "But I don't really like heavy oil, such as spicy hot "
         "pot, Mao Xue Wang, etc.", "chat_time": "2025-09-25 12:00:00", "message_id": "m3"},
        {"role": "assistant", "content": "You prefer refreshing and spicy dishes.",
         "chat_time": "2025-09-25 12:01:00", "message_id": "m4"}])
    assert second["status"] == "completed", second
    views = second["memory_views"]
    assert views["updated"] == [added]
    # What the assistant said is kept beside it, added by the rules, never resolved by the model
    (said,) = views["added"]
    decision, kept = views["decisions"]
    assert kept == {"action": "add", "memory_id": said, "by": "rules",
                    "reason": "what the assistant said"}
    assert requests.get(f"{served.base_url}/get/memory/{said}", headers=served.headers(),
                        timeout=30).json()["data"]["memory_key"] == "Assistant's answer"
    assert decision == {"action": "update", "memory_id": added, "by": "llm",
                        "reason": "refines the earlier food preference"}
    assert second["usage"]["calls"] == 2  # one extraction, one resolution
    assert second["usage"]["completion_tokens"] > 0

    found = served.post("search/memory", {"user_id": "spicy", "query": "What food do I like?"}
                        ).json()["data"]
    assert [p["preference"] for p in found["preference_detail_list"]] == [MERGED]
    assert "spicy food but not heavy" in found["preference_note"]

    current = requests.get(f"{served.base_url}/get/memory/{added}", headers=served.headers(),
                           timeout=30).json()["data"]
    assert current["memory_value"] == MERGED and current["version"] == 2
    (old,) = current["history"]
    assert old["memory_value"] == SPICY
    assert old["change"] == "supersede" and old["reason"] == "refines the earlier food preference"
    assert old["valid_to"] == 1758801600000  # 2025-09-25 12:00:00 UTC, when it stopped holding

    extraction_request = next(r for r in llm.requests
                              if "I like spicy food" in json.dumps(r["body"]))
    assert extraction_request["headers"]["authorization"] == f"Bearer {LLM_KEY}"
    assert extraction_request["body"]["model"] == "scripted-model"


def test_tool_calls_become_schema_and_trajectory_memories(served):
    done = add(served, "agent-user", [
        {"role": "user", "content": "What's the weather in Hangzhou tomorrow?",
         "message_id": "t1"},
        {"role": "assistant", "content": None, "message_id": "t2", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {
                "name": "get_weather", "arguments": '{"city": "Hangzhou", "date": "tomorrow"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "light rain, 18°C",
         "message_id": "t3"},
        {"role": "assistant", "content": "Light rain and 18°C tomorrow.", "message_id": "t4"}])
    assert done["status"] == "completed", done
    found = served.post("search/memory", {
        "user_id": "agent-user", "query": "weather tool for a city", "include_tool_memory": True,
        "tool_memory_limit_number": 5}).json()["data"]
    kinds = {t["tool_type"] for t in found["tool_memory_detail_list"]}
    assert kinds == {"ToolSchemaMemory", "ToolTrajectoryMemory"}, found
    values = " ".join(t["tool_value"] for t in found["tool_memory_detail_list"])
    assert "Hangzhou" in values and "city" in values


def test_an_invalid_reply_is_repaired(served, llm):
    llm.reply("Sure! Here are the memories: spicy food.")  # not JSON
    done = add(served, "repair", [{"role": "user", "content": "I like spicy food",
                                   "message_id": "r1"}])
    assert done["status"] == "completed" and done["warnings"] == []
    assert done["usage"]["calls"] == 2
    repair = llm.requests[-1]["body"]["messages"]
    assert repair[-2] == {"role": "assistant",
                          "content": "Sure! Here are the memories: spicy food."}
    assert "does not follow the JSON schema" in repair[-1]["content"]
    found = served.post("search/memory", {"user_id": "repair", "query": "food"}).json()["data"]
    assert [p["preference"] for p in found["preference_detail_list"]] == [SPICY]


def test_invalid_twice_falls_back_to_rules_and_says_so(served, llm):
    llm.reply("not json")
    llm.reply('{"memories": [{"memory_type": "PreferenceMemory"}]}')  # still invalid
    done = add(served, "fallback", [{"role": "user", "content": "I love hiking in the Alps",
                                     "message_id": "f1"}])
    assert done["status"] == "completed"
    assert any("rule-based extraction used" in w for w in done["warnings"]), done["warnings"]
    assert done["usage"]["calls"] == 2
    found = served.post("search/memory", {"user_id": "fallback", "query": "hiking"}
                        ).json()["data"]
    everything = found["memory_detail_list"] + found["preference_detail_list"]
    assert any("hiking" in json.dumps(m) for m in everything), found


def test_endpoint_down_fails_the_task_and_retry_completes_it(served, llm):
    llm.fail(503, times=2)  # the first try and its one retry
    res = served.post("add/message", {"user_id": "down", "conversation_id": "c1",
                                      "messages": [{"role": "user",
                                                    "content": "I like spicy food"}]})
    task_id = res.json()["data"]["task_id"]
    failed = served.wait_task(task_id)
    assert failed["status"] == "failed"
    assert "extract" in failed["error"] and "HTTP 503" in failed["error"], failed["error"]
    assert LLM_KEY not in failed["error"]

    # The raw input was kept: once the endpoint answers again, the task can be retried.
    retried = served.post("retry/task", {"task_id": task_id}).json()
    assert retried["code"] == 0 and retried["data"]["attempt"] == 2
    done = served.wait_task(task_id)
    assert done["status"] == "completed" and done["error"] is None
    assert len(done["memory_views"]["added"]) == 1

    again = served.post("retry/task", {"task_id": task_id})
    assert again.status_code == 409 and "only a failed task" in again.json()["message"]
