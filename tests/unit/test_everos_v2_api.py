"""EverOS's v2 routes (/api/v2/...) through the real resolver and services (SQLite in a
temp dir, the hashing embedder). The cloud SDK and the MCP server drive them in
tests/integration/test_everos_v2_clients.py."""

from __future__ import annotations

import json
import sqlite3

import pytest
from tests.fakes.embedder import HashingEmbedder
from tests.in_process import api_caller

from engram.api.app import create_app
from engram.api.everos.v2.translate import session_key
from engram.config import Settings
from engram.local.runtime import build_local_runtime
from engram.local.server import LambdaContext, proxy_event

T0 = 1_766_041_646_311


@pytest.fixture
def call(local_runtime):
    caller = api_caller(local_runtime.services)

    def call(route: str, body=None, tenant: str = "tenant-a", version: str = "v2"):
        return caller(route, body, tenant, version=version)

    return call


def say(user: str, *texts: str, session: str = "s1", **extra) -> dict:
    return {"session_id": session, "async_mode": False, **extra, "messages": [
        {"sender_id": user, "sender_name": "User", "role": "user", "timestamp": T0 + i,
         "content": t} for i, t in enumerate(texts)]}


def test_add_search_get_by_user_and_the_same_user_in_v1(call):
    status, body = call("memory/add", say("alice", "I live in Lisbon.", "I work at a bakery."))
    assert status == 200, body
    assert body["data"]["status"] == "extracted" and body["data"]["message_count"] == 2
    assert body["request_id"] is not None and body["data"]["task_id"]
    status, body = call("memory/search", {"user_id": "alice", "query": "Where does she live?"})
    assert status == 200, body
    episode = next(e for e in body["data"]["episodes"] if "Lisbon" in e["episode"])
    assert episode["user_id"] == "alice" and episode["session_id"] == "s1"
    assert episode["app_id"] == "default" and episode["score"] > 0
    assert episode["timestamp"].startswith("2025-12-18T07:07")
    status, body = call("memory/get", {"user_id": "alice", "memory_type": "episode",
                                       "page_size": 1})
    assert status == 200 and body["data"]["count"] == 1 and body["data"]["total_count"] >= 2
    assert "score" not in body["data"]["episodes"][0]
    # the same user through v1
    status, body = call("memories/search", {"filters": {"user_id": "alice"},
                                            "query": "Lisbon"}, version="v1")
    assert any("Lisbon" in e["episode"] for e in body["data"]["episodes"]), body


def test_partitions_other_users_tenants_and_scopes(call):
    call("memory/add", say("alice", "My locker code is 4711."))
    for query in ({"user_id": "bob"}, {"user_id": "alice", "app_id": "other-app"},
                  {"agent_id": "alice"}):
        status, body = call("memory/search", {**query, "query": "locker code"})
        assert status == 200 and not body["data"]["episodes"], (query, body)
    status, body = call("memory/search", {"user_id": "alice", "query": "locker code"},
                        tenant="tenant-b")
    assert status == 200 and not body["data"]["episodes"]
    # an owner condition in filters cannot reach another user
    status, body = call("memory/search", {"user_id": "bob", "query": "locker code",
                                          "filters": {"user_id": "alice"}})
    assert not body["data"]["episodes"], body


def test_async_add_answers_202_and_flush_waits_for_it(call):
    status, body = call("memory/add", {**say("carol", "I adopted a cat named Miso."),
                                       "async_mode": True})
    assert status == 202 and body["data"]["status"] == "queued", body
    status, body = call("memory/flush", {"session_id": "s1"})
    assert status == 200 and body["data"]["status"] in ("extracted", "no_extraction"), body
    status, body = call("memory/search", {"user_id": "carol", "query": "cat Miso"})
    assert any("Miso" in e["episode"] for e in body["data"]["episodes"]), body
    status, body = call("memory/flush", {"session_id": "nothing-here"})
    assert body["data"]["status"] == "no_extraction"


def test_agent_trajectory_becomes_cases_and_skills(call):
    status, body = call("memory/add", {"session_id": "t1", "async_mode": False, "messages": [
        {"sender_id": "dave", "role": "user", "timestamp": T0,
         "content": "Find a flight from SFO to JFK"},
        {"sender_id": "bot-1", "role": "assistant", "timestamp": T0 + 1, "content": "",
         "tool_calls": [{"id": "c1", "type": "function", "function": {
             "name": "search_flights", "arguments": '{"from": "SFO", "to": "JFK"}'}}]},
        {"sender_id": "tools", "role": "tool", "timestamp": T0 + 2, "tool_call_id": "c1",
         "content": "UA 123 departs 9:05, $300"},
        {"sender_id": "bot-1", "role": "assistant", "timestamp": T0 + 3,
         "content": "UA 123 at 9:05 costs $300."}]})
    assert status == 200, body
    status, body = call("memory/search", {"agent_id": "bot-1", "query": "flight SFO JFK"})
    data = body["data"]
    assert any("search_flights" in c["approach"] for c in data["agent_cases"]), body
    assert all(c["agent_id"] == "bot-1" and c["session_id"] == "t1"
               for c in data["agent_cases"])
    assert any(s["name"] == "search_flights" for s in data["agent_skills"]), body
    status, body = call("memory/get", {"agent_id": "bot-1", "memory_type": "agent_skill"})
    assert body["data"]["agent_skills"] and body["data"]["total_count"] >= 1


def test_edit_profile_items_and_partitions(call):
    status, body = call("memory/edit", {"user_id": "erin", "operations": [
        {"action": "add", "type": "explicit_info",
         "data": {"category": "diet", "description": "Erin is vegetarian"}},
        {"action": "add", "type": "implicit_traits",
         "data": {"trait": "curious", "description": "asks many follow-up questions"}}]})
    assert status == 200, body
    data = body["data"]
    assert data["applied"] == 2 and data["version"] > 0
    diet = data["results"][0]["new_item_id"]
    assert data["profile"]["explicit_info"][0]["category"] == "diet"
    assert data["profile"]["implicit_traits"][0]["trait"] == "curious"
    status, body = call("memory/edit", {"user_id": "erin", "operations": [
        {"action": "update", "type": "explicit_info", "item_id": diet,
         "data": {"description": "Erin is vegan"}}]})
    assert body["data"]["results"][0]["status"] == "applied", body
    status, body = call("memory/get", {"user_id": "erin", "memory_type": "profile"})
    profile = body["data"]["profiles"][0]
    assert profile["user_id"] == "erin"
    assert profile["profile_data"]["explicit_info"][0]["description"] == "Erin is vegan"
    status, body = call("memory/search", {"user_id": "erin", "query": "food",
                                          "include_profile": True})
    assert body["data"]["profiles"][0]["profile_data"]["implicit_traits"], body
    # another user's or another tenant's item is rejected, not changed
    for user, tenant in (("frank", "tenant-a"), ("erin", "tenant-b")):
        status, body = call("memory/edit", {"user_id": user, "operations": [
            {"action": "delete", "type": "explicit_info", "item_id": diet}]}, tenant=tenant)
        assert status == 200 and body["data"]["results"][0]["status"] == "rejected", body
        assert body["data"]["applied"] == 0
    status, body = call("memory/edit", {"user_id": "erin", "operations": [
        {"action": "delete", "type": "implicit_traits", "item_id": diet}]})
    assert body["data"]["results"][0]["status"] == "rejected"  # the wrong kind of item
    status, body = call("memory/edit", {"user_id": "erin", "operations": [
        {"action": "delete", "type": "explicit_info", "item_id": diet}]})
    assert body["data"]["results"][0]["status"] == "applied"
    assert body["data"]["profile"]["explicit_info"] == []


def test_delete_by_session_keeps_the_profile_and_by_user_erases(call):
    call("memory/add", say("gina", "I am training for the Berlin marathon.", session="run"))
    call("memory/add", say("gina", "I work as a nurse.", session="work"))
    call("memory/edit", {"user_id": "gina", "operations": [
        {"action": "add", "type": "explicit_info",
         "data": {"category": "job", "description": "Gina is a nurse"}}]})
    status, body = call("memory/delete", {"session_id": "run"})
    assert status == 200 and body["data"]["filters"] == ["session_id"], body
    assert body["data"]["count"] >= 1
    status, body = call("memory/search", {"user_id": "gina", "query": "marathon Berlin"})
    assert not any("marathon" in e["episode"] for e in body["data"]["episodes"]), body
    status, body = call("memory/search", {"user_id": "gina", "query": "nurse job",
                                          "include_profile": True})
    assert any("nurse" in e["episode"] for e in body["data"]["episodes"])
    assert body["data"]["profiles"], body
    # another tenant's delete of the same session touches nothing here
    call("memory/delete", {"session_id": "work"}, tenant="tenant-b")
    status, body = call("memory/search", {"user_id": "gina", "query": "nurse"})
    assert any("nurse" in e["episode"] for e in body["data"]["episodes"])
    status, body = call("memory/delete", {"user_id": "gina"})
    assert status == 200 and body["data"]["count"] >= 2, body
    status, body = call("memory/get", {"user_id": "gina", "memory_type": "profile"})
    assert body["data"]["profiles"] == []


def test_any_erasure_of_a_user_forgets_the_conversations_they_wrote_to(tmp_path):
    """The v2 record of who wrote to a conversation names the user: MemOS's delete/memory
    by user_id erases it as v2's own delete does (one erasure path for every dialect)."""
    runtime = build_local_runtime(Settings(data_dir=tmp_path, api_keys={"k": "tenant-a"}),
                                  embedder=HashingEmbedder())
    app = create_app(runtime.services)

    def post(path: str, body: dict) -> int:
        event = proxy_event("POST", path, {"Content-Type": "application/json"},
                            json.dumps(body), "tenant-a", "127.0.0.1")
        return app.resolve(event, LambdaContext())["statusCode"]

    bees = session_key("default", "default", "bees")
    assert post("/api/v2/memory/add", say("hana", "I keep bees in Porto.", session="bees")) \
        == 200
    assert post("/api/v2/memory/add", say("ivo", "I keep bees too.", session="bees")) == 200
    directory = runtime.services.directory
    assert sorted(directory.owners("tenant-a", bees)) == ["hana", "ivo"]
    assert post("/v1/delete/memory", {"user_id": "hana"}) == 200
    assert directory.owners("tenant-a", bees) == ["ivo"]
    db = tmp_path / "engram.db"
    rows = sqlite3.connect(db).execute("SELECT collection, key FROM directory").fetchall()
    assert rows and not any("hana" in f"{c} {k}" for c, k in rows), rows
    runtime.close()


@pytest.mark.parametrize(("route", "body", "field"), [
    ("memory/add", {"session_id": "s", "messages": []}, "messages"),
    ("memory/add", {"messages": [{"sender_id": "a", "role": "user", "timestamp": T0,
                                  "content": "x"}]}, "session_id"),
    ("memory/add", {"session_id": "s", "messages": [{"role": "user", "timestamp": T0,
                                                     "content": "x"}]}, "sender_id"),
    ("memory/add", {"session_id": "s", "messages": [{"sender_id": "a", "role": "robot",
                                                     "timestamp": T0, "content": "x"}]},
     "messages.0.role"),
    ("memory/add", {"session_id": "s", "messages": [{"sender_id": "a", "role": "assistant",
                                                     "timestamp": T0, "content": "x"}]},
     "user message"),
    ("memory/add", {"session_id": "s", "mode": "agent", "messages": [
        {"sender_id": "a", "role": "user", "timestamp": T0, "content": "x"}]},
     "assistant message"),
    ("memory/add", {"session_id": "s" * 129, "messages": [
        {"sender_id": "a", "role": "user", "timestamp": T0, "content": "x"}]}, "session_id"),
    ("memory/search", {"query": "x"}, "user_id or agent_id"),
    ("memory/search", {"query": "x", "user_id": "a", "agent_id": "b"}, "user_id or agent_id"),
    ("memory/search", {"query": "", "user_id": "a"}, "query"),
    ("memory/search", {"query": "x", "user_id": "a", "top_k": 0}, "top_k"),
    ("memory/get", {"user_id": "a", "memory_type": "diary"}, "memory_type"),
    ("memory/get", {"agent_id": "a", "memory_type": "profile"}, "user_id"),
    ("memory/delete", {}, "user_id, agent_id and/or session_id"),
    ("memory/flush", {}, "session_id"),
    ("memory/edit", {"user_id": "a", "operations": [
        {"action": "add", "type": "explicit_info", "data": {"description": "d"}}]},
     "operations[0].data.category"),
    ("memory/edit", {"user_id": "a", "operations": [
        {"action": "rename", "type": "explicit_info"}]}, "operations.0"),
])
def test_bad_input_is_a_422_naming_the_field(call, route, body, field):
    status, answer = call(route, body)
    assert status == 422 and field in answer["message"], answer


def test_object_sign_v2(call):
    status, body = call("object/sign", {"objectList": [
        {"fileId": "f1", "fileName": "notes.txt", "fileType": "file"}]})
    assert status == 200 and body["status"] == 0, body
    item = body["result"]["data"]["objectList"][0]
    assert item["fileId"] == "f1" and item["objectKey"].endswith("/notes.txt")
    status, body = call("object/sign", {"objectList": [
        {"fileId": "f1", "fileName": "a.txt", "fileType": "file"},
        {"fileId": "f1", "fileName": "b.txt", "fileType": "file"}]})
    assert status == 400 and body["status"] == 2018 and "fileId" in body["error"], body
    status, body = call("object/sign", {"objectList": [
        {"fileId": f"f{i}", "fileName": "a.txt", "fileType": "file"} for i in range(51)]})
    assert status == 400 and "50" in body["error"], body


def test_openapi_document_covers_the_new_everos_routes(tmp_path):
    runtime = build_local_runtime(Settings(data_dir=tmp_path, api_keys={"k": "tenant-a"}),
                                  embedder=HashingEmbedder())
    try:
        doc = json.loads(create_app(runtime.services).get_openapi_json_schema())
    finally:
        runtime.close()
    paths = doc["paths"]
    expected = {
        "/api/v1/groups": {"post"}, "/api/v1/groups/{group_id}": {"get", "patch"},
        "/api/v1/senders": {"post"}, "/api/v1/senders/{sender_id}": {"get", "patch"},
        "/api/v1/settings": {"get", "put"}, "/api/v2/object/sign": {"post"},
        **{f"/api/v2/memory/{name}": {"post"}
           for name in ("add", "search", "get", "delete", "flush", "edit")}}
    for path, methods in expected.items():
        assert set(paths.get(path, {})) == methods, path
    assert {"200", "202", "422"} <= set(paths["/api/v2/memory/add"]["post"]["responses"])
    assert "404" in paths["/api/v1/groups/{group_id}"]["get"]["responses"]
    assert "404" in paths["/api/v1/senders/{sender_id}"]["patch"]["responses"]
    assert "409" in paths["/api/v2/memory/flush"]["post"]["responses"]
    schemas = doc["components"]["schemas"]
    assert {"operations", "user_id"} <= set(schemas["V2EditRequest"]["properties"])
    assert schemas["V2AddData"]["properties"]["status"]["enum"] == [
        "accumulated", "extracted", "queued"]


@pytest.mark.parametrize("route, template", [
    ("memory/add", '{"session_id": "s", "messages": %s}'),
    ("memory/search", '{"user_id": "u", "query": "q", "filters": {"AND": %s}}'),
    ("memory/edit", '{"user_id": "u", "operations": %s}'),
])
def test_hostile_bodies_are_refused_before_anything_runs(call, route, template):
    status, body = call(route, template % ("[" * 10_000 + "]" * 10_000))
    assert status == 422 and "deeper than 64" in body["message"], body
    status, body = call(route, template.replace("%s", '"x\\udfff"'))
    assert status == 422 and "lone surrogate" in body["message"], body


@pytest.mark.parametrize("route, body, field", [
    ("memory/add", {"session_id": "s\x00", "messages": [
        {"sender_id": "a", "role": "user", "timestamp": T0, "content": "x"}]}, "session_id"),
    ("memory/add", {"session_id": "s", "messages": [
        {"sender_id": "a\n", "role": "user", "timestamp": T0, "content": "x"}]},
     "messages.0.sender_id"),
    ("memory/search", {"user_id": "u\x7f", "query": "q"}, "user_id"),
    ("memory/search", {"user_id": "u", "query": "q", "filters": {"session_id": "s\x00"}},
     "session_id"),
    ("memory/get", {"agent_id": "a\x85", "memory_type": "episode"}, "agent_id"),
    ("memory/delete", {"session_id": "s\x01"}, "session_id"),
    ("memory/edit", {"user_id": "u", "operations": [
        {"action": "delete", "type": "explicit_info", "item_id": "i\x00"}]}, "item_id"),
    ("memory/search", {"user_id": "u", "app_id": "a\x00", "query": "q"}, "app_id"),
])
def test_control_characters_in_v2_identifiers_are_refused(call, route, body, field):
    status, answer = call(route, body)
    assert status == 422 and field in answer["message"], answer
    assert "control characters" in answer["message"], answer


def test_path_ids_with_control_characters_and_other_bodies_are_refused(tmp_path):
    runtime = build_local_runtime(Settings(data_dir=tmp_path, api_keys={"k": "tenant-a"}),
                                  embedder=HashingEmbedder())
    try:
        app = create_app(runtime.services)
        for method, path in (("GET", "/api/v1/groups/g\x00x"), ("GET", "/api/v1/senders/s\x1fx"),
                             ("PATCH", "/api/v1/groups/g\x01")):
            event = proxy_event(method, path, {"Content-Type": "application/json"},
                                '{"name": "n"}' if method == "PATCH" else None, "tenant-a",
                                "127.0.0.1")
            response = app.resolve(event, LambdaContext())
            # the router's path parameters take no control character: no route matches
            assert response["statusCode"] == 404, (path, response["body"])
            assert "no route" in response["body"], response["body"]
        event = proxy_event("PUT", "/api/v1/settings", {"Content-Type": "text/plain"},
                            "timezone=UTC", "tenant-a", "127.0.0.1")
        assert app.resolve(event, LambdaContext())["statusCode"] == 415
    finally:
        runtime.close()


def test_a_user_id_may_not_name_a_group_or_an_agent_partition(call):
    """A group's memories are the Engram user "group:<id>", a v2 agent's "agent:<id>": a
    client's user_id starting with either would read or write them."""
    call("memory/add", say("bob", "I repair bicycles in Ghent.", session="s"))
    status, body = call("memories/group", {"group_id": "club", "messages": [
        {"sender_id": "bob", "sender_name": "Bob", "role": "user", "timestamp": T0,
         "content": "The club meets on Tuesdays in Ghent."}]}, version="v1")
    assert status in (200, 202), body
    for version, route, request in (
            ("v1", "memories/search", {"filters": {"user_id": "group:club"}, "query": "club"}),
            ("v1", "memories/get", {"filters": {"user_id": {"in": ["bob", "group:club"]}},
                                    "memory_type": "episodic_memory"}),
            ("v2", "memory/search", {"user_id": "agent:bob", "query": "bicycles"}),
            ("v2", "memory/add", say("agent:bob", "I like tea."))):
        status, body = call(route, request, version=version)
        assert status == 422, (route, body)
        assert "must not start with" in json.dumps(body), (route, body)
        assert "user_id" in json.dumps(body) or "sender_id" in json.dumps(body), body
