"""The chat model's streamed answer (chat's `stream_text`) through the unmodified `openai`
client against the scripted chat-completions server speaking Server-Sent Events."""

from __future__ import annotations

import pytest
from tests.fakes.openai_chat import ScriptedChatServer, closed_port_url

from engram.adapters.openai_llm import OpenAIChatModel, llm_client
from engram.errors import LlmUnavailable, PermanentError
from engram.ports import ChatModel

KEY = "sk-llm-test-0123456789abcdef"
MESSAGES = [{"role": "system", "content": "You remember: the user chose 7 Days Inn."},
            {"role": "user", "content": "Which hotel did I choose?"}]
ANSWER = "You chose 7 Days Inn for your summer trip to Guangzhou."


@pytest.fixture
def server():
    with ScriptedChatServer() as fake:
        yield fake


def model(base_url: str, max_retries: int = 0) -> OpenAIChatModel:
    return OpenAIChatModel(llm_client(base_url, KEY, timeout=5, max_retries=max_retries),
                           "gpt-4o-mini")


def test_the_answer_streams_in_pieces_with_the_sampling_asked_for(server):
    server.reply(ANSWER)
    chat = model(server.base_url)
    assert isinstance(chat, ChatModel)
    pieces = list(chat.stream_text(MESSAGES, max_tokens=256, temperature=0.7, top_p=0.95))
    assert len(pieces) > 1 and "".join(pieces) == ANSWER
    (request,) = server.requests
    body = request["body"]
    assert body["stream"] is True and body["messages"] == MESSAGES
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (256, 0.7, 0.95)
    assert "response_format" not in body


def test_unset_sampling_is_left_to_the_endpoint(server):
    server.reply(ANSWER)
    list(model(server.base_url).stream_text(MESSAGES, max_tokens=16, temperature=None,
                                            top_p=None))
    body = server.requests[0]["body"]
    assert "temperature" not in body and "top_p" not in body


def test_an_endpoint_that_cannot_answer_is_retryable_and_a_refusal_permanent(server):
    server.fail(503)
    with pytest.raises(LlmUnavailable, match="HTTP 503"):
        list(model(server.base_url).stream_text(MESSAGES, max_tokens=16, temperature=None,
                                                top_p=None))
    server.fail(401)
    with pytest.raises(PermanentError, match="check the API key"):
        list(model(server.base_url).stream_text(MESSAGES, max_tokens=16, temperature=None,
                                                top_p=None))
    with pytest.raises(LlmUnavailable, match="could not be reached"):
        list(model(closed_port_url()).stream_text(MESSAGES, max_tokens=16, temperature=None,
                                                  top_p=None))
