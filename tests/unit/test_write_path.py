"""Acknowledged writes are kept, once: messages keyed by their id, replays recognised
(Idempotency-Key, or message ids and content), a retried accept finding its own task.
Through the real resolver and services, SQLite in a temp dir, a hashing embedder."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
from tests.fakes.embedder import HashingEmbedder

from engram.adapters.sqlite_store import SqliteIdempotencyLayer, SqliteStore
from engram.api.app import create_app
from engram.config import Settings
from engram.local.runtime import build_local_runtime
from engram.local.server import LambdaContext, proxy_event
from engram.models.domain import MessageRecord, Role


@pytest.fixture
def runtime(tmp_path):
    rt = build_local_runtime(Settings(data_dir=tmp_path, api_keys={"k": "tenant-a"}),
                             embedder=HashingEmbedder())
    yield rt
    rt.close()


@pytest.fixture
def call(runtime):
    apps = threading.local()  # a resolver holds the current event: one per thread

    def call(route: str, body, key: str | None = None, tenant: str = "tenant-a"):
        if not hasattr(apps, "app"):
            apps.app = create_app(runtime.services)
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        event = proxy_event("POST", f"/v1/{route}", headers, json.dumps(body), tenant,
                            "127.0.0.1")
        response = apps.app.resolve(event, LambdaContext())
        return response["statusCode"], json.loads(response["body"])

    return call


def messages_of(call, user: str, conversation: str = "c") -> list[dict]:
    status, body = call("get/message", {"user_id": user, "conversation_id": conversation,
                                        "message_limit_number": 1000})
    assert status == 200, body
    return body["data"]["message_detail_list"]


def add(user: str, *texts: str, ids: list[str] | None = None, **extra) -> dict:
    return {"user_id": user, "conversation_id": "c", **extra,
            "messages": [{"role": "user", "content": t,
                          **({"message_id": ids[i]} if ids else {})}
                         for i, t in enumerate(texts)]}


def test_concurrent_adds_to_one_conversation_keep_every_message(call):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(5):
                status, body = call("add/message", add("writers", f"note {n}-{i} from writer"))
                assert status == 200 and body["data"]["success"], body
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    texts = sorted(m["content"] for m in messages_of(call, "writers"))
    assert texts == sorted(f"note {n}-{i} from writer" for n in range(10) for i in range(5))


def test_the_same_message_ids_sent_again_make_one_task_and_no_new_rows(call):
    body = add("replayer", "I moved to Porto", "I work at a bakery", ids=["m1", "m2"])
    answers = [call("add/message", body) for _ in range(20)]
    assert all(status == 200 for status, _ in answers)
    assert len({b["data"]["task_id"] for _, b in answers}) == 1
    assert [m["content"] for m in messages_of(call, "replayer")] == [
        "I moved to Porto", "I work at a bakery"]


def test_the_same_ids_with_other_content_is_a_new_add_that_replaces_those_messages(call):
    _, first = call("add/message", add("editor", "I live in Lisbon", ids=["m1"]))
    _, second = call("add/message", add("editor", "I live in Porto", ids=["m1"]))
    assert first["data"]["task_id"] != second["data"]["task_id"]
    assert [m["content"] for m in messages_of(call, "editor")] == ["I live in Porto"]


def test_adds_without_ids_or_key_are_never_merged(call):
    """"ok" said twice is two messages: without an id or a key there is no replay to see."""
    tasks = {call("add/message", add("plain", "ok"))[1]["data"]["task_id"] for _ in range(3)}
    assert len(tasks) == 3
    assert len(messages_of(call, "plain")) == 3


def test_one_task_per_idempotency_key(call):
    body = add("keyed", "I adopted a cat named Miso")
    answers = [call("add/message", body, key="order-17") for _ in range(5)]
    assert {b["data"]["task_id"] for _, b in answers} == {answers[0][1]["data"]["task_id"]}
    assert len(messages_of(call, "keyed")) == 1

    status, other = call("add/message", add("keyed", "something else"), key="order-17")
    assert status == 422 and "Idempotency-Key" in other["message"], other
    status, fresh = call("add/message", add("keyed", "something else"), key="order-18")
    assert status == 200 and fresh["data"]["task_id"] != answers[0][1]["data"]["task_id"]


def test_a_key_is_scoped_to_its_tenant(call):
    _, a = call("add/message", add("u", "fact of tenant a"), key="shared-key")
    _, b = call("add/message", add("u", "fact of tenant b"), key="shared-key", tenant="tenant-b")
    assert a["data"]["task_id"] != b["data"]["task_id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "has space"])
def test_a_malformed_key_is_refused_naming_the_header(call, key):
    status, body = call("add/message", add("u", "hello"), key=key)
    assert status == 422 and "idempotency-key" in body["message"].lower(), body


def test_a_sync_replay_returns_the_first_answer(call):
    body = add("sync", "I like green tea", ids=["t1"], async_mode=False)
    status, first = call("add/message", body)
    assert status == 200 and first["data"]["status"] == "completed"
    status, again = call("add/message", body)
    assert again["data"] == first["data"]


def test_feedback_takes_an_idempotency_key(call):
    body = {"user_id": "fb", "feedback_content": "I moved to Porto, not Lisbon"}
    tasks = {call("add/feedback", body, key="fb-1")[1]["data"]["task_id"] for _ in range(3)}
    assert len(tasks) == 1


def test_repeated_message_ids_in_one_add_are_refused(call):
    status, body = call("add/message", add("dup", "one", "two", ids=["m1", "m1"]))
    assert status == 422 and "messages[1].message_id" in body["message"], body
    assert messages_of(call, "dup") == []


def test_an_accept_retried_after_the_workflow_failed_to_start_finds_its_task(call, runtime):
    """The AWS case: StartExecution failed after the task row was written; the client's
    retry (same key) must find that task, not make another, and start it."""
    ingest = runtime.services.ingest
    real_start = ingest.workflow.start
    calls = []

    def failing_once(ref, attempt=1):
        calls.append(ref.task_id)
        if len(calls) == 1:
            raise RuntimeError("StartExecution: service unavailable")
        real_start(ref, attempt)

    ingest.workflow.start = failing_once
    body = add("retried", "My dog is called Rex", "He is a beagle")
    status, failed = call("add/message", body, key="retry-me")
    assert status == 500, failed
    status, ok = call("add/message", body, key="retry-me")
    assert status == 200, ok
    assert calls == [ok["data"]["task_id"]] * 2  # the same task both times
    assert len(messages_of(call, "retried")) == 2
    status, done = call("get/status", {"task_id": ok["data"]["task_id"]})
    for _ in range(100):
        if done["data"]["status"] in ("completed", "failed"):
            break
        time.sleep(0.05)
        status, done = call("get/status", {"task_id": ok["data"]["task_id"]})
    assert done["data"]["status"] == "completed", done
    stored = runtime.store.get_many("tenant-a", runtime.store.ids_for_user("tenant-a", "retried"))
    # the retry rewrote the first attempt's fast-path turns rather than adding two more
    assert sum(m.memory_type == "WorkingMemory" for m in stored) == 2


def test_concurrent_copies_of_one_keyed_add_make_one_task(call):
    answers: list[tuple[int, dict]] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait()
        answers.append(call("add/message", add("racing", "I collect stamps"), key="race"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tasks = {b["data"]["task_id"] for status, b in answers if status == 200}
    assert len(tasks) == 1
    # a copy that arrives while the first is being accepted is told to retry (409)
    assert {status for status, _ in answers} <= {200, 409}
    assert len(messages_of(call, "racing")) == 1


def test_messages_are_listed_by_when_they_were_said(call):
    call("add/message", {"user_id": "times", "conversation_id": "c", "messages": [
        {"role": "user", "content": "second", "chat_time": "2025-01-02 10:00:00"}]})
    call("add/message", {"user_id": "times", "conversation_id": "c", "messages": [
        {"role": "user", "content": "first", "chat_time": "2025-01-01 10:00:00"},
        {"role": "user", "content": "third", "chat_time": "2025-01-03 10:00:00"}]})
    assert [m["content"] for m in messages_of(call, "times")] == ["first", "second", "third"]


# --- the stores -------------------------------------------------------------------------

def test_a_version_0_database_keeps_its_messages_in_order(tmp_path):
    path = tmp_path / "engram.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE messages (tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, "
                "conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, message_id TEXT NOT NULL, "
                "body TEXT NOT NULL, PRIMARY KEY (tenant_id, user_id, conversation_id, seq))")
    created = 1_700_000_000_000
    for seq in (2, 0, 1):  # written out of order; seq was the order
        record = MessageRecord(tenant_id="t", user_id="u", conversation_id="c",
                               message_id=f"m{seq}", seq=seq, role=Role.user,
                               text=f"turn {seq}", create_time=created + seq)
        old.execute("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                    ("t", "u", "c", seq, f"m{seq}", record.model_dump_json()))
    old.commit()
    old.close()

    store = SqliteStore(path)
    assert [m.text for m in store.list_conversation("t", "u", "c", 10)] == [
        "turn 0", "turn 1", "turn 2"]
    store.close()
    store = SqliteStore(path)  # opening again migrates nothing twice
    assert len(store.list_conversation("t", "u", "c", 10)) == 3
    store.close()


def test_a_claim_left_in_progress_by_a_dead_process_is_forgotten_at_start(tmp_path):
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyItemAlreadyExistsError,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    store = SqliteStore(tmp_path / "engram.db")
    layer = SqliteIdempotencyLayer(store)
    far = int(time.time()) + 3600
    layer._put_record(DataRecord("k1", status="INPROGRESS", expiry_timestamp=far,
                                 in_progress_expiry_timestamp=int(time.time() * 1000) + 60_000))
    with pytest.raises(IdempotencyItemAlreadyExistsError):  # still claimed
        layer._put_record(DataRecord("k1", status="INPROGRESS", expiry_timestamp=far))
    layer._put_record(DataRecord("k2", status="INPROGRESS", expiry_timestamp=far,
                                 in_progress_expiry_timestamp=int(time.time() * 1000) - 1))
    layer._put_record(DataRecord("k2", status="INPROGRESS", expiry_timestamp=far))  # lapsed
    layer._update_record(DataRecord("k2", status="COMPLETED", expiry_timestamp=far,
                                    response_data="{}"))

    assert layer.forget_in_progress() == 1  # k1; k2 completed stays
    assert layer._get_record("k2").status == "COMPLETED"
    layer._put_record(DataRecord("k1", status="INPROGRESS", expiry_timestamp=far))
    store.close()


def test_a_search_racing_the_task_that_retires_its_turn_still_finds_the_fact(call, runtime):
    """The index answers with the fast-path turn; before the turn is read back, its task
    completes (new memory indexed, turn retired). The search must not come back empty."""
    held = []
    runtime.services.ingest.workflow = type("Held", (), {
        "start": lambda self, ref, attempt=1: held.append(ref)})()
    status, _ = call("add/message", add("racer", "My dog is called Rex"))
    assert status == 200 and len(held) == 1
    index = runtime.services.search.index
    answer = index.search_groups

    def answer_then_complete(*args, **kwargs):
        hits = answer(*args, **kwargs)
        if held:
            runtime.workflow.run(held.pop())  # the task finishes in between
        return hits

    index.search_groups = answer_then_complete
    status, body = call("search/memory", {"query": "dog Rex", "user_id": "racer"})
    values = [m["memory_value"] for m in body["data"]["memory_detail_list"]]
    assert any("Rex" in v for v in values), values


def test_an_add_replayed_after_its_user_was_erased_is_taken_anew(call, runtime):
    body = add("erased", "My locker code is 4411", ids=["e1"])
    _, first = call("add/message", body)
    runtime.services.memories.erase_user("tenant-a", "erased")
    status, again = call("add/message", body)
    assert status == 200 and again["data"]["task_id"] == first["data"]["task_id"]
    status, task = call("get/status", {"task_id": again["data"]["task_id"]})
    assert status == 200, task  # a task again, not the erased one's 404
    assert [m["content"] for m in messages_of(call, "erased")] == ["My locker code is 4411"]


def test_an_add_written_while_its_user_is_erased_leaves_nothing(call, runtime, tmp_path):
    """Erasure removes task rows first, then what they lead to; an add whose task row
    vanished under it removes the rest of itself and says so."""
    store = runtime.store
    write = store.add_many

    def erase_meanwhile(messages):
        write(messages)
        runtime.services.memories.erase_user("tenant-a", "vanishing")

    store.add_many = erase_meanwhile
    status, body = call("add/message", add("vanishing", "I hide my spare key under the mat"))
    store.add_many = write
    assert status == 409 and "erased" in body["message"], body
    assert messages_of(call, "vanishing") == []
    assert store.ids_for_user("tenant-a", "vanishing") == []
    assert not any(p.is_file() for p in (tmp_path / "objects").rglob("*")
                   if "vanishing" in str(p))


def test_a_replay_whose_recorded_task_is_gone_is_taken_anew(call, runtime):
    """As on AWS, where the idempotency record outlives an erased task (24 h TTL)."""
    body = add("gone", "I park on level 3", ids=["g1"])
    _, first = call("add/message", body)
    runtime.store._write("DELETE FROM tasks WHERE task_id = ?", [(first["data"]["task_id"],)])
    status, again = call("add/message", body)
    assert status == 200
    assert call("get/status", {"task_id": again["data"]["task_id"]})[0] == 200
