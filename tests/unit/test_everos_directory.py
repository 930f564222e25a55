"""EverOS v1 groups, senders and settings through the real resolver and services (SQLite
in a temp dir): what the SDK's models read, the tie to /memories/group, partitions."""

from __future__ import annotations

import pytest
from tests.in_process import api_caller

T0 = 1_766_041_646_311


@pytest.fixture
def call(local_runtime):
    caller = api_caller(local_runtime.services, prefix="/api/v1")

    def call(method: str, route: str, body=None, tenant: str = "tenant-a"):
        return caller(route, body, tenant, method)

    return call


def test_group_upsert_get_patch_and_another_tenant(call):
    status, body = call("POST", "groups", {"group_id": "g1", "name": "Team"})
    assert status == 200, body
    group = body["data"]
    assert group["group_id"] == "g1" and group["name"] == "Team"
    assert group["description"] is None and group["created_at"].endswith("Z")
    status, body = call("POST", "groups", {"group_id": "g1", "description": "the team"})
    assert body["data"]["name"] == "Team" and body["data"]["description"] == "the team"
    status, body = call("PATCH", "groups/g1", {"name": "Core team"})
    assert status == 200 and body["data"]["name"] == "Core team", body
    assert body["data"]["created_at"] == group["created_at"]
    status, body = call("GET", "groups/g1")
    assert status == 200 and body["data"]["description"] == "the team"
    # another tenant's group id is not found, to read or to change
    assert call("GET", "groups/g1", tenant="tenant-b")[0] == 404
    status, body = call("PATCH", "groups/g1", {"name": "x"}, tenant="tenant-b")
    assert status == 404 and "group g1 not found" in body["message"]
    assert call("GET", "groups/g1", tenant="tenant-a")[1]["data"]["name"] == "Core team"


def test_group_patch_needs_a_field_and_create_needs_the_id(call):
    call("POST", "groups", {"group_id": "g1"})
    status, body = call("PATCH", "groups/g1", {})
    assert status == 422 and "name" in body["message"], body
    status, body = call("POST", "groups", {"name": "no id"})
    assert status == 422 and "group_id" in body["message"], body
    status, body = call("POST", "groups", {"group_id": "g\u0000"})
    assert status == 422 and "group_id" in body["message"], body
    assert call("GET", "groups/missing")[0] == 404


def test_senders_and_their_names_in_group_memories(call):
    status, body = call("POST", "senders", {"sender_id": "u-alice", "name": "Alice"})
    assert status == 200 and body["data"] == {**body["data"], "sender_id": "u-alice",
                                              "name": "Alice"}
    status, body = call("POST", "memories/group", {"group_id": "trip", "async_mode": False,
                                                   "messages": [
        {"role": "user", "timestamp": T0, "sender_id": "u-alice",
         "content": "I booked the team offsite in Lisbon."},
        {"role": "user", "timestamp": T0 + 1, "sender_id": "u-bob", "sender_name": "Bob",
         "content": "I will bring the projector."}]})
    assert status == 200, body
    # the registered name speaks for a message that carries only the id
    status, body = call("POST", "memories/search", {"filters": {"group_id": "trip"},
                                                    "query": "offsite Lisbon"})
    assert any("Alice" in e["episode"] and "Lisbon" in e["episode"]
               for e in body["data"]["episodes"]), body
    # the group add made the group, its members and the new sender (named by the message)
    status, body = call("GET", "groups/trip")
    assert status == 200 and body["data"]["sender_ids"] == ["u-alice", "u-bob"], body
    status, body = call("GET", "senders/u-bob")
    assert status == 200 and body["data"]["name"] == "Bob", body
    status, body = call("PATCH", "senders/u-bob", {"name": "Robert"})
    assert status == 200 and body["data"]["name"] == "Robert"
    assert call("GET", "senders/u-bob", tenant="tenant-b")[0] == 404
    assert call("PATCH", "senders/u-bob", {"name": "x"}, tenant="tenant-b")[0] == 404
    status, body = call("PATCH", "senders/u-bob", {"name": ""})
    assert status == 422 and "name" in body["message"]
    # erasing the group's data forgets who spoke in it; the group stays
    status, body = call("POST", "memories/delete", {"group_id": "trip"})
    assert status == 200, body
    assert call("GET", "groups/trip")[1]["data"]["sender_ids"] == []


def test_settings_defaults_partial_update_and_validation(call):
    status, body = call("GET", "settings")
    assert status == 200, body
    first = body["data"]
    assert first["timezone"] == "UTC" and first["extraction_mode"] == "default"
    status, body = call("PUT", "settings", {"timezone": "Europe/Paris",
                                            "boundary_detection_timeout": 600})
    assert status == 200, body
    data = body["data"]
    assert data["timezone"] == "Europe/Paris" and data["boundary_detection_timeout"] == 600
    assert data["extraction_mode"] == "default" and data["created_at"] == first["created_at"]
    status, body = call("PUT", "settings", {"llm_custom_setting": {
        "extraction": {"provider": "openai", "model": "gpt-4o-mini"}}})
    assert body["data"]["llm_custom_setting"] == {
        "extraction": {"provider": "openai", "model": "gpt-4o-mini"}}
    assert body["data"]["timezone"] == "Europe/Paris"  # untouched
    status, body = call("PUT", "settings", {"llm_custom_setting": None})
    assert body["data"]["llm_custom_setting"] is None
    for bad, field in (({"timezone": "Mars/Olympus"}, "timezone"),
                       ({"extraction_mode": "turbo"}, "extraction_mode"),
                       ({"boundary_detection_timeout": -1}, "boundary_detection_timeout"),
                       ({"llm_custom_setting": {"extraction": {"provider": "x"}}},
                        "llm_custom_setting.extraction.model")):
        status, body = call("PUT", "settings", bad)
        assert status == 422 and field in body["message"], (bad, body)
    # settings are per tenant
    assert call("GET", "settings", tenant="tenant-b")[1]["data"]["timezone"] == "UTC"
