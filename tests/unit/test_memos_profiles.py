"""MemOS profiles (add/get/list profile_template, bind/profile_template, edit/profile,
delete/profile) through the real resolver and services, SQLite in a temp dir: templates
and instances per tenant and subject, values filled from the user's memories, and the
partitions (another tenant's template, another user's profile) that must hold."""

from __future__ import annotations

import json

import pytest
from tests.in_process import api_caller

from engram.api.app import create_app

TEMPLATE = {"Basic Info": {"Name": {"value": "", "algorithm_updatable": True},
                           "City": {"value": "", "algorithm_updatable": True},
                           "Occupation": {"value": "", "algorithm_updatable": True}},
            "Service Preferences": {"Contact time": {"value": "Weekday daytime",
                                                     "algorithm_updatable": False}}}


@pytest.fixture
def runtime(local_runtime):
    return local_runtime


@pytest.fixture
def call(runtime):
    return api_caller(runtime.services)


def ok(answer: tuple[int, dict]) -> dict:
    status, body = answer
    assert status == 200 and body["code"] == 0, body
    return body["data"]


def template(call, tenant: str = "tenant-a", metadata: dict | None = None) -> str:
    data = ok(call("add/profile_template", {"name": "Customer profile",
                                            "metadata": metadata or TEMPLATE}, tenant))
    assert data["profile_template_id"].startswith("tpl_")
    return data["profile_template_id"]


def add_sync(call, user: str, *texts: str) -> None:
    data = ok(call("add/message", {"user_id": user, "conversation_id": "c1",
                                   "async_mode": False,
                                   "messages": [{"role": "user", "content": t} for t in texts]}))
    assert data["status"] == "completed", data


def profiles_in_search(call, user: str, tenant: str = "tenant-a") -> list[dict]:
    data = ok(call("search/memory", {"query": "who am I", "user_id": user}, tenant))
    return data.get("profile_detail_list") or []


def field(profile: dict, *path: str) -> dict:
    return next(f for f in profile["fields"] if f["path"] == list(path))


def test_a_template_is_created_read_and_listed(call):
    tid = template(call)
    data = ok(call("get/profile_template", {"profile_template_id": tid}))
    assert data["profile_template"]["name"] == "Customer profile"
    assert data["profile_template"]["metadata"] == TEMPLATE
    listed = ok(call("list/profile_template", {"page": 1, "size": 10}))
    assert [t["profile_template_id"] for t in listed["profile_templates"]] == [tid]
    assert listed["total"] == 1 and listed["pages"] == 1


def test_bound_profile_is_filled_from_the_users_memories(call):
    tid = template(call)
    ok(call("bind/profile_template", {"bind_list": [{"user_id": "alice",
                                                     "profile_template_id": tid}]}))
    (empty,) = profiles_in_search(call, "alice")
    assert field(empty, "Basic Info", "Name")["value"] == ""
    assert field(empty, "Service Preferences", "Contact time")["value"] == "Weekday daytime"
    add_sync(call, "alice", "My name is Alice Chen.", "I live in Berlin.",
             "I work as a nurse at the city hospital.")
    (profile,) = profiles_in_search(call, "alice")
    assert profile["memory_type"] == "ProfileMemory" and profile["user_id"] == "alice"
    name = field(profile, "Basic Info", "Name")
    assert name["value"] == "Alice Chen" and name["source"] == "memory" and name["memory_id"]
    assert field(profile, "Basic Info", "City")["value"] == "Berlin"
    assert field(profile, "Basic Info", "Occupation")["value"] == "nurse"
    assert "Basic Info / City: Berlin" in profile["memory_value"]
    assert profile["metadata"]["Basic Info"]["Name"]["value"] == "Alice Chen"
    # get/memory carries the same list
    listed = ok(call("get/memory", {"user_id": "alice", "page": 1, "size": 10}))
    assert listed["profile_detail_list"][0]["metadata"] == profile["metadata"]


def test_an_edit_locks_a_field_against_memories_and_remove_fields_drops_one(call):
    tid = template(call)
    ok(call("bind/profile_template", {"bind_list": [{"user_id": "bob",
                                                     "profile_template_id": tid}]}))
    add_sync(call, "bob", "I live in Berlin.")
    data = ok(call("edit/profile", {
        "user_id": "bob", "profile_template_id": tid,
        "metadata": {"Basic Info": {"City": {"value": "Shanghai",
                                             "algorithm_updatable": False},
                                    "Nickname": {"value": "Bobby"}}},
        "remove_fields": ["Service Preferences.Contact time"]}))
    city = field(data["profile"], "Basic Info", "City")
    assert city == {**city, "value": "Shanghai", "source": "edit",
                    "algorithm_updatable": False}
    assert field(data["profile"], "Basic Info", "Nickname")["value"] == "Bobby"
    assert "Service Preferences" not in data["profile"]["metadata"]
    add_sync(call, "bob", "I moved to Lisbon.")  # newer, but the field is locked
    (profile,) = profiles_in_search(call, "bob")
    assert field(profile, "Basic Info", "City")["value"] == "Shanghai"


def test_an_updatable_edit_gives_way_only_to_newer_memories(call):
    tid = template(call)
    ok(call("bind/profile_template", {"bind_list": [{"user_id": "cai",
                                                     "profile_template_id": tid}]}))
    add_sync(call, "cai", "I live in Berlin.")
    ok(call("edit/profile", {"user_id": "cai", "profile_template_id": tid,
                             "metadata": {"Basic Info": {"City": {"value": "Paris"}}}}))
    (profile,) = profiles_in_search(call, "cai")
    assert field(profile, "Basic Info", "City")["value"] == "Paris"  # the older memory
    add_sync(call, "cai", "I moved to Lisbon.")
    (profile,) = profiles_in_search(call, "cai")
    assert field(profile, "Basic Info", "City")["value"] == "Lisbon"


def test_delete_profile_and_user_erasure_remove_profiles(call, runtime):
    tid = template(call)
    ok(call("bind/profile_template", {"bind_list": [
        {"user_id": "dee", "profile_template_id": tid},
        {"user_id": "eve", "profile_template_id": tid}]}))
    ok(call("delete/profile", {"user_id": "dee", "profile_template_id": tid}))
    assert profiles_in_search(call, "dee") == []
    status, body = call("delete/profile", {"user_id": "dee", "profile_template_id": tid})
    assert status == 404 and "dee" in body["message"]
    wiped = ok(call("delete/memory", {"user_id": "eve"}))
    assert wiped["receipt"]["profiles"] == 1
    assert runtime.services.profiles.store.profiles_of("tenant-a", "user", "eve") == []
    rows = runtime.store._read("SELECT COUNT(*) FROM profiles WHERE subject_id = 'eve'", ())
    assert rows[0][0] == 0


def test_agents_have_profiles_of_their_own(call):
    tid = template(call)
    ok(call("bind/profile_template", {"bind_list": [{"agent_id": "helper",
                                                     "profile_template_id": tid}]}))
    data = ok(call("edit/profile", {"agent_id": "helper", "profile_template_id": tid,
                                    "metadata": {"Basic Info": {"Name": {"value": "Ava"}}}}))
    assert data["profile"]["agent_id"] == "helper" and "user_id" not in {
        k for k, v in data["profile"].items() if v}
    assert profiles_in_search(call, "helper") == []  # a user of that id has none


def test_another_tenants_template_is_not_found(call):
    tid = template(call, tenant="tenant-a")
    for route, body in (
            ("get/profile_template", {"profile_template_id": tid}),
            ("bind/profile_template", {"bind_list": [{"user_id": "u",
                                                      "profile_template_id": tid}]}),
            ("edit/profile", {"user_id": "u", "profile_template_id": tid,
                              "metadata": {"A": {"B": {"value": "x"}}}}),
            ("delete/profile", {"user_id": "u", "profile_template_id": tid})):
        status, answer = call(route, body, tenant="tenant-b")
        assert status == 404 and tid in answer["message"], (route, answer)
    assert ok(call("list/profile_template", {}, tenant="tenant-b"))["profile_templates"] == []


def test_one_user_never_sees_another_users_profile(call):
    tid = template(call)
    ok(call("bind/profile_template", {"bind_list": [{"user_id": "fay",
                                                     "profile_template_id": tid}]}))
    add_sync(call, "fay", "My name is Fay Wong.")
    add_sync(call, "gus", "My name is Gus Grey.")
    assert profiles_in_search(call, "gus") == []
    (fay,) = profiles_in_search(call, "fay")
    assert field(fay, "Basic Info", "Name")["value"] == "Fay Wong"
    status, body = call("edit/profile", {"user_id": "gus", "profile_template_id": tid,
                                         "metadata": {"Basic Info": {"Name": {"value": "x"}}}})
    assert status == 404 and "bind/profile_template" in body["message"]


@pytest.mark.parametrize("route, body, named", [
    ("add/profile_template", {"name": " ", "metadata": TEMPLATE}, "name"),
    ("add/profile_template", {"name": "t", "metadata": {"A": {"B": {"C": {"D": {
        "value": ""}}}}}}, "deeper than 3"),
    ("add/profile_template", {"name": "t", "metadata": {"A": {"B": {"value": 3}}}},
     "metadata.A.B.value"),
    ("add/profile_template", {"name": "t", "metadata": {"A": "x"}}, "metadata.A"),
    ("bind/profile_template", {"bind_list": []}, "bind_list"),
    ("bind/profile_template", {"bind_list": [{"profile_template_id": "t"}] * 1},
     "exactly one of user_id or agent_id"),
    ("bind/profile_template", {"bind_list": [{"user_id": "u", "profile_template_id": "t"}]
                               * 21}, "bind_list"),
    ("edit/profile", {"user_id": "u", "profile_template_id": "t"}, "metadata or remove_fields"),
    ("edit/profile", {"user_id": "u", "agent_id": "a", "profile_template_id": "t",
                      "metadata": {}}, "exactly one of user_id or agent_id"),
    ("delete/profile", {"user_id": "u"}, "profile_template_id"),
])
def test_bad_profile_requests_are_422_naming_the_field(call, route, body, named):
    status, answer = call(route, body)
    assert status == 422 and named in answer["message"], answer


def test_removing_an_unknown_field_is_422_naming_it(call):
    tid = template(call)
    ok(call("bind/profile_template", {"bind_list": [{"user_id": "hal",
                                                     "profile_template_id": tid}]}))
    status, body = call("edit/profile", {"user_id": "hal", "profile_template_id": tid,
                                         "remove_fields": ["Shoe size"]})
    assert status == 422 and "remove_fields.0" in body["message"] and "Shoe size" in body[
        "message"]


def test_the_openapi_document_declares_the_new_routes_and_their_errors(runtime):
    doc = json.loads(create_app(runtime.services).get_openapi_json_schema())
    paths = doc["paths"]
    for route in ("add/profile_template", "get/profile_template", "list/profile_template",
                  "bind/profile_template", "edit/profile", "delete/profile",
                  "extract/memory", "rerank", "chat"):
        answers = paths[f"/v1/{route}"]["post"]["responses"]
        assert {"200", "400", "401", "413", "415", "422"} <= set(answers), route
    for route in ("get/profile_template", "bind/profile_template", "edit/profile",
                  "delete/profile"):
        assert "404" in paths[f"/v1/{route}"]["post"]["responses"], route
    chat = paths["/v1/chat"]["post"]["responses"]
    assert {"502", "503"} <= set(chat)
    assert set(chat["200"]["content"]) == {"application/json", "text/event-stream"}
    assert {"502", "503"} <= set(paths["/v1/extract/memory"]["post"]["responses"])
