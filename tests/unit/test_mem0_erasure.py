"""mem0's entities list (users()) names users: erasing a user by any dialect's route
forgets them there too; a mem0 user_id may not name another partition, and a read names
at most 100 users."""

from __future__ import annotations

from tests.in_process import api_caller


def test_erasing_a_user_anywhere_drops_them_from_mem0s_users(local_runtime):
    call = api_caller(local_runtime.services, prefix="")
    for user in ("zoe", "yan"):
        status, body = call("v3/memories/add/", {
            "messages": [{"role": "user", "content": f"I am {user} and I collect stamps."}],
            "user_id": user, "async_mode": False})
        assert status == 200, body
    status, body = call("v1/entities/", method="GET")
    assert status == 200 and {e["name"] for e in body["results"]} == {"zoe", "yan"}, body
    status, body = call("v1/delete/memory", {"user_id": "zoe"})  # MemOS's erasure
    assert status == 200, body
    status, body = call("v1/entities/", method="GET")
    assert [e["name"] for e in body["results"]] == ["yan"], body


def test_a_mem0_user_id_may_not_name_an_agent_partition(local_runtime):
    call = api_caller(local_runtime.services, prefix="")
    status, body = call("v3/memories/add/", {
        "messages": [{"role": "user", "content": "I like tea."}], "user_id": "agent:bob",
        "async_mode": False})
    assert status == 422 and "must not start with" in str(body), body
    status, body = call("v3/memories/search/", {"query": "tea",
                                                "filters": {"user_id": "run:r1"}})
    assert status == 422 and "must not start with" in str(body), body


def test_a_read_names_at_most_a_hundred_users(local_runtime):
    call = api_caller(local_runtime.services, prefix="")
    many = {"user_id": {"in": [f"u{i}" for i in range(101)]}}
    status, body = call("v3/memories/search/", {"query": "tea", "filters": many})
    assert status == 422 and "filters.user_id: 101 values" in str(body), body
    status, body = call("v3/memories/search/", {"query": "tea", "filters": {
        "user_id": {"in": [f"u{i}" for i in range(100)]}}})
    assert status == 200, body
