"""What `engram serve` acknowledged, it keeps, once: many writers on one conversation,
replays (the same message ids, the same Idempotency-Key), and a kill -9 in the middle.
Real HTTP against real servers."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from tests.conftest import EngramServer, server_env

pytestmark = pytest.mark.slow


def add(server: EngramServer, body: dict, key: str | None = None) -> requests.Response:
    headers = server.headers()
    if key:
        headers["Idempotency-Key"] = key
    return requests.post(f"{server.base_url}/add/message", json=body, headers=headers,
                         timeout=60)


def stored_texts(server: EngramServer, user: str, conversation: str) -> list[str]:
    body = server.post("get/message", {"user_id": user, "conversation_id": conversation,
                                       "message_limit_number": 1000}).json()
    return [m["content"] for m in body["data"]["message_detail_list"]]


@pytest.mark.parametrize("round_", range(3))
def test_ten_threads_adding_to_one_conversation_lose_nothing(engram_server, round_):
    user, conversation = f"probe-writers-{round_}", "shared"
    sent = [f"Distinct note {n:02d}-{i}: I visited museum M{n}{i} today."
            for n in range(10) for i in range(5)]

    def send(text: str) -> dict:
        response = add(engram_server, {"user_id": user, "conversation_id": conversation,
                                       "messages": [{"role": "user", "content": text}]})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(send, sent))
    assert all(a["success"] for a in answers)
    assert sorted(stored_texts(engram_server, user, conversation)) == sorted(sent)


def test_fifty_replays_of_one_add_make_one_task_and_no_extra_rows(engram_server):
    body = {"user_id": "probe-replay", "conversation_id": "c", "messages": [
        {"role": "user", "content": "I keep bees on my roof", "message_id": "r-1"},
        {"role": "assistant", "content": "How many hives?", "message_id": "r-2"},
        {"role": "user", "content": "Three hives", "message_id": "r-3"}]}
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: add(engram_server, body), range(50)))
    ok = [a.json()["data"]["task_id"] for a in answers if a.status_code == 200]
    # a copy sent while the first was still being accepted may be told to retry (409)
    assert {a.status_code for a in answers} <= {200, 409} and len(set(ok)) == 1
    assert stored_texts(engram_server, "probe-replay", "c") == [
        "I keep bees on my roof", "How many hives?", "Three hives"]
    assert engram_server.wait_task(ok[0])["status"] == "completed"


def test_one_task_per_idempotency_key(engram_server):
    body = {"user_id": "probe-key", "conversation_id": "c",
            "messages": [{"role": "user", "content": "My bike is a green Brompton"}]}
    answers = [add(engram_server, body, key="probe-key-1") for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["data"]["task_id"] for a in answers}) == 1
    assert stored_texts(engram_server, "probe-key", "c") == ["My bike is a green Brompton"]
    other = add(engram_server, {**body, "messages": [{"role": "user", "content": "x"}]},
                key="probe-key-1")
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["message"]


def test_kill_9_mid_ingest_keeps_every_acknowledged_add_and_a_replay_finds_its_task(tmp_path):
    server = EngramServer(data_dir=tmp_path / "data", env=server_env())
    server.start()
    try:
        acknowledged: dict[str, str] = {}  # text → task id
        stop = threading.Event()

        def writer(n: int) -> None:
            i = 0
            while not stop.is_set():
                text = f"Crash note {n}-{i}: the locker code is {n}{i:03d}."
                try:
                    response = add(server, {"user_id": "crash", "conversation_id": "c",
                                            "messages": [{"role": "user", "content": text}]},
                                   key=f"crash-{n}-{i}")
                except requests.RequestException:
                    return  # the server died mid-request: not acknowledged
                if response.status_code == 200:
                    acknowledged[text] = response.json()["data"]["task_id"]
                i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        stop.set()
        for t in threads:
            t.join()
        assert len(acknowledged) >= 20

        server.start()  # resumes the tasks the dead process left waiting or running
        for text, task_id in acknowledged.items():
            assert server.wait_task(task_id, timeout=120)["status"] == "completed", text
        stored = stored_texts(server, "crash", "c")
        assert set(acknowledged) <= set(stored)
        assert len(stored) == len(set(stored))  # nothing written twice
        # a client that never heard back sends its add again: the same task, no new rows
        text, task_id = next(iter(acknowledged.items()))
        n, i = text.split()[2].rstrip(":").split("-")
        again = add(server, {"user_id": "crash", "conversation_id": "c",
                             "messages": [{"role": "user", "content": text}]},
                    key=f"crash-{n}-{i}")
        assert again.status_code == 200 and again.json()["data"]["task_id"] == task_id
        assert len(stored_texts(server, "crash", "c")) == len(stored)
    finally:
        server.stop()
