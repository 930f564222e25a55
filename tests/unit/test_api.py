"""The /v1 routes through the real resolver and services, with SQLite in a temp dir and
a hashing embedder instead of the model (fast). HTTP itself is covered by integration
tests."""

from __future__ import annotations

import json

import pytest
from tests.fakes.embedder import HashingEmbedder

from engram.api.app import create_app
from engram.config import Settings
from engram.local.runtime import build_local_runtime
from engram.local.server import LambdaContext, proxy_event


@pytest.fixture
def runtime(tmp_path):
    rt = build_local_runtime(Settings(data_dir=tmp_path, api_keys={"k": "tenant-a"}),
                             embedder=HashingEmbedder())
    yield rt
    rt.close()


@pytest.fixture
def call(runtime):
    app = create_app(runtime.services)

    def call(route: str, body, tenant: str | None = "tenant-a", method: str = "POST"):
        raw = body if isinstance(body, str) or body is None else json.dumps(body)
        event = proxy_event(method, f"/v1/{route}", {"Content-Type": "application/json"},
                            raw, tenant, "127.0.0.1")
        response = app.resolve(event, LambdaContext())
        return response["statusCode"], json.loads(response["body"])

    return call


def add_sync(call, user: str, *texts: str, **extra) -> dict:
    status, body = call("add/message", {
        "user_id": user, "conversation_id": "c1", "async_mode": False,
        "messages": [{"role": "user", "content": t} for t in texts], **extra})
    assert status == 200, body
    assert body["data"]["status"] == "completed", body
    return body["data"]


def test_sync_add_then_search_finds_the_memory(call):
    data = add_sync(call, "u1", "I like green tea in the morning")
    assert data["memory_views"]["added"]
    status, body = call("search/memory", {"query": "green tea", "user_id": "u1"})
    assert status == 200 and body["code"] == 0 and body["message"] == "ok"
    found = body["data"]["preference_detail_list"] + body["data"]["memory_detail_list"]
    assert any("green tea" in (m.get("preference") or m.get("memory_value")) for m in found)


def test_async_add_is_searchable_at_once_as_working_memory(call, runtime):
    queued = []
    held = type("Held", (), {"start": lambda self, ref: queued.append(ref)})
    runtime.services.ingest.workflow = held()  # accepted, never processed
    status, body = call("add/message", {
        "user_id": "u2", "conversation_id": "c",
        "messages": [{"role": "user", "content": "My cat is Miso"}]})
    assert status == 200 and body["data"]["status"] == "waiting"
    assert [ref.task_id for ref in queued] == [body["data"]["task_id"]]
    status, body = call("search/memory", {"query": "cat Miso", "user_id": "u2"})
    top = body["data"]["memory_detail_list"][0]
    assert top["memory_type"] == "WorkingMemory" and "Miso" in top["memory_value"]


@pytest.mark.parametrize("body, status, named", [
    ({"conversation_id": "c", "messages": [{"role": "user", "content": "x"}]}, 422, "user_id"),
    ({"user_id": "u", "messages": [{"role": "user", "content": "x"}]}, 422, "conversation_id"),
    ({"user_id": "u", "conversation_id": "c", "messages": []}, 422, "messages"),
    ({"user_id": "u", "conversation_id": "c",
      "messages": [{"role": "user", "content": "x"}] * 501}, 422, "messages"),
    ({"user_id": "u", "conversation_id": "c", "messages": [{"role": "boss", "content": "x"}]},
     422, "messages.0.role"),
    ({"user_id": "u", "conversation_id": "c", "info": {"age": 30},
      "messages": [{"role": "user", "content": "x"}]}, 422, "info.age"),
    ({"user_id": "u", "conversation_id": "c", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]},
     422, "content part type 'input_audio' is not supported"),
    ({"user_id": "u", "conversation_id": "c",
      "messages": [{"role": "user", "content": "x", "chat_time": "last tuesday"}]},
     422, "chat_time"),
])
def test_bad_add_requests_name_the_field(call, body, status, named):
    got, envelope = call("add/message", body)
    assert got == status and envelope["code"] == status
    assert named in envelope["message"]


def test_too_long_message_is_413(call):
    status, body = call("add/message", {"user_id": "u", "conversation_id": "c",
                                        "messages": [{"role": "user", "content": "x" * 100_001}]})
    assert status == 413 and "100000" in body["message"]


def test_bad_json_is_400(call):
    status, body = call("add/message", "{not json")
    assert status == 400 and body["code"] == 400


@pytest.mark.parametrize("body, named", [
    ({"query": "x", "user_id": "u", "memory_limit_number": 26}, "memory_limit_number"),
    ({"query": "", "user_id": "u"}, "query"),
    ({"query": "x"}, "user_id"),
    ({"query": "x", "user_id": "u", "filter": {"colour": "red"}}, "colour"),
    ({"query": "x", "user_id": "u", "relativity": 2}, "relativity"),
])
def test_bad_search_requests_are_422(call, body, named):
    status, envelope = call("search/memory", body)
    assert status == 422 and named in envelope["message"]


def test_unauthenticated_event_is_401(call):
    status, body = call("search/memory", {"query": "x", "user_id": "u"}, tenant=None)
    assert status == 401 and body["code"] == 401


def test_unknown_route_is_404_envelope(call):
    status, body = call("no/such/route", {})
    assert status == 404 and body["code"] == 404


def test_task_of_another_tenant_is_404(call):
    data = add_sync(call, "u3", "I live in Lisbon")
    assert call("get/status", {"task_id": data["task_id"]})[0] == 200
    status, body = call("get/status", {"task_id": data["task_id"]}, tenant="tenant-b")
    assert status == 404 and data["task_id"] in body["message"]


def test_get_status_by_query_string(call):
    data = add_sync(call, "u3", "I live in Porto")
    status, body = call(f"get/status?task_id={data['task_id']}", None, method="GET")
    assert status == 200 and body["data"]["status"] == "completed"


def test_tenants_and_users_never_see_each_other(call):
    add_sync(call, "alice", "I keep bees on my roof")
    for tenant, user in (("tenant-b", "alice"), ("tenant-a", "bob")):
        status, body = call("search/memory", {"query": "bees roof", "user_id": user},
                            tenant=tenant)
        assert status == 200
        assert body["data"]["memory_detail_list"] == []


def test_filter_by_info_and_agent(call):
    add_sync(call, "u4", "I play the cello", agent_id="music-bot", info={"scene": "hobby"})
    add_sync(call, "u4", "I play tennis", agent_id="sport-bot", info={"scene": "sport"})

    def values(flt):
        body = call("search/memory", {"query": "I play", "user_id": "u4", "filter": flt})[1]
        return [m["memory_value"] for m in body["data"]["memory_detail_list"]]

    assert all("cello" in v for v in values({"and": [{"scene": "hobby"}]}))
    assert all("tennis" in v for v in values({"agent_id": "sport-bot"}))
    assert values({"create_time": {"lt": "2000-01-01"}}) == []


def test_update_delete_and_get_memory(call):
    add_sync(call, "u5", "I work as a nurse")
    page = call("get/memory", {"user_id": "u5"})[1]["data"]
    assert page["total"] == 1 and page["current"] == 1 and page["pages"] == 1
    memory_id = page["memory_detail_list"][0]["id"]

    status, body = call("update/memory", {"memory_id": memory_id,
                                          "content": "The user works as a surgeon"})
    assert status == 200 and body["data"]["memory"]["memory_value"] == "The user works as a surgeon"
    top = call("search/memory", {"query": "surgeon", "user_id": "u5"})[1]["data"]
    assert top["memory_detail_list"][0]["id"] == memory_id

    assert call("update/memory", {"memory_id": memory_id})[0] == 422
    status, body = call("delete/memory", {"memory_ids": [memory_id]})
    assert status == 200 and body["data"] == {"success": True, "deleted": 1}
    assert call("get/memory", {"user_id": "u5"})[1]["data"]["total"] == 0
    assert call("delete/memory", {"memory_ids": [memory_id]})[0] == 404
    assert call("delete/memory", {})[0] == 422


def test_delete_by_user_erases_memories_and_messages(call):
    add_sync(call, "u6", "I was born in Oslo")
    status, body = call("delete/memory", {"user_id": "u6"})
    assert status == 200 and body["data"]["deleted"] >= 1
    assert call("get/memory", {"user_id": "u6"})[1]["data"]["total"] == 0
    messages = call("get/message", {"user_id": "u6", "conversation_id": "c1"})[1]["data"]
    assert messages["message_detail_list"] == []


def test_get_message_returns_the_conversation_in_order(call):
    add_sync(call, "u7", "first", "second")
    add_sync(call, "u7", "third")
    body = call("get/message", {"user_id": "u7", "conversation_id": "c1"})[1]
    assert [m["content"] for m in body["data"]["message_detail_list"]] == [
        "first", "second", "third"]


def test_openapi_document_lists_the_routes(call):
    status, doc = call("openapi.json", None, tenant=None, method="GET")
    assert status == 200
    for path in ("/v1/add/message", "/v1/search/memory", "/v1/get/status", "/v1/get/memory",
                 "/v1/update/memory", "/v1/delete/memory", "/v1/get/message", "/v1/add/feedback"):
        assert path in doc["paths"], path
    # mem0's platform routes and the webhook routes, each with the methods it takes (the
    # REST resolver matches a path with or without its trailing slash, as mem0 sends it)
    declared = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    for path, methods in {
            "/v1/ping": ["get"], "/v3/memories/add": ["post"],
            "/v3/memories/search": ["post"], "/v3/memories": ["post"],
            "/v1/memories/{memory_id}": ["get", "put", "delete"], "/v1/memories": ["delete"],
            "/v1/memories/{memory_id}/history": ["get"], "/v1/event/{event_id}": ["get"],
            "/v1/entities": ["get"], "/v2/entities/{entity_type}/{entity_id}": ["delete"],
            "/v1/batch": ["put", "delete"], "/v1/feedback": ["post"],
            "/api/v1/webhooks/projects/{project_id}": ["get", "post"],
            "/api/v1/webhooks/{webhook_id}": ["put", "delete"],
            "/v1/webhooks": ["get", "post"], "/v1/webhooks/{webhook_id}": ["get", "put", "delete"],
            "/v1/webhooks/{webhook_id}/deliveries": ["get"],
            "/v1/exports": ["post"], "/v1/exports/get": ["post"],
            "/v1/export/memory": ["post"], "/v1/import/memory": ["post"]}.items():
        for method in methods:
            assert (path, method) in declared, (path, method)


# mem0's routes answer errors with mem0's `detail` beside the envelope's fields
MEM0_PATHS = ("/v1/ping", "/v1/memories", "/v1/event", "/v1/entities", "/v1/batch",
              "/v1/feedback", "/v1/exports", "/v2/", "/v3/", "/api/v1/webhooks/")


def test_openapi_document_declares_the_api_key_and_every_error(call):
    doc = call("openapi.json", None, tenant=None, method="GET")[1]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["Token"] == {"type": "apiKey", "in": "header", "name": "Authorization",
                                "description": schemes["Token"]["description"]}
    assert "Token <api key>" in schemes["Token"]["description"]
    assert schemes["Bearer"]["type"] == "http" and schemes["Bearer"]["scheme"] == "bearer"
    assert doc["security"] == [{"Token": []}, {"Bearer": []}]
    envelope = "#/components/schemas/ErrorEnvelope"
    mms = ("/api/v1/object/sign", "/api/v2/object/sign")  # MMS's format, 400 for a 422
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            answers = operation["responses"]
            errors = {int(s): a for s, a in answers.items() if int(s) >= 400}
            takes_input = "requestBody" in operation or operation.get("parameters")
            assert {401, 422} <= set(errors) or path in mms or \
                (401 in errors and not takes_input), where
            if "requestBody" in operation:
                assert {400, 401, 413, 415} <= set(errors), where
                # add/knowledgebase-file also takes MemOS's client's form uploads
                media = ["application/json", *(["multipart/form-data"] if path ==
                                              "/v1/add/knowledgebase-file" else [])]
                assert list(operation["requestBody"]["content"]) == media, where
            for status, answer in errors.items():
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                expected = ("#/components/schemas/ObjectSignResponse"
                            if path in mms and status != 401 else
                            "#/components/schemas/Mem0Error" if path.startswith(MEM0_PATHS)
                            else envelope)
                assert ref == expected, (where, status)
    assert "HTTPValidationError" not in json.dumps(doc["paths"])
    paths = doc["paths"]
    assert "404" in paths["/v1/get/status"]["post"]["responses"]
    assert "409" in paths["/v1/retry/task"]["post"]["responses"]
    assert "202" in paths["/api/v1/memories"]["post"]["responses"]
    assert "422" not in paths["/api/v1/object/sign"]["post"]["responses"]  # MMS answers 400
    identifier = doc["components"]["schemas"]["AddMessageRequest"]["properties"]["user_id"]
    # optional (an agent's own memories name agent_id alone): a string or null
    identifier = next(s for s in identifier["anyOf"] if s.get("type") == "string")
    assert identifier["pattern"] == "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
