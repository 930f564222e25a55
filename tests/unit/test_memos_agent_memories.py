"""MemOS routes with an agent_id and no user_id: the agent's own memories, in a partition
no client user_id can name (services see the user "agent:<id>")."""

from __future__ import annotations

import pytest
from tests.in_process import api_caller


@pytest.fixture
def post(local_runtime):
    caller = api_caller(local_runtime.services)
    return lambda route, body, tenant="t": caller(route, body, tenant)


def add(owner: dict, text: str) -> dict:
    return {**owner, "conversation_id": "c1", "async_mode": False,
            "messages": [{"role": "user", "content": text}]}


def values(body: dict) -> list[str]:
    return [m["memory_value"] for m in body["data"]["memory_detail_list"]]


def test_an_agents_own_memories_are_apart_from_every_users(post):
    status, body = post("add/message", add({"agent_id": "helper"},
                                           "My answers cite the 2024 tax code of Portugal."))
    assert status == 200, body
    post("add/message", add({"user_id": "ana"}, "My flat is in the Alfama district."))
    status, body = post("search/memory", {"agent_id": "helper", "query": "which tax code?"})
    assert status == 200 and any("tax code" in v for v in values(body)), body
    assert not any("Alfama" in v for v in values(body))
    status, body = post("search/memory", {"user_id": "ana", "query": "which tax code?"})
    assert not any("tax code" in v for v in values(body)), body
    status, body = post("get/memory", {"agent_id": "helper"})
    assert status == 200 and body["data"]["total"] == 1, body
    # another tenant's agent of the same name has nothing
    status, body = post("search/memory", {"agent_id": "helper", "query": "tax code"},
                        tenant="other")
    assert status == 200 and values(body) == []


@pytest.mark.parametrize("user_id", ["agent:helper", "app:x/y/ana"])
def test_a_user_id_may_not_name_an_agents_partition(post, user_id):
    post("add/message", add({"agent_id": "helper"}, "My answers cite the 2024 tax code."))
    for route, body in (("search/memory", {"user_id": user_id, "query": "tax code"}),
                        ("get/memory", {"user_id": user_id}),
                        ("add/message", add({"user_id": user_id}, "I like tea."))):
        status, answer = post(route, body)
        assert status == 422 and "user_id" in answer["message"], (route, answer)
        assert "must not start with" in answer["message"]


@pytest.mark.parametrize("route,body", [
    ("add/message", add({}, "I like tea.")),
    ("search/memory", {"query": "tea"}),
    ("get/memory", {}),
])
def test_a_request_names_a_user_or_an_agent(post, route, body):
    status, answer = post(route, body)
    assert status == 422 and "give user_id, or agent_id" in answer["message"], answer
