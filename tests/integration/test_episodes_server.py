"""Episodes through a real `engram serve` (rule-based extraction, int8 MiniLM) over HTTP:
an add's statements told together are found by what the conversation was about, a replay
tells nothing twice, and deleting or editing a statement takes its episode with it."""

from __future__ import annotations

import time

import pytest
from tests.conftest import EngramServer
from tests.integration.test_dedupe_server import post

pytestmark = pytest.mark.slow

SESSION = [
    ("Melanie", "I just signed up for a pottery class yesterday. It's like therapy for me."),
    ("Caroline", "That's great! I went to a support group last week."),
    ("Melanie", "We went camping with my family two weekends ago."),
    ("Caroline", "Camping sounds so relaxing."),
    ("Melanie", "Yep. I'm off to go swimming with the kids now. Talk soon!"),
]


def add_session(server: EngramServer, user: str) -> None:
    data = post(server, "add/message", {
        "user_id": user, "conversation_id": "s1", "async_mode": False,
        "messages": [{"role": "user", "name": who, "content": f"{who}: {text}",
                      "chat_time": "2023-07-03 13:00:00", "message_id": f"D1:{n}"}
                     for n, (who, text) in enumerate(SESSION)]})
    assert data["status"] == "completed", data


def episodes(server: EngramServer, user: str) -> list[dict]:
    listed = post(server, "get/memory", {"user_id": user, "size": 50})
    return [m for m in listed["memory_detail_list"]
            if m["memory_key"].startswith(("Melanie, in conversation", "Caroline, in conv"))]


def test_an_episode_is_found_by_what_its_conversation_was_about(engram_server):
    user = "episodes-found"
    add_session(engram_server, user)
    told = {e["memory_key"]: e["memory_value"] for e in episodes(engram_server, user)}
    melanie = told["Melanie, in conversation on 3 July 2023"]
    assert "pottery class" in melanie and "camping" in melanie and "swimming" in melanie
    assert "Caroline" not in melanie  # one speaker's statements only

    hits = post(engram_server, "search/memory", {
        "user_id": user, "query": "What activities does Melanie partake in?",
        "memory_limit_number": 3})
    assert melanie in [m["memory_value"] for m in hits["memory_detail_list"]]

    add_session(engram_server, user)  # the same add again: nothing told twice
    assert len(episodes(engram_server, user)) == len(told)


@pytest.mark.parametrize("change", ["delete", "edit"])
def test_deleting_or_editing_a_statement_retires_its_episode(engram_server, change):
    user = f"episodes-{change}"
    add_session(engram_server, user)
    (melanie,) = [e for e in episodes(engram_server, user) if "swimming" in e["memory_value"]]
    listed = post(engram_server, "get/memory", {"user_id": user, "size": 50})
    (swim,) = [m for m in listed["memory_detail_list"]
               if "swimming" in m["memory_value"] and m["id"] != melanie["id"]]
    if change == "delete":
        post(engram_server, "delete/memory", {"memory_ids": [swim["id"]]})
    else:
        post(engram_server, "update/memory", {"memory_id": swim["id"],
                                              "content": "Melanie is off to the gym."})

    assert melanie["id"] not in [e["id"] for e in episodes(engram_server, user)]
    hits = post(engram_server, "search/memory", {"user_id": user, "query": "swimming kids"})
    assert all("swimming" not in m["memory_value"] for m in hits["memory_detail_list"])


def test_retitling_a_statement_or_resending_its_words_keeps_its_episode(engram_server):
    user = "episodes-retitled"
    add_session(engram_server, user)
    (melanie,) = [e for e in episodes(engram_server, user) if "swimming" in e["memory_value"]]
    listed = post(engram_server, "get/memory", {"user_id": user, "size": 50})
    (swim,) = [m for m in listed["memory_detail_list"]
               if "swimming" in m["memory_value"] and m["id"] != melanie["id"]]
    post(engram_server, "update/memory", {"memory_id": swim["id"], "title": "Swimming"})
    post(engram_server, "update/memory", {"memory_id": swim["id"],
                                          "content": swim["memory_value"]})
    assert melanie["id"] in [e["id"] for e in episodes(engram_server, user)]


def test_the_same_add_sent_at_once_by_five_clients_tells_one_episode(engram_server):
    from concurrent.futures import ThreadPoolExecutor

    user = "episodes-replayed"
    body = {"user_id": user, "conversation_id": "s1", "async_mode": True,
            "messages": [{"role": "user", "name": who, "content": f"{who}: {text}",
                          "message_id": f"D1:{n}"} for n, (who, text) in enumerate(SESSION)]}
    with ThreadPoolExecutor(5) as pool:
        tasks = list(pool.map(lambda _: post(engram_server, "add/message", body)["task_id"],
                              range(5)))
    for task_id in tasks:
        for _ in range(300):
            status = post(engram_server, "get/status", {"task_id": task_id})
            if status["status"] in ("completed", "failed"):
                break
            time.sleep(0.05)
        assert status["status"] == "completed", status
    assert sorted(e["memory_key"] for e in episodes(engram_server, user)) == [
        "Caroline, in conversation", "Melanie, in conversation"]
