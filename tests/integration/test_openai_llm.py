"""The OpenAI-compatible chat model through the unmodified `openai` client against a local
server speaking the chat-completions wire protocol: what goes on the wire, the client's
own retries, and how what still fails is classified."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel
from tests.fakes.openai_chat import ScriptedChatServer, closed_port_url

from engram.adapters.openai_llm import OpenAIChatModel, llm_client
from engram.errors import LlmUnavailable, PermanentError
from engram.extraction.structured import ask
from engram.models.domain import TokenUsage

KEY = "sk-llm-test-0123456789abcdef"
SCHEMA = {"type": "object", "properties": {"facts": {"type": "array", "items": {
    "type": "string"}}}, "required": ["facts"]}
MESSAGES = [{"role": "system", "content": "Extract facts about the user."},
            {"role": "user", "content": "I moved to Lisbon last spring."}]


@pytest.fixture
def server():
    with ScriptedChatServer() as fake:
        yield fake


def chat_model(base_url: str, timeout: float = 5, max_retries: int = 2,
               json_mode: str = "json_schema") -> OpenAIChatModel:
    return OpenAIChatModel(llm_client(base_url, KEY, timeout=timeout, max_retries=max_retries),
                           "gpt-4o-mini", json_mode=json_mode)


def test_the_schema_goes_as_response_format_and_the_reply_comes_back_verbatim(server):
    server.reply('{"facts": ["lives in Lisbon"]}')
    reply = chat_model(server.base_url).complete_json(MESSAGES, "Facts", SCHEMA)
    assert reply.text == '{"facts": ["lives in Lisbon"]}'
    # words of all messages in, words of the reply out
    assert reply.usage == TokenUsage(prompt_tokens=11, completion_tokens=4, calls=1)
    (request,) = server.requests
    body = request["body"]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0
    assert body["messages"] == MESSAGES and body["max_tokens"] == 4096
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "Facts", "schema": SCHEMA, "strict": False}}


@pytest.mark.parametrize("status", [429, 503])
def test_the_client_retries_throttling_and_server_errors(server, status):
    server.fail(status)
    server.reply({"facts": []})
    reply = chat_model(server.base_url).complete_json(MESSAGES, "Facts", SCHEMA)
    assert json.loads(reply.text) == {"facts": []} and reply.usage.calls == 1
    assert len(server.requests) == 2


def test_throttling_past_the_retries_is_llm_unavailable(server):
    server.fail(429, times=3)
    with pytest.raises(LlmUnavailable, match="HTTP 429"):
        chat_model(server.base_url, max_retries=2).complete_json(MESSAGES, "Facts", SCHEMA)
    assert len(server.requests) == 3


def test_a_stalled_endpoint_times_out_as_llm_unavailable(server):
    server.stall(5)
    with pytest.raises(LlmUnavailable, match=r"timed out \(0\.3 s\)"):
        chat_model(server.base_url, timeout=0.3, max_retries=0).complete_json(
            MESSAGES, "Facts", SCHEMA)


def test_an_endpoint_that_is_down_is_llm_unavailable():
    with pytest.raises(LlmUnavailable, match="could not be reached"):
        chat_model(closed_port_url(), timeout=0.5, max_retries=0).complete_json(
            MESSAGES, "Facts", SCHEMA)


def test_a_refused_key_is_permanent_and_the_key_is_not_repeated(server):
    server.fail(401)
    with pytest.raises(PermanentError, match="HTTP 401") as caught:
        chat_model(server.base_url).complete_json(MESSAGES, "Facts", SCHEMA)
    # The fake, like OpenAI, quotes part of the key in its 401 message.
    assert KEY[-4:] in server.requests[0]["headers"]["authorization"]
    assert KEY not in str(caught.value) and KEY[-4:] not in str(caught.value)
    assert MESSAGES[1]["content"] not in str(caught.value)
    assert len(server.requests) == 1  # not retried


def test_json_object_mode_puts_the_schema_in_the_system_message(server):
    server.reply({"facts": ["lives in Lisbon"]})
    messages = [dict(m) for m in MESSAGES]
    chat_model(server.base_url, json_mode="json_object").complete_json(
        messages, "Facts", SCHEMA)
    body = server.requests[0]["body"]
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["content"].startswith(MESSAGES[0]["content"])
    assert f"following this JSON schema: {json.dumps(SCHEMA)}" in system["content"]
    assert user == MESSAGES[1] and messages == MESSAGES  # the caller's list is untouched


@pytest.mark.parametrize("schema_name, schema, refused", [
    ("Facts", None, "schema must be a JSON schema object"),  # json_schema without a schema
    ("not a name!", SCHEMA, "name must match"),
])
def test_the_fake_refuses_what_the_real_api_refuses(server, schema_name, schema, refused):
    server.reply({"facts": []})  # never served: the request is refused first
    with pytest.raises(PermanentError, match="HTTP 400") as caught:
        chat_model(server.base_url).complete_json(MESSAGES, schema_name, schema)
    assert refused in str(caught.value)
    assert len(server.requests) == 1  # a 400 is not retried


def test_an_unscripted_call_fails_loudly(server):
    with pytest.raises(LlmUnavailable, match="HTTP 500"):
        chat_model(server.base_url, max_retries=0).complete_json(MESSAGES, "Facts", SCHEMA)


class Facts(BaseModel):
    facts: list[str]


def test_structured_ask_repairs_through_the_wire():
    # The responder answers by looking at the prompt: invalid first, corrected on repair.
    def responder(body: dict) -> dict:
        last = body["messages"][-1]["content"]
        return {"facts": ["lives in Lisbon"]} if "corrected" in last else {"facts": "Lisbon"}

    with ScriptedChatServer(responder) as fake:
        facts, usage = ask(chat_model(fake.base_url), "Extract facts.", "I live in Lisbon.",
                           Facts)
    assert facts == Facts(facts=["lives in Lisbon"]) and usage.calls == 2
    assert fake.requests[0]["body"]["response_format"]["json_schema"]["schema"] == \
        Facts.model_json_schema()
