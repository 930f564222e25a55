"""DynamoTaskStore, DynamoApiKeyStore and DynamoRecordStore under moto, on tables built
from table_definitions(); the record store is also checked call for call against the
SQLite store it stands in for."""

from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws
from tests.fakes.aws import REGION, aws_credentials, create_tables  # noqa: F401 - fixture

from engram.adapters.dynamodb_tables import (
    TASK_TTL_SECONDS,
    DynamoApiKeyStore,
    DynamoRecordStore,
    DynamoTaskStore,
    TaskWriteConflict,
    table_definitions,
)
from engram.adapters.sqlite_store import SqliteStore
from engram.models.domain import (
    FACT_TYPES,
    Memory,
    MemoryStatus,
    MemoryType,
    MessageRecord,
    Role,
    Task,
    TaskStatus,
)
from engram.models.filters import compile_filter

T0 = 1_750_000_000_000


@pytest.fixture
def tables(aws_credentials):  # noqa: F811 - the fixture imported above
    with mock_aws():
        yield create_tables(boto3.resource("dynamodb", region_name=REGION))


@pytest.fixture
def records(tables):
    """The record store, on a client that fails the test if anything scans."""
    table = tables["records"]

    def refuse_scan(**_):
        raise AssertionError("DynamoRecordStore scanned the records table")

    table.meta.client.meta.events.register("before-call.dynamodb.Scan", refuse_scan)
    return DynamoRecordStore(table)


def memory(key: str, user: str = "u1", tenant: str = "t1", **fields) -> Memory:
    fields.setdefault("memory_type", MemoryType.long_term)
    return Memory(tenant_id=tenant, user_id=user, memory_key=key, memory_value=f"{key} value",
                  content_hash=f"hash-{key}", **fields)


def message(seq: int, conversation: str = "c1", user: str = "u1", tenant: str = "t1",
            text: str | None = None) -> MessageRecord:
    return MessageRecord(tenant_id=tenant, user_id=user, conversation_id=conversation,
                         message_id=f"m{seq}", seq=seq, role=Role.user,
                         text=text or f"turn {seq}")


# --- table definitions --------------------------------------------------------------
def test_definitions_declare_exactly_the_key_attributes():
    """CloudFormation rejects attribute definitions that no key schema uses."""
    for name, definition in table_definitions().items():
        keys = {k["AttributeName"] for k in definition["KeySchema"]}
        for index in definition.get("GlobalSecondaryIndexes", []):
            keys |= {k["AttributeName"] for k in index["KeySchema"]}
        declared = {a["AttributeName"] for a in definition["AttributeDefinitions"]}
        assert declared == keys, name


def test_tables_are_created_with_ttl_on_tasks(tables):
    client = tables["tasks"].meta.client
    ttl = client.describe_time_to_live(TableName=tables["tasks"].name)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    indexes = {i["IndexName"] for i in tables["records"].global_secondary_indexes}
    assert indexes == {"by_user", "by_hash"}


# --- tasks --------------------------------------------------------------------------
def test_task_round_trip_is_scoped_by_tenant(tables):
    store = DynamoTaskStore(tables["tasks"])
    task = Task(tenant_id="t1", user_id="u1", conversation_id="c1", message_count=2)
    store.create(task)

    assert store.get("t1", task.task_id) == task
    assert store.get("t2", task.task_id) is None
    assert store.get("t1", "no-such-task") is None


def test_task_item_carries_status_and_a_30_day_ttl(tables):
    store = DynamoTaskStore(tables["tasks"])
    task = Task(tenant_id="t1", user_id="u1")
    store.create(task)

    item, pointer = sorted(tables["tasks"].scan()["Items"], key=lambda i: i["pk"] != "TENANT#t1")
    assert item["pk"] == "TENANT#t1" and item["sk"] == f"TASK#{task.task_id}"
    assert item["status"] == "waiting"
    assert int(item["expires_at"]) == task.update_time // 1000 + TASK_TTL_SECONDS
    # the user's pointer to it (erasure finds a user's tasks without a scan), outliving it
    assert pointer["pk"] == "T#t1#U#u1" and pointer["sk"] == f"TASK#{task.task_id}"
    assert int(pointer["expires_at"]) == task.create_time // 1000 + 2 * TASK_TTL_SECONDS


def test_an_expired_task_reads_as_missing_before_ttl_deletes_it(tables):
    store = DynamoTaskStore(tables["tasks"])
    task = Task(tenant_id="t1", user_id="u1")
    store.create(task)
    tables["tasks"].update_item(
        Key={"pk": "TENANT#t1", "sk": f"TASK#{task.task_id}"},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1})

    assert store.get("t1", task.task_id) is None


def test_saves_of_one_copy_follow_each_other(tables):
    store = DynamoTaskStore(tables["tasks"])
    task = Task(tenant_id="t1", user_id="u1")
    store.create(task)
    times = [task.update_time]
    for status in (TaskStatus.running, TaskStatus.running, TaskStatus.completed):
        task.status = status
        store.save(task)  # several within one millisecond must still succeed
        times.append(task.update_time)

    assert store.get("t1", task.task_id).status == TaskStatus.completed
    assert times == sorted(set(times))  # strictly increasing: a version, not just a clock


def test_a_stale_writer_cannot_put_a_finished_task_back_to_running(tables):
    store = DynamoTaskStore(tables["tasks"])
    task = Task(tenant_id="t1", user_id="u1", status=TaskStatus.running)
    store.create(task)
    retry = store.get("t1", task.task_id)  # the retry of a step that timed out
    stale = store.get("t1", task.task_id)  # the timed-out attempt, still running
    retry.status = TaskStatus.completed
    store.save(retry)

    stale.status, stale.step = TaskStatus.running, "index"
    read_at = stale.update_time
    with pytest.raises(TaskWriteConflict, match="now completed"):
        store.save(stale)

    assert stale.update_time == read_at  # the copy is left as it was read
    assert store.get("t1", task.task_id).status == TaskStatus.completed


def test_creating_a_task_twice_leaves_the_first_row(tables):
    """A retried accept (same idempotency key, same task id) finds the first task."""
    store = DynamoTaskStore(tables["tasks"])
    task = Task(tenant_id="t1", user_id="u1")
    assert store.create(task) is True
    again = task.model_copy(update={"status": TaskStatus.running, "message_count": 9})
    assert store.create(again) is False
    stored = store.get("t1", task.task_id)
    assert stored.status == TaskStatus.waiting and stored.message_count == 0


# --- API keys -----------------------------------------------------------------------
def test_api_keys_map_a_hash_to_a_tenant(tables):
    store = DynamoApiKeyStore(tables["api_keys"])
    assert store.count() == 0
    store.put("hash-a", "tenant-a", "first")
    store.put("hash-b", "tenant-b", "")
    store.put("hash-a", "tenant-c", "replaced")

    assert store.tenant_for("hash-a") == "tenant-c"
    assert store.tenant_for("hash-b") == "tenant-b"
    assert store.tenant_for("unknown") is None
    assert store.count() == 2


# --- messages -----------------------------------------------------------------------
def test_conversation_reads_the_last_messages_oldest_first(records):
    records.add_many([message(i) for i in range(40)])  # more than one batch of 25

    assert [m.seq for m in records.list_conversation("t1", "u1", "c1", 5)] == [35, 36, 37, 38, 39]
    assert len(records.list_conversation("t1", "u1", "c1", 1000)) == 40
    assert records.list_conversation("t1", "u1", "c2", 10) == []


def test_a_message_is_keyed_by_its_id_and_ordered_by_its_time(records):
    """Concurrent adds to one conversation never share a key; a message id written again
    replaces its row (and arrives anew); chat_time orders before arrival."""
    records.add_many([message(0, text="first writer"), message(1)])
    second = message(0, text="second writer")
    second.message_id, second.create_time = "m-second", second.create_time + 1
    records.add_many([second])
    again = message(1, text="turn 1, sent again")
    again.create_time += 2
    records.add_many([again])
    late = message(3, text="said earliest, sent last")
    late.chat_time = 1
    records.add_many([late])

    listed = records.list_conversation("t1", "u1", "c1", 10)
    assert [m.text for m in listed] == ["said earliest, sent last", "first writer",
                                        "second writer", "turn 1, sent again"]


def test_ids_with_separators_never_share_a_key(records):
    """Percent-encoding keeps "#" in an id from reaching into another key."""
    records.add_many([message(0, conversation="c"), message(0, conversation="c#0000000005"),
                      # unescaped, both would be T#a#U#b#U#c
                      message(0, tenant="a#U#b", user="c"), message(0, tenant="a", user="b#U#c")])

    assert [m.conversation_id for m in records.list_conversation("t1", "u1", "c", 10)] == ["c"]
    assert [m.tenant_id for m in records.list_conversation("a#U#b", "c", "c1", 10)] == ["a#U#b"]
    assert [m.tenant_id for m in records.list_conversation("a", "b#U#c", "c1", 10)] == ["a"]


def test_delete_user_removes_only_that_users_messages(records):
    records.add_many([message(i, conversation=f"c{i % 3}") for i in range(30)]
                     + [message(0, user="u2"), message(0, tenant="t2")])

    assert records.delete_user("t1", "u1") == 30
    assert records.list_conversation("t1", "u1", "c0", 100) == []
    assert len(records.list_conversation("t1", "u2", "c1", 100)) == 1
    assert len(records.list_conversation("t2", "u1", "c1", 100)) == 1


def test_a_message_too_large_for_an_item_is_stored_compressed(records, tables):
    huge = message(0, text="😀 " * 100_000)  # ~600 KB of JSON, past the 400 KB item limit
    records.add_many([huge])

    (item,) = tables["records"].query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": "T#t1#U#u1"}
    )["Items"]
    assert "body_z" in item and "body" not in item
    assert records.list_conversation("t1", "u1", "c1", 1) == [huge]


# --- memories -----------------------------------------------------------------------
def test_get_many_keeps_the_order_asked_and_the_tenant(records):
    a, b, c = memory("a"), memory("b", user="u2"), memory("c")
    records.put_many([a, b, c, memory("x", tenant="t2")])

    assert records.get_many("t1", [c.id, "unknown", a.id, b.id, c.id]) == [c, a, b, c]
    assert records.get_many("t2", [a.id]) == []
    assert records.get_many("t1", []) == []


def test_get_many_reads_more_than_one_batch(records):
    many = [memory(f"m{i}") for i in range(130)]
    records.put_many(many)

    assert [m.id for m in records.get_many("t1", [m.id for m in many])] == [m.id for m in many]


def test_put_many_keeps_the_last_state_of_a_repeated_id(records):
    first = memory("a")
    later = first.model_copy(update={"memory_value": "newer", "status": MemoryStatus.archived})
    records.put_many([first, later])

    assert records.get_many("t1", [first.id])[0].memory_value == "newer"


def test_find_by_hash_sees_only_activated_memories_of_the_user(records):
    live = memory("a")
    records.put_many([live, memory("b", status=MemoryStatus.archived),
                      memory("a", user="u2", status=MemoryStatus.archived)])

    assert records.find_by_hash("t1", "u1", "hash-a") == live
    assert records.find_by_hash("t1", "u1", "hash-b") is None
    assert records.find_by_hash("t1", "u2", "hash-a") is None
    assert records.find_by_hash("t2", "u1", "hash-a") is None

    records.put_many([live.model_copy(update={"status": MemoryStatus.deleted})])
    assert records.find_by_hash("t1", "u1", "hash-a") is None


def test_list_active_is_newest_first_filtered_and_paged(records):
    old = memory("old", create_time=T0, tags=["travel"])
    new = memory("new", create_time=T0 + 5, tags=["travel"], info={"scene": "chat"})
    pref = memory("pref", create_time=T0 + 9, memory_type=MemoryType.preference)
    gone = memory("gone", create_time=T0 + 7, status=MemoryStatus.archived)
    other = memory("other", user="u2", create_time=T0 + 8)
    records.put_many([old, new, pref, gone, other])

    page = records.list_active("t1", "u1", FACT_TYPES, 0, 10)
    assert [m.id for m in page.items] == [new.id, old.id] and page.total == 2
    assert records.list_active("t1", "u1", FACT_TYPES, 1, 1).items == [old]
    prefs = records.list_active("t1", "u1", [MemoryType.preference], 0, 10)
    assert prefs.items == [pref]
    scene = records.list_active("t1", "u1", FACT_TYPES, 0, 10, compile_filter({"scene": "chat"}))
    assert scene.items == [new] and scene.total == 1
    assert records.list_active("t1", "u1", [], 0, 10).total == 0


def test_ids_for_user_and_erase(records):
    mine = [memory("a"), memory("b", status=MemoryStatus.archived),
            memory("c", status=MemoryStatus.deleted)]
    theirs = memory("d", user="u2")
    records.put_many([*mine, theirs])

    assert sorted(records.ids_for_user("t1", "u1")) == sorted(m.id for m in mine)
    records.erase("t1", [m.id for m in mine])
    assert records.ids_for_user("t1", "u1") == []
    assert records.get_many("t1", [m.id for m in mine]) == []
    assert records.get_many("t1", [theirs.id]) == [theirs]


def test_unprocessed_writes_are_sent_again(records, tables, monkeypatch):
    client = tables["records"].meta.client
    real = client.batch_write_item
    calls = []

    def throttled_once(RequestItems):
        calls.append(sum(len(v) for v in RequestItems.values()))
        if len(calls) == 1:  # DynamoDB accepts only the first five of the first batch
            (name, requests), = RequestItems.items()
            real(RequestItems={name: requests[:5]})
            return {"UnprocessedItems": {name: requests[5:]}}
        return real(RequestItems=RequestItems)

    monkeypatch.setattr(client, "batch_write_item", throttled_once)
    many = [memory(f"m{i}") for i in range(30)]
    records.put_many(many)

    assert calls == [25, 20, 5]
    assert len(records.get_many("t1", [m.id for m in many])) == 30


def test_the_record_store_answers_as_the_sqlite_store_does(records, tmp_path):
    """The same writes and reads against both MemoryStore/MessageStore implementations."""
    sqlite = SqliteStore(tmp_path / "engram.db")
    memories = [
        memory(f"m{i}", create_time=T0 + i // 2,  # pairs share a time: the id breaks ties
               memory_type=list(MemoryType)[i % len(MemoryType)],
               status=[MemoryStatus.activated, MemoryStatus.activated,
                       MemoryStatus.archived][i % 3],
               tags=["travel"] if i % 4 == 0 else [], info={"scene": f"s{i % 2}"},
               agent_id="a1" if i % 5 else None)
        for i in range(24)
    ] + [memory("elsewhere", user="u2")]
    messages = [message(i, conversation=f"c{i % 2}") for i in range(12)]
    for i, m in enumerate(messages[:6]):  # told when they were said: that order comes first
        m.chat_time = T0 - i
    where_options = [None, compile_filter({"tags": {"contains": "travel"}}),
                     compile_filter({"or": [{"agent_id": "a1"}, {"scene": "s0"}]})]
    for store in (sqlite, records):
        store.put_many(memories)
        store.add_many(messages)

    def answers(store):
        yield [m.id for m in store.get_many("t1", [m.id for m in reversed(memories)])]
        yield sorted(store.ids_for_user("t1", "u1"))
        for m in memories[:6]:
            found = store.find_by_hash("t1", m.user_id, m.content_hash)
            yield found.id if found else None
        for types in (FACT_TYPES, [MemoryType.preference], list(MemoryType)):
            for where in where_options:
                for offset, limit in ((0, 50), (2, 3)):
                    page = store.list_active("t1", "u1", types, offset, limit, where)
                    yield [m.id for m in page.items], page.total
        yield [m.message_id for m in store.list_conversation("t1", "u1", "c1", 4)]
        yield [m.message_id for m in store.list_conversation("t1", "u1", "c0", 10)]

    assert list(answers(records)) == list(answers(sqlite))
    sqlite.close()
