"""extract/memory, rerank and chat through the real resolver and services (SQLite in a
temp dir, the hashing embedder): what each answers, what it stores (extract and rerank:
nothing), its limits, and chat with and without a chat model."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

from engram.api.app import create_app
from engram.api.streaming import stream_slot
from engram.errors import LlmUnavailable
from engram.local.server import LambdaContext, proxy_event


class FakeChatModel:
    """Answers from a script, piece by piece; records the messages it was given."""

    model = "fake-chat"

    def __init__(self, pieces: Sequence[str] = ("The user ", "chose ", "7 Days Inn.")):
        self.pieces = list(pieces)
        self.calls: list[dict] = []
        self.fail_at: int | None = None  # raise LlmUnavailable before this piece

    def stream_text(self, messages, *, max_tokens, temperature, top_p) -> Iterator[str]:
        self.calls.append({"messages": list(messages), "max_tokens": max_tokens,
                           "temperature": temperature, "top_p": top_p})
        for i, piece in enumerate(self.pieces):
            if self.fail_at == i:
                raise LlmUnavailable("the LLM endpoint timed out (5 s)")
            yield piece


@pytest.fixture
def runtime(local_runtime):
    return local_runtime


@pytest.fixture
def app(runtime):
    return create_app(runtime.services)


@pytest.fixture
def raw(app):
    def raw(route: str, body: dict, tenant: str = "tenant-a") -> dict:
        event = proxy_event("POST", f"/v1/{route}", {"Content-Type": "application/json"},
                            json.dumps(body), tenant, "127.0.0.1")
        return app.resolve(event, LambdaContext())
    return raw


@pytest.fixture
def call(raw):
    def call(route: str, body: dict, tenant: str = "tenant-a") -> tuple[int, dict]:
        response = raw(route, body, tenant)
        return response["statusCode"], json.loads(response["body"])
    return call


@pytest.fixture
def model(runtime) -> FakeChatModel:
    fake = FakeChatModel()
    runtime.services.chat.model = fake
    return fake


def counts(runtime) -> tuple[int, int, int]:
    read = runtime.store._read
    return (read("SELECT COUNT(*) FROM tasks", ())[0][0],
            read("SELECT COUNT(*) FROM messages", ())[0][0],
            read("SELECT COUNT(*) FROM memories", ())[0][0])


# --- extract/memory --------------------------------------------------------------------

def test_extract_returns_candidates_and_stores_nothing(call, runtime):
    status, body = call("extract/memory", {"messages": [
        {"role": "user", "content": "My name is Alice Chen and I live in Berlin."},
        {"role": "assistant", "content": "Nice to meet you, Alice."},
        {"role": "user", "content": "I prefer short answers."}]})
    assert status == 200 and body["code"] == 0, body
    data = body["data"]
    assert data["success"] is True and data["extractor"] == "rule-based"
    values = " ".join(m["memory_value"] for m in data["memory_detail_list"])
    assert "Alice Chen" in values and "Berlin" in values
    assert all(m["memory_type"] != "PreferenceMemory" for m in data["memory_detail_list"])
    (pref,) = data["preference_detail_list"]
    assert "short answers" in pref["preference"]
    assert pref["preference_type"] == "explicit_preference" and pref["message_indexes"] == [2]
    assert counts(runtime) == (0, 0, 0)


def test_extract_types_narrow_the_answer(call):
    data = call("extract/memory", {"extraction_types": ["preference"], "messages": [
        {"role": "user", "content": "I live in Berlin and I love hiking."}]})[1]["data"]
    assert data["memory_detail_list"] == [] and data["preference_detail_list"]


@pytest.mark.parametrize("body, named", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": "x"}], "extraction_types": ["skills"]},
     "extraction_types.0"),
    ({"messages": [{"role": "user", "content": "x" * 60_000}] * 2}, "limit for extract"),
])
def test_bad_extract_requests_are_422_naming_the_field(call, body, named):
    status, answer = call("extract/memory", body)
    assert status == 422 and named in answer["message"], answer


# --- rerank ------------------------------------------------------------------------------

DOCUMENTS = ["The user likes badminton", "The user is a backend developer in Hangzhou",
             "The user prefers short replies", "The user has a business trip to Beijing",
             "The user plays badminton every Sunday with friends"]


def test_rerank_orders_the_documents_for_the_query(call, runtime):
    status, body = call("rerank", {"query": "which sport does the user play, badminton?",
                                   "documents": DOCUMENTS, "model": "memos-reranker-0.6b"})
    assert status == 200 and body["code"] == 0, body
    results = body["results"]
    assert sorted(r["index"] for r in results) == list(range(len(DOCUMENTS)))
    assert {results[0]["index"], results[1]["index"]} == {0, 4}
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert all(r["document"]["text"] == DOCUMENTS[r["index"]] for r in results)
    assert body["model"] == "hashing-test-embedder" and body["usage"]["total_tokens"] > 0
    assert counts(runtime) == (0, 0, 0)


def test_rerank_top_n_keeps_the_best(call):
    body = call("rerank", {"query": "badminton", "documents": DOCUMENTS, "top_n": 2})[1]
    assert [r["index"] for r in body["results"]] in ([0, 4], [4, 0])


@pytest.mark.parametrize("body, named", [
    ({"query": "q", "documents": []}, "documents"),
    ({"query": "q", "documents": ["d"] * 101}, "documents"),
    ({"query": "q", "documents": ["d", "x" * 8_001]}, "documents.1"),
    ({"query": "q", "documents": ["x" * 8_000] * 5}, "the limit is 32000"),
    ({"query": "q", "documents": ["d"], "top_n": 0}, "top_n"),
    ({"query": "", "documents": ["d"]}, "query"),
    ({"query": "q", "documents": [3]}, "documents.0"),
])
def test_rerank_limits_are_422_naming_the_limit(call, body, named):
    status, answer = call("rerank", body)
    assert status == 422 and named in answer["message"], answer


# --- chat --------------------------------------------------------------------------------

def add_sync(call, user: str, text: str) -> None:
    status, body = call("add/message", {"user_id": user, "conversation_id": "c1",
                                        "async_mode": False,
                                        "messages": [{"role": "user", "content": text}]})
    assert status == 200 and body["data"]["status"] == "completed", body


def test_chat_without_a_model_is_400_naming_the_setting(call, runtime):
    assert runtime.services.chat.model is None
    status, body = call("chat", {"user_id": "u", "conversation_id": "c", "query": "hi"})
    assert status == 400 and "ENGRAM_LLM_MODEL" in body["message"], body
    status, body = call("chat", {"user_id": "u", "conversation_id": "c", "query": "hi",
                                 "stream": True})
    assert status == 400 and "ENGRAM_LLM_MODEL" in body["message"], body
    assert counts(runtime) == (0, 0, 0)


def test_chat_answers_with_the_users_memories_and_adds_the_exchange(call, runtime, model):
    add_sync(call, "ann", "I choose 7 Days Inn for the Guangzhou trip")
    add_sync(call, "bea", "I choose Hilton for the Guangzhou trip")
    status, body = call("chat", {"user_id": "ann", "conversation_id": "c1",
                                 "query": "Which hotel did I choose?", "async_mode": False,
                                 "max_tokens": 300, "temperature": 0.2, "top_p": 0.9})
    assert status == 200 and body["data"]["response"] == "The user chose 7 Days Inn.", body
    (sent,) = model.calls
    system = sent["messages"][0]["content"]
    assert "7 Days Inn" in system and "Hilton" not in system  # only ann's memories
    assert sent["messages"][-1] == {"role": "user", "content": "Which hotel did I choose?"}
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (300, 0.2, 0.9)
    task = body["data"]["task_id"]
    messages = call("get/message", {"user_id": "ann", "conversation_id": "c1"})[1]["data"]
    assert [(m["role"], m["content"]) for m in messages["message_detail_list"][-2:]] == [
        ("user", "Which hotel did I choose?"), ("assistant", "The user chose 7 Days Inn.")]
    assert call("get/status", {"task_id": task})[1]["data"]["status"] == "completed"


def test_chat_without_add_message_on_answer_stores_nothing(call, runtime, model):
    before = counts(runtime)
    body = call("chat", {"user_id": "cid", "conversation_id": "c", "query": "hello",
                         "add_message_on_answer": False})[1]
    assert body["data"]["task_id"] is None and counts(runtime) == before


def events(text: str) -> list[dict]:
    return [json.loads(line.removeprefix("data: ")) for line in text.split("\n\n") if line]


def test_chat_stream_without_a_streaming_server_sends_every_event_at_once(raw, model):
    response = raw("chat", {"user_id": "dan", "conversation_id": "c", "query": "hi",
                            "stream": True, "add_message_on_answer": False})
    assert response["statusCode"] == 200
    assert response["multiValueHeaders"]["Content-Type"] == ["text/event-stream"]
    assert events(response["body"]) == [{"type": "text", "data": "The user "},
                                        {"type": "text", "data": "chose "},
                                        {"type": "text", "data": "7 Days Inn."},
                                        {"type": "end"}]


def test_chat_stream_with_a_streaming_server_is_sent_piece_by_piece(raw, model):
    with stream_slot() as slot:
        response = raw("chat", {"user_id": "eli", "conversation_id": "c", "query": "hi",
                                "stream": True, "async_mode": False})
    assert response["statusCode"] == 200 and response["body"] == ""
    assert len(model.pieces) == 3 and slot.chunks is not None
    first = next(slot.chunks)  # the server pulls as it sends
    assert events(first) == [{"type": "text", "data": "The user "}]
    rest = events("".join(slot.chunks))
    assert [e["type"] for e in rest] == ["text", "text", "memory", "end"]
    assert rest[2]["data"]["task_id"]


def test_chat_model_down_is_503_before_and_an_error_event_after_the_first_piece(
        call, raw, model):
    model.fail_at = 0
    status, body = call("chat", {"user_id": "fay", "conversation_id": "c", "query": "hi",
                                 "stream": True})
    assert status == 503 and "timed out" in body["message"], body
    model.fail_at = 1
    response = raw("chat", {"user_id": "fay", "conversation_id": "c", "query": "hi",
                            "stream": True})
    assert events(response["body"]) == [
        {"type": "text", "data": "The user "},
        {"type": "error", "data": "the LLM did not answer: the LLM endpoint timed out (5 s)"}]


@pytest.mark.parametrize("body, named", [
    ({"conversation_id": "c", "query": "q"}, "user_id"),
    ({"user_id": "u", "conversation_id": "c", "query": ""}, "query"),
    ({"user_id": "u", "conversation_id": "c", "query": "q", "internet_search": True},
     "internet_search"),
    ({"user_id": "u", "conversation_id": "c", "query": "q", "max_tokens": 0}, "max_tokens"),
    ({"user_id": "u", "conversation_id": "c", "query": "q", "temperature": 3}, "temperature"),
])
def test_bad_chat_requests_are_422_naming_the_field(call, model, body, named):
    status, answer = call("chat", body)
    assert status == 422 and named in answer["message"], answer
    assert model.calls == []
