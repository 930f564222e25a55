"""The EverOS routes (/api/v1/...) through the real resolver and services, SQLite in a temp
dir and the hashing embedder. The SDK itself is driven in tests/integration/
test_everos_client.py, uploads and files in test_multimodal.py."""

from __future__ import annotations

import json

import pytest
from tests.fakes.embedder import HashingEmbedder

from engram.api.app import create_app
from engram.config import Settings
from engram.local.runtime import build_local_runtime
from engram.local.server import LambdaContext, proxy_event

T0 = 1_766_041_646_311


@pytest.fixture
def call(tmp_path):
    runtime = build_local_runtime(Settings(data_dir=tmp_path, api_keys={"k": "tenant-a"}),
                                  embedder=HashingEmbedder())
    app = create_app(runtime.services)

    def call(route: str, body=None, tenant: str = "tenant-a", method: str = "POST"):
        raw = body if isinstance(body, str) or body is None else json.dumps(body)
        event = proxy_event(method, f"/api/v1/{route}", {"Content-Type": "application/json"},
                            raw, tenant, "127.0.0.1")
        response = app.resolve(event, LambdaContext())
        return response["statusCode"], json.loads(response["body"])

    yield call
    runtime.close()


def add(call, user: str, *texts: str, route: str = "memories", **extra) -> dict:
    status, body = call(route, {"user_id": user, "async_mode": False, "messages": [
        {"role": "user", "timestamp": T0 + i, "content": t} for i, t in enumerate(texts)],
        **extra})
    assert status == 200 and body["data"]["status"] == "extracted", body
    return body["data"]


def test_sync_add_then_search_get_and_profile(call):
    add(call, "u1", "I live in Lisbon.", "I love strong coffee.", session_id="s1")
    status, body = call("memories/search", {
        "filters": {"user_id": "u1"}, "query": "Where does the user live?",
        "memory_types": ["episodic_memory", "profile", "raw_message"]})
    assert status == 200, body
    data = body["data"]
    assert data["query"] == {"method": "hybrid", "text": "Where does the user live?",
                             "filters_applied": {"user_id": "u1"}}
    episode = next(e for e in data["episodes"] if "Lisbon" in e["episode"])
    assert episode["user_id"] == "u1" and episode["session_id"] == "s1"
    assert episode["timestamp"].startswith("2025-12-18T07:07") and episode["score"] > 0
    assert episode["atomic_facts"][0]["parent_episode_id"] == episode["id"]
    assert any("coffee" in p["profile_data"]["explicit_info"][0]["value"]
               for p in data["profiles"])
    assert data["raw_messages"] == []  # a sync add leaves no unprocessed turn
    status, body = call("memories/get", {"filters": {"user_id": "u1"}, "memory_type": "profile"})
    assert status == 200 and body["data"]["count"] == 1 and body["data"]["episodes"] is None


def test_async_turns_are_raw_messages_until_processed(call):
    status, body = call("memories", {"user_id": "u2", "messages": [
        {"role": "user", "timestamp": T0, "content": "My dog is called Rex"}]})
    assert status == 202 and body["data"]["status"] == "accumulated", body
    # processed by the runtime's workers; the fast path made the turn searchable at once
    status, body = call("memories/search", {"filters": {"user_id": "u2"}, "query": "dog Rex",
                                            "memory_types": ["raw_message", "episodic_memory"]})
    data = body["data"]
    assert any("Rex" in r["content_items"][0]["text"] for r in data["raw_messages"]) or \
        any("Rex" in e["episode"] for e in data["episodes"])


def test_timestamp_and_session_filters(call):
    add(call, "u3", "I visited Kyoto.", session_id="trip")
    add(call, "u3", "I adopted a cat.", session_id="home")
    status, body = call("memories/get", {"filters": {"user_id": "u3", "session_id": "trip"},
                                         "memory_type": "episodic_memory"})
    assert [e["session_id"] for e in body["data"]["episodes"]] == ["trip"]
    status, body = call("memories/search", {
        "filters": {"user_id": "u3", "timestamp": {"gt": T0 + 60_000}}, "query": "Kyoto"})
    assert body["data"]["episodes"] == []


@pytest.mark.parametrize("route", ["memories/get", "memories/search"])
def test_an_empty_in_list_is_refused_naming_the_filter(call, route):
    status, body = call(route, {"filters": {"user_id": "u3", "session_id": {"in": []}},
                                "memory_type": "episodic_memory", "query": "x"})
    assert status == 422 and "filters.session_id.in" in body["message"], body


def test_group_memories_live_in_the_group(call):
    status, body = call("memories/group", {"group_id": "g1", "async_mode": False, "messages": [
        {"role": "user", "timestamp": T0, "sender_id": "a1", "sender_name": "Alice",
         "content": "I will book the venue."}]})
    assert status == 200, body
    status, body = call("memories/search", {"filters": {"group_id": "g1"}, "query": "venue"})
    (episode,) = [e for e in body["data"]["episodes"] if "venue" in e["episode"]]
    assert episode["group_id"] == "g1" and episode["user_id"] is None
    assert "Alice" in episode["episode"]
    status, body = call("memories/get", {"filters": {"group_id": "g1"}, "memory_type": "profile"})
    assert status == 400 and "per user" in body["message"]
    status, body = call("memories/group", {"group_id": "g1", "messages": [
        {"role": "user", "timestamp": T0, "content": "no sender"}]})
    assert status == 422 and "sender_id" in body["message"]


def test_flush_answers_that_nothing_is_pending(call):
    for route, body in (("memories/flush", {"user_id": "u"}),
                        ("memories/group/flush", {"group_id": "g"}),
                        ("memories/agent/flush", {"user_id": "u"})):
        status, answer = call(route, body)
        assert status == 200 and answer["data"]["status"] == "no_extraction", answer


def test_delete_by_id_and_by_user(call):
    add(call, "u4", "I work at Acme.", "I play the cello.")
    status, body = call("memories/get", {"filters": {"user_id": "u4"},
                                         "memory_type": "episodic_memory"})
    first = body["data"]["episodes"][0]["id"]
    status, body = call("memories/delete", {"memory_id": first})
    assert status == 200 and body["data"]["deleted"] == 1
    status, body = call("memories/delete", {"memory_id": first, "user_id": "u4"})
    assert status == 422
    status, body = call("memories/delete", {"user_id": "u4"})
    assert status == 200 and body["data"]["deleted"] >= 1
    status, body = call("memories/get", {"filters": {"user_id": "u4"},
                                         "memory_type": "episodic_memory"})
    assert body["data"]["total_count"] == 0


def test_a_session_delete_is_soft_a_user_or_group_delete_erases(call):
    add(call, "u9", "I work at Acme.", session_id="s1")
    add(call, "u9", "I play the cello.", session_id="s2")
    status, body = call("memories/delete", {"user_id": "u9", "session_id": "s1"})
    assert status == 200 and body["data"]["deleted"] >= 1 and "receipt" not in body["data"]
    soft = body["data"]["deleted"]
    status, body = call("memories/delete", {"user_id": "u9"})
    receipt = body["data"]["receipt"]
    assert status == 200 and receipt["tasks"] == 2 and receipt["messages"] == 2, body
    # every memory row went, the session's soft-deleted ones included
    assert receipt["memories"] == body["data"]["deleted"] > soft

    status, body = call("memories/group", {"group_id": "g9", "async_mode": False, "messages": [
        {"role": "user", "timestamp": T0, "sender_id": "ann",
         "content": "We booked the venue for Friday."}]})
    assert status == 200, body
    status, body = call("memories/delete", {"group_id": "g9"})
    assert status == 200 and body["data"]["receipt"]["tasks"] == 1, body
    status, body = call("memories/search", {"filters": {"group_id": "g9"}, "query": "venue"})
    assert status == 200 and not body["data"]["episodes"], body


def test_tasks_are_per_tenant(call):
    task_id = add(call, "u5", "I like tea.")["task_id"]
    status, body = call(f"tasks/{task_id}", method="GET")
    assert status == 200 and body["data"] == {"task_id": task_id, "status": "success",
                                              "error": None, "items": []}
    status, body = call(f"tasks/{task_id}", method="GET", tenant="tenant-b")
    assert status == 404


@pytest.mark.parametrize("body, status, named", [
    ({"messages": [{"role": "user", "timestamp": 1, "content": "x"}]}, 422, "user_id"),
    ({"user_id": "u", "messages": [{"role": "user", "content": "x"}]}, 422, "timestamp"),
    ({"user_id": "u", "messages": [{"role": "user", "timestamp": 1, "content": [
        {"type": "video_call", "uri": "x"}]}]}, 422, "type"),
    ({"user_id": "u", "messages": [{"role": "user", "timestamp": 1, "content": [
        {"type": "pdf"}]}]}, 422, "needs a uri"),
    ({"user_id": "u", "messages": [{"role": "user", "timestamp": 1, "content": [
        {"type": "pdf", "uri": "uploads/tenant-a/anon/1/x.pdf"}] * 11}]}, 422,
     "limit is 10 per message"),
    ({"user_id": "u", "junk": "x" * (300 * 1024),
      "messages": [{"role": "nobody", "timestamp": 1, "content": "x"}]}, 413, "300 KB"),
])
def test_bad_adds_name_the_field_or_limit(call, body, status, named):
    got, answer = call("memories", body)
    assert got == status and answer["code"] == status and named in answer["message"], answer


def test_openapi_lists_the_everos_routes(tmp_path):
    runtime = build_local_runtime(Settings(data_dir=tmp_path), embedder=HashingEmbedder())
    schema = create_app(runtime.services).get_openapi_schema()
    runtime.close()
    paths = set(schema.paths)
    assert {"/api/v1/object/sign", "/api/v1/memories", "/api/v1/memories/group",
            "/api/v1/memories/agent", "/api/v1/memories/search", "/api/v1/memories/get",
            "/api/v1/memories/delete", "/api/v1/tasks/{task_id}"} <= paths
