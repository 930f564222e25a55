"""A real `engram serve` over HTTP: the seed snippets as the MemOS docs write them,
first start, restart persistence, auth, limits and concurrent clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
import requests
from tests.conftest import EngramServer, server_env
from tests.seeds import (
    HISTORY_EN,
    HISTORY_ZH,
    QUESTIONNAIRE_EN,
    QUESTIONNAIRE_ZH,
    QUICK_START_EN,
    QUICK_START_ZH,
)

from engram.client import EngramClient, EngramClientError

pytestmark = pytest.mark.slow

def seed_post(server: EngramServer, route: str, data: dict) -> dict:
    """Exactly how the seed snippets call the API: requests + json.dumps + Token header."""
    os.environ["MEMOS_API_KEY"] = server.api_key
    os.environ["MEMOS_BASE_URL"] = server.base_url
    headers = {"Content-Type": "application/json",
               "Authorization": f"Token {os.environ['MEMOS_API_KEY']}"}
    url = f"{os.environ['MEMOS_BASE_URL']}/{route}"
    res = requests.post(url=url, headers=headers, data=json.dumps(data))
    result = res.json()
    assert res.status_code == 200, result
    assert result["code"] == 0 and result["message"] == "ok", result
    return result["data"]


@pytest.mark.parametrize("messages, query, expected", [
    (QUICK_START_EN, "Which hotel did I choose in Guangzhou?", "7 Days Inn"),
    (QUICK_START_ZH, "Which hotel did I choose in Guangzhou?", "七天"),
])
def test_quick_start_then_search_puts_the_choice_first(engram_server, messages, query, expected):
    user = f"memos_user_123_{expected.replace(' ', '')}"
    data = seed_post(engram_server, "add/message",
                     {"user_id": user, "conversation_id": "0610", "messages": messages})
    assert data["status"] == "waiting" and data["task_id"]
    assert engram_server.wait_task(data["task_id"])["status"] == "completed"
    found = seed_post(engram_server, "search/memory",
                      {"query": query, "user_id": user, "conversation_id": "0610"})
    first = found["memory_detail_list"][0]
    assert expected in first["memory_value"], found["memory_detail_list"]
    if expected == "七天":
        assert "用户" in first["memory_value"]  # kept in Chinese, third person
    else:
        assert first["memory_value"].startswith("The user")
    assert set(first) >= {"id", "memory_key", "memory_value", "memory_type", "create_time",
                          "conversation_id", "status", "confidence", "tags", "update_time",
                          "relativity", "sources", "info"}
    assert first["sources"], "a memory names the messages it came from"


@pytest.mark.parametrize("text", ["I ran 5 kilometers this morning, and my knees are a bit sore",
                                  "我今天早上跑了5公里，膝盖有点酸"])
def test_real_time_add_one_message_at_a_time(engram_server, text):
    user = f"realtime-{len(text)}"
    for role, content in (("user", text), ("assistant", "Take it easy tomorrow.")):
        data = seed_post(engram_server, "add/message", {
            "user_id": user, "conversation_id": "memos_conversation_123",
            "messages": [{"role": role, "content": content}]})
        assert engram_server.wait_task(data["task_id"])["status"] == "completed"
    found = seed_post(engram_server, "search/memory",
                      {"query": "knees sore running", "user_id": user})
    values = " ".join(m["memory_value"] for m in found["memory_detail_list"])
    assert "5" in values


@pytest.mark.parametrize("messages, old, new", [
    (HISTORY_EN, "likes spicy food", "heavy oil"),
    (HISTORY_ZH, "喜欢吃辣", "重油"),
])
def test_history_import_refines_the_older_preference(engram_server, messages, old, new):
    user = f"history-{new}"
    data = seed_post(engram_server, "add/message",
                     {"user_id": user, "conversation_id": "hist", "messages": messages})
    done = engram_server.wait_task(data["task_id"])
    assert done["status"] == "completed"
    found = seed_post(engram_server, "search/memory", {"query": "spicy food 辣", "user_id": user})
    prefs = found["preference_detail_list"]
    current = [p for p in prefs if new in p["preference"]]
    assert current, prefs
    assert all(p["status"] == "activated" for p in prefs)
    assert found["preference_note"]
    memory = seed_post(engram_server, "get/memory", {"user_id": user})
    listed = {p["id"]: p for p in memory["preference_detail_list"]}
    assert current[0]["id"] in listed


@pytest.mark.parametrize("content, query, expected", [
    (QUESTIONNAIRE_EN, "What movies does the user like?", "Sci-Fi"),
    (QUESTIONNAIRE_ZH, "用户喜欢什么电影", "科幻"),
])
def test_questionnaire_becomes_preferences(engram_server, content, query, expected):
    user = f"questionnaire-{expected}"
    data = seed_post(engram_server, "add/message", {
        "user_id": user, "conversation_id": "onboarding",
        "messages": [{"role": "user", "content": content}]})
    assert engram_server.wait_task(data["task_id"])["status"] == "completed"
    found = seed_post(engram_server, "search/memory", {"query": query, "user_id": user})
    assert expected in found["preference_detail_list"][0]["preference"]


def test_wrong_or_missing_key_is_401(engram_server):
    response = engram_server.post("search/memory", {"query": "x", "user_id": "u"},
                                  key="not-a-key")
    assert response.status_code == 401 and response.json()["code"] == 401
    response = requests.post(f"{engram_server.base_url}/search/memory",
                             json={"query": "x", "user_id": "u"})
    assert response.status_code == 401 and "Authorization" in response.json()["message"]


def test_bearer_scheme_is_accepted(engram_server):
    response = requests.post(f"{engram_server.base_url}/search/memory",
                             json={"query": "x", "user_id": "u"},
                             headers={"Authorization": f"Bearer {engram_server.api_key}"})
    assert response.status_code == 200


def test_oversized_body_is_413(engram_server):
    body = b"{" + b" " * (10 * 1024 * 1024 + 1) + b"}"
    response = requests.post(f"{engram_server.base_url}/add/message", data=body,
                             headers=engram_server.headers())
    assert response.status_code == 413 and response.json()["code"] == 413


def test_docs_and_openapi_are_served(engram_server):
    doc = requests.get(f"{engram_server.base_url}/openapi.json").json()
    assert "/v1/search/memory" in doc["paths"]
    page = requests.get(f"{engram_server.base_url}/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()


def test_concurrent_writers_and_searchers_lose_nothing(engram_server):
    client = EngramClient(engram_server.base_url, engram_server.api_key)
    errors: list[Exception] = []
    task_ids: list[str] = []
    lock = threading.Lock()

    facts = {"violin": "I play the violin every weekend", "Oslo": "My sister lives in Oslo",
             "peanuts": "I am allergic to peanuts", "van": "I drive a blue van to work",
             "1990": "I was born in 1990"}

    def writer(n: int) -> None:
        try:
            for word, fact in facts.items():
                data = client.add_message(f"conc-{n}", "c", [{"role": "user", "content": fact}])
                with lock:
                    task_ids.append(data["task_id"])
                client.search(word, f"conc-{n}")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(task_ids) == 30
    assert all(client.wait(t)["status"] == "completed" for t in task_ids)
    for n in range(6):
        memories = engram_server.post("get/memory", {"user_id": f"conc-{n}", "size": 50}).json()
        values = " ".join([m["memory_value"] for m in memories["data"]["memory_detail_list"]] +
                          [p["preference"] for p in memories["data"]["preference_detail_list"]])
        assert all(word in values for word in facts), values
        messages = engram_server.post("get/message", {"user_id": f"conc-{n}",
                                                      "conversation_id": "c"}).json()
        assert len(messages["data"]["message_detail_list"]) == 5


def test_first_start_creates_a_key_and_restart_keeps_everything(fresh_server, tmp_path):
    env = server_env()
    env.pop("ENGRAM_API_KEYS")
    server = EngramServer(data_dir=tmp_path / "first", env=env)
    try:
        server.start()
        key = (server.data_dir / "api_key").read_text().strip()
        assert key.startswith("eng_")
        assert (server.data_dir / "api_key").stat().st_mode & 0o777 == 0o600
        printed = server.log_path.read_text()
        assert key in printed and "curl" in printed
        server.api_key = key

        client = EngramClient(server.base_url, key)
        done = client.wait(client.add_message("persist", "c", [
            {"role": "user", "content": "I adopted a greyhound named Pixel"}])["task_id"])
        pending = client.add_message("persist", "c", [
            {"role": "user", "content": "I also grow tomatoes on my balcony"}])
        server.restart()

        assert server.data_dir.joinpath("api_key").read_text().strip() == key
        assert server.log_path.read_text().count("Created an API key") == 1
        client = EngramClient(server.base_url, key)
        assert client.get_status(done["task_id"])["status"] == "completed"
        assert client.wait(pending["task_id"])["status"] == "completed"
        values = " ".join(m["memory_value"] for m in
                          client.search("greyhound dog", "persist")["memory_detail_list"])
        assert "Pixel" in values
        values = " ".join(m["memory_value"] for m in
                          client.search("tomatoes balcony", "persist")["memory_detail_list"])
        assert "tomatoes" in values
    finally:
        server.stop()


def test_api_keys_from_environment_map_to_tenants(engram_server):
    a = EngramClient(engram_server.base_url, engram_server.api_key)
    b = EngramClient(engram_server.base_url, engram_server.other_key)
    task = a.add_message("shared-name", "c", [{"role": "user", "content": "I speak Finnish"}],
                         async_mode=False)
    assert task["status"] == "completed"
    assert b.search("Finnish", "shared-name")["memory_detail_list"] == []
    with pytest.raises(EngramClientError) as err:
        b.get_status(task["task_id"])
    assert err.value.status == 404


def test_cli_add_and_search(engram_server):
    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "engram.cli", *args, "--url", engram_server.base_url,
             "--api-key", engram_server.api_key],
            env=engram_server.env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    added = json.loads(cli("add", "--user", "cli-user", "--wait", "I keep a sourdough starter"))
    assert added["status"] == "completed" and added["memory_views"]["added"]
    printed = cli("search", "--user", "cli-user", "sourdough bread")
    assert "sourdough" in printed.splitlines()[0]
