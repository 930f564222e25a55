"""Dedupe through a real `engram serve` (rule-based extraction, int8 MiniLM) over HTTP:
distinct facts of one sentence shape stay searchable, a reversed preference still
supersedes (issue 12)."""

from __future__ import annotations

import pytest
import requests
from tests.conftest import EngramServer

pytestmark = pytest.mark.slow


def post(server: EngramServer, route: str, body: dict) -> dict:
    response = server.post(route, body)
    assert response.status_code == 200, response.text
    assert response.json()["code"] == 0, response.json()
    return response.json()["data"]


def add(server: EngramServer, user: str, content: str, chat_time: str | None = None) -> dict:
    data = post(server, "add/message", {
        "user_id": user, "conversation_id": "notes", "async_mode": False,
        "messages": [{"role": "user", "content": content, "chat_time": chat_time}]})
    assert data["status"] == "completed", data
    return data


def test_ten_notes_of_one_shape_are_ten_searchable_memories(engram_server):
    """The probe: each note embeds at cosine 0.95–0.97 to the others, and each was
    merged into the one before it; now each is its own memory."""
    user = "dedupe-museums"
    names = [f"Smuseum{n:02d}" for n in range(1, 11)]
    for n, name in enumerate(names, start=1):
        add(engram_server, user, f"Distinct note {n:02d}: I visited museum {name} today.")

    listed = post(engram_server, "get/memory", {"user_id": user, "size": 50})
    values = [m["memory_value"] for m in listed["memory_detail_list"]]
    assert listed["total"] == 10 and len(values) == 10, values
    assert all(m["version"] == 1 for m in listed["memory_detail_list"])
    found = {}
    for name in names:
        hits = post(engram_server, "search/memory", {"query": name, "user_id": user})
        found[name] = any(name in m["memory_value"] for m in hits["memory_detail_list"])
    assert found == dict.fromkeys(names, True)


def test_chinese_facts_naming_different_people_stay_apart(engram_server):
    user = "dedupe-zh"  # the two memories embed at cosine 0.93
    add(engram_server, user, "我的妹妹叫小红。")
    add(engram_server, user, "我的妹妹叫小明。")
    listed = post(engram_server, "get/memory", {"user_id": user, "size": 50})
    values = sorted(m["memory_value"] for m in listed["memory_detail_list"])
    assert values == ["用户的妹妹叫小明。", "用户的妹妹叫小红。"]


def test_a_repeated_note_still_updates_its_memory(engram_server):
    user = "dedupe-reworded"
    add(engram_server, user, "Distinct note 01: I visited museum Smuseum01 today.")
    add(engram_server, user, "Distinct note 02: I visited museum Smuseum02 today.")
    add(engram_server, user, "Distinct note 02: I really visited museum Smuseum02 today.")

    listed = post(engram_server, "get/memory", {"user_id": user, "size": 50})
    by_version = sorted((m["version"], m["memory_value"]) for m in listed["memory_detail_list"])
    assert len(by_version) == 2, by_version
    assert by_version[0][0] == 1 and "Smuseum01" in by_version[0][1]
    assert by_version[1][0] == 2 and "really visited museum Smuseum02" in by_version[1][1]


def test_the_spicy_food_preference_is_still_superseded(engram_server):
    user = "dedupe-spicy"
    add(engram_server, user, "I like spicy food", "2025-09-12 08:00:00")
    add(engram_server, user, "But I don't really like heavy oil, such as spicy hot pot, "
                             "Mao Xue Wang, etc.", "2025-09-25 12:00:00")

    listed = post(engram_server, "get/memory", {"user_id": user, "size": 50})
    (pref,) = listed["preference_detail_list"]
    assert pref["preference"].startswith("The user likes spicy food, but the user doesn't "
                                         "really like heavy oil"), pref
    response = requests.get(f"{engram_server.base_url}/get/memory/{pref['id']}",
                            headers=engram_server.headers(), timeout=30)
    detail = response.json()["data"]
    assert detail["version"] == 2
    (past,) = detail["history"]
    assert past["memory_value"] == "The user likes spicy food."
    assert past["change"] == "supersede"
