"""DynamoDB for the AWS profile: tasks, API keys, and the records (raw messages and
memories) that OpenSearch only indexes.

Three tables, each built from `table_definitions()` (the SAM template copies them):

tasks     pk TENANT#<tenant>  sk TASK#<task id>    body, status, update_time, expires_at (TTL)
          pk T#<tenant>#U#<user>  sk TASK#<task id>  a pointer: the user's tasks, for erasure
api_keys  pk <sha-256 of the key>                  tenant_id, label, create_time
records   message  pk T#<tenant>#U#<user>  sk MSG#<conversation>#<message id>
          memory   pk T#<tenant>#M#<id>    sk MEMORY
            GSI by_user  user_key T#<tenant>#U#<user>
                         user_order <status>#<create_time:013d>#<id>
            GSI by_hash  hash_key T#<tenant>#U#<user>#H#<content hash>  (activated only)

A memory's primary key is (tenant, id), as in SQLite, so get_many, the hottest read
(every search and dedupe step), is one consistent BatchGetItem with no pointer hop. The
user's memories are reached through by_user, whose sort key starts with the status:
list_active reads only activated rows and never the archived history (every raw turn
leaves one behind), newest first. by_hash is sparse: only activated memories carry
hash_key. Both GSIs are eventually consistent (typically well under a second), so a
memory written a moment ago may be missing from list_active, find_by_hash and
ids_for_user; get_many, messages and tasks read consistently.

Every id is percent-encoded inside a key, so "#" in a tenant, user or conversation id
can never make two keys collide. Nothing here scans, except counting API keys.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from engram.errors import PermanentError, RetryableError, TaskErased
from engram.models.domain import (
    Memory,
    MemoryStatus,
    MemoryType,
    MessageRecord,
    Task,
    TaskStatus,
    now_ms,
)
from engram.models.filters import FilterNode
from engram.ports import MemoryCursor, MemoryPage

TASK_TTL_SECONDS = 30 * 24 * 3600
# A task's pointer outlives the row by a TTL, so a row whose expiry later saves moved
# forward (a retry weeks later) still has one; such saves renew the pointer.
POINTER_TTL_SECONDS = 2 * TASK_TTL_SECONDS
MEMORY_SORT_KEY = "MEMORY"
BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum
BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem maximum
BATCH_ATTEMPTS = 8
BATCH_BACKOFF_SECONDS = 0.05  # doubled per attempt: 0.05 … 6.4 s
# Bodies above this are stored zlib-compressed: a 100,000-character message in a 4-byte
# script would otherwise pass DynamoDB's 400 KB item limit.
COMPRESS_ABOVE_BYTES = 200_000
ITEM_LIMIT_BYTES = 390_000  # 400 KB less room for the keys and other attributes


def table_definitions() -> dict[str, dict[str, Any]]:
    """Key schemas, GSIs, billing and TTL per table, named as in CloudFormation's
    AWS::DynamoDB::Table (and create_table, except TimeToLiveSpecification, which is
    update_time_to_live's argument)."""

    def strings(*names: str) -> list[dict[str, str]]:
        return [{"AttributeName": n, "AttributeType": "S"} for n in names]

    def key(hash_key: str, range_key: str | None = None) -> list[dict[str, str]]:
        schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        return schema

    return {
        "tasks": {
            "KeySchema": key("pk", "sk"),
            "AttributeDefinitions": strings("pk", "sk"),
            "BillingMode": "PAY_PER_REQUEST",
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
        "api_keys": {
            "KeySchema": key("pk"),
            "AttributeDefinitions": strings("pk"),
            "BillingMode": "PAY_PER_REQUEST",
        },
        "records": {
            "KeySchema": key("pk", "sk"),
            "AttributeDefinitions": strings("pk", "sk", "user_key", "user_order", "hash_key"),
            "BillingMode": "PAY_PER_REQUEST",
            "GlobalSecondaryIndexes": [
                {"IndexName": "by_user", "KeySchema": key("user_key", "user_order"),
                 "Projection": {"ProjectionType": "ALL"}},
                {"IndexName": "by_hash", "KeySchema": key("hash_key"),
                 "Projection": {"ProjectionType": "ALL"}},
            ],
        },
    }


class TaskWriteConflict(RetryableError):
    """Another writer saved the task after this copy was read. Retrying re-reads it."""


class DynamoTaskStore:
    """Implements TaskStore. `save` is a compare-and-set on update_time, which every save
    moves strictly forward: a writer holding a stale copy (a timed-out step still running
    while its retry finished the task) cannot overwrite what came after it, so a completed
    or failed task is never put back to running by it."""

    def __init__(self, table: Any):
        self._table = table  # a boto3 DynamoDB Table resource

    def create(self, task: Task) -> bool:
        # The pointer first: a task row never exists without one (a pointer whose row
        # was never written is skipped by tasks_of_user).
        self._table.put_item(Item=_task_pointer(task))
        try:
            self._table.put_item(Item=self._item(task),
                                 ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            return False  # a retried accept: the first one's row stays as it is
        return True

    def get(self, tenant_id: str, task_id: str) -> Task | None:
        item = self._table.get_item(Key=_task_key(tenant_id, task_id),
                                    ConsistentRead=True).get("Item")
        # TTL deletion is lazy (days): an expired row must read as gone.
        if item is None or int(item["expires_at"]) <= time.time():
            return None
        return Task.model_validate_json(item["body"])

    def save(self, task: Task) -> None:
        read_at = task.update_time
        task.update_time = max(now_ms(), read_at + 1)
        try:
            self._table.put_item(
                Item=self._item(task),
                ConditionExpression="update_time = :read_at",
                ExpressionAttributeValues={":read_at": read_at},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            task.update_time = read_at
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            current = exc.response.get("Item", {})
            if not current:  # a missing row is never recreated: its user was erased
                raise TaskErased(f"task {task.task_id} not found: it was erased") from None
            status = current.get("status", {}).get("S", "missing")
            raise TaskWriteConflict(
                f"task {task.task_id} changed since it was read (now {status}); "
                f"not saving it as {task.status.value}") from None
        if _task_expiry(task) > _pointer_expiry(task):
            self._table.put_item(Item=_task_pointer(task))

    def tasks_of_user(self, tenant_id: str, user_id: str) -> list[Task]:
        """The user's pointers (one consistent query), then their rows (BatchGetItem)."""
        pointers = _query(self._table, ConsistentRead=True, ProjectionExpression="task_id",
                          KeyConditionExpression=Key("pk").eq(_user_key(tenant_id, user_id))
                          & Key("sk").begins_with("TASK#"))
        items = _batch_get(self._table, [_task_key(tenant_id, p["task_id"]) for p in pointers])
        tasks = [Task.model_validate_json(i["body"]) for i in items
                 if int(i["expires_at"]) > time.time()]
        return sorted(tasks, key=lambda t: (t.create_time, t.task_id))

    def erase_tasks(self, tasks: Sequence[Task]) -> list[Task]:
        """A task that was finished when read is deleted in a batch; one still waiting or
        running is deleted alone, returning its row as it was then (a step may have
        saved what it wrote since). Pointers go last: a failure halfway leaves every
        remaining row findable for the next try."""
        done = (TaskStatus.completed, TaskStatus.failed)
        erased = [t for t in tasks if t.status in done]
        _batch_write(self._table, [{"DeleteRequest": {"Key": _task_key(t.tenant_id, t.task_id)}}
                                   for t in erased])
        for task in [t for t in tasks if t.status not in done]:
            old = self._table.delete_item(Key=_task_key(task.tenant_id, task.task_id),
                                          ReturnValues="ALL_OLD").get("Attributes")
            if old is not None:
                erased.append(Task.model_validate_json(old["body"]))
        _batch_write(self._table, [{"DeleteRequest": {"Key": {
            "pk": _user_key(t.tenant_id, t.user_id), "sk": f"TASK#{_part(t.task_id)}"}}}
            for t in tasks])
        return erased

    @staticmethod
    def _item(task: Task) -> dict[str, Any]:
        return {
            **_task_key(task.tenant_id, task.task_id),
            "status": task.status.value,
            "update_time": task.update_time,
            "expires_at": _task_expiry(task),
            "body": task.model_dump_json(),
        }


def _task_expiry(task: Task) -> int:
    return task.update_time // 1000 + TASK_TTL_SECONDS


def _pointer_expiry(task: Task) -> int:
    return task.create_time // 1000 + POINTER_TTL_SECONDS


def _task_pointer(task: Task) -> dict[str, Any]:
    return {"pk": _user_key(task.tenant_id, task.user_id), "sk": f"TASK#{_part(task.task_id)}",
            "task_id": task.task_id,
            "expires_at": max(_pointer_expiry(task), _task_expiry(task) + TASK_TTL_SECONDS)}


class DynamoApiKeyStore:
    """Implements ApiKeyStore: one item per key, keyed by the key's SHA-256."""

    def __init__(self, table: Any):
        self._table = table

    def put(self, key_hash: str, tenant_id: str, label: str) -> None:
        self._table.put_item(Item={"pk": key_hash, "tenant_id": tenant_id, "label": label,
                                   "create_time": now_ms()})

    def tenant_for(self, key_hash: str) -> str | None:
        # Consistent, so a key works the moment it has been created.
        item = self._table.get_item(Key={"pk": key_hash}, ConsistentRead=True).get("Item")
        return item["tenant_id"] if item else None

    def count(self) -> int:
        total, start = 0, {}
        while True:
            page = self._table.scan(Select="COUNT", **start)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                return total
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


class DynamoRecordStore:
    """Implements MessageStore and MemoryStore on the records table (see the module
    docstring for the keys)."""

    def __init__(self, table: Any):
        self._table = table

    # --- messages -------------------------------------------------------------------
    def add_many(self, messages: Sequence[MessageRecord]) -> None:
        _batch_write(self._table, [{"PutRequest": {"Item": {
            "pk": _user_key(m.tenant_id, m.user_id),
            "sk": _message_sort_key(m.conversation_id, m.message_id),
            "message_id": m.message_id,
            **_body(m.model_dump_json()),
        }}} for m in messages])

    def list_conversation(
        self, tenant_id: str, user_id: str, conversation_id: str, limit: int
    ) -> list[MessageRecord]:
        """The last `limit` messages, oldest first. The sort key names a message, not its
        place, so the conversation is read whole and ordered here (by event time, then
        arrival: create time and place in its request)."""
        if limit <= 0:
            return []
        items = _query(self._table, ConsistentRead=True,
                       KeyConditionExpression=Key("pk").eq(_user_key(tenant_id, user_id))
                       & Key("sk").begins_with(_conversation_prefix(conversation_id)))
        messages = [MessageRecord.model_validate_json(_read_body(i)) for i in items]
        messages.sort(key=lambda m: (m.event_time, m.create_time, m.seq, m.message_id))
        return messages[-limit:]

    def delete_user(self, tenant_id: str, user_id: str) -> int:
        keys = _query(self._table, ConsistentRead=True, ProjectionExpression="pk, sk",
                      KeyConditionExpression=Key("pk").eq(_user_key(tenant_id, user_id))
                      & Key("sk").begins_with("MSG#"))
        _batch_write(self._table, [{"DeleteRequest": {"Key": k}} for k in keys])
        return len(keys)

    def remove(self, messages: Sequence[MessageRecord]) -> None:
        _batch_write(self._table, [{"DeleteRequest": {"Key": {
            "pk": _user_key(m.tenant_id, m.user_id),
            "sk": _message_sort_key(m.conversation_id, m.message_id)}}} for m in messages])

    # --- memories -------------------------------------------------------------------
    def put_many(self, memories: Sequence[Memory]) -> None:
        _batch_write(self._table, [{"PutRequest": {"Item": _memory_item(m)}} for m in memories])

    def get_many(self, tenant_id: str, ids: Sequence[str]) -> list[Memory]:
        """The stored memories among `ids`, in the order asked; unknown ids are left out."""
        items = _batch_get(self._table, [_memory_key(tenant_id, i) for i in dict.fromkeys(ids)])
        by_id = {m.id: m for m in (Memory.model_validate_json(_read_body(i)) for i in items)}
        return [by_id[i] for i in ids if i in by_id]

    def find_by_hash(self, tenant_id: str, user_id: str, content_hash: str) -> Memory | None:
        items = _query(self._table, limit=1, IndexName="by_hash",
                       KeyConditionExpression=Key("hash_key").eq(
                           _hash_key(tenant_id, user_id, content_hash)))
        return Memory.model_validate_json(_read_body(items[0])) if items else None

    def list_active(
        self,
        tenant_id: str,
        user_id: str,
        types: Sequence[MemoryType],
        offset: int,
        limit: int,
        where: FilterNode | None = None,
    ) -> MemoryPage:
        """Newest first. Types narrow the query server-side; `where` is applied here, after
        the query, because the filter language (tags, info keys, or-groups) has no
        DynamoDB equivalent that could keep the total exact."""
        if not types:
            return MemoryPage(items=[], total=0)
        items = _query(
            self._table, IndexName="by_user", ScanIndexForward=False,
            KeyConditionExpression=Key("user_key").eq(_user_key(tenant_id, user_id))
            & Key("user_order").begins_with(f"{MemoryStatus.activated.value}#"),
            FilterExpression=Attr("memory_type").is_in([MemoryType(t).value for t in types]),
        )
        memories = [Memory.model_validate_json(_read_body(i)) for i in items]
        if where is not None:
            memories = [m for m in memories if where.matches(m)]
        memories.sort(key=lambda m: (-m.create_time, m.id))  # as SQLite orders them
        return MemoryPage(items=memories[offset:offset + limit], total=len(memories))

    def page_active(self, tenant_id: str, user_id: str, after: MemoryCursor | None,
                    limit: int) -> list[Memory]:
        """by_user's sort key is <status>#<create_time>#<id>: a page is one bounded query
        on the activated range, newest first, below the cursor's key."""
        if limit <= 0:
            return []
        low = f"{MemoryStatus.activated.value}#"
        if after is None:
            condition = Key("user_order").begins_with(low)
        else:
            # between is inclusive: the cursor's own row is dropped below
            condition = Key("user_order").between(
                low, f"{low}{after.create_time:013d}#{after.id}")
        items = _query(self._table, limit=limit + (after is not None), IndexName="by_user",
                       ScanIndexForward=False,
                       KeyConditionExpression=Key("user_key").eq(_user_key(tenant_id, user_id))
                       & condition)
        memories = [Memory.model_validate_json(_read_body(i)) for i in items]
        if after is not None:
            memories = [m for m in memories if (m.create_time, m.id) != tuple(after)]
        return memories[:limit]

    def ids_for_user(self, tenant_id: str, user_id: str) -> list[str]:
        items = _query(self._table, IndexName="by_user", ProjectionExpression="memory_id",
                       KeyConditionExpression=Key("user_key").eq(_user_key(tenant_id, user_id)))
        return [i["memory_id"] for i in items]

    def erase(self, tenant_id: str, ids: Sequence[str]) -> None:
        _batch_write(self._table, [{"DeleteRequest": {"Key": _memory_key(tenant_id, i)}}
                                   for i in ids])


# --- keys ---------------------------------------------------------------------------
MAX_KEY_PART = 500  # bytes: two parts and a prefix fit a sort key (1024); four a hash key


def _part(value: str) -> str:
    """An id as a key part. One whose encoding passes MAX_KEY_PART (ids reach 256
    characters, 9 bytes each once encoded) keeps its start and ends in `%~` and its SHA-256:
    still one part per id (quote() never writes `%~`), within DynamoDB's key sizes."""
    quoted = quote(value, safe="")
    if len(quoted) <= MAX_KEY_PART:
        return quoted
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{quoted[:MAX_KEY_PART - len(digest) - 2]}%~{digest}"


def _task_key(tenant_id: str, task_id: str) -> dict[str, str]:
    return {"pk": f"TENANT#{_part(tenant_id)}", "sk": f"TASK#{_part(task_id)}"}


def _user_key(tenant_id: str, user_id: str) -> str:
    return f"T#{_part(tenant_id)}#U#{_part(user_id)}"


def _conversation_prefix(conversation_id: str) -> str:
    return f"MSG#{_part(conversation_id)}#"


def _message_sort_key(conversation_id: str, message_id: str) -> str:
    return f"{_conversation_prefix(conversation_id)}{_part(message_id)}"


def _memory_key(tenant_id: str, memory_id: str) -> dict[str, str]:
    return {"pk": f"T#{_part(tenant_id)}#M#{_part(memory_id)}", "sk": MEMORY_SORT_KEY}


def _hash_key(tenant_id: str, user_id: str, content_hash: str) -> str:
    return f"{_user_key(tenant_id, user_id)}#H#{_part(content_hash)}"


def _memory_item(memory: Memory) -> dict[str, Any]:
    item = {
        **_memory_key(memory.tenant_id, memory.id),
        "user_key": _user_key(memory.tenant_id, memory.user_id),
        "user_order": f"{memory.status.value}#{memory.create_time:013d}#{memory.id}",
        "memory_id": memory.id,
        "memory_type": memory.memory_type.value,
        **_body(memory.model_dump_json()),
    }
    if memory.status == MemoryStatus.activated:
        item["hash_key"] = _hash_key(memory.tenant_id, memory.user_id, memory.content_hash)
    return item


# --- bodies -------------------------------------------------------------------------
def _body(text: str) -> dict[str, Any]:
    """The JSON body as plain text, or zlib-compressed when it is large."""
    data = text.encode()
    if len(data) <= COMPRESS_ABOVE_BYTES:
        return {"body": text}
    packed = zlib.compress(data, 6)
    if len(packed) > ITEM_LIMIT_BYTES:
        raise PermanentError(
            f"record is {len(packed)} bytes even compressed; DynamoDB's item limit is 400 KB")
    return {"body_z": packed}


def _read_body(item: dict[str, Any]) -> str:
    if "body" in item:
        return item["body"]
    return zlib.decompress(item["body_z"].value).decode()


# --- requests -----------------------------------------------------------------------
def _query(table: Any, limit: int | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Every matching item (or the first `limit`), following pages."""
    items: list[dict[str, Any]] = []
    while True:
        if limit is not None:
            kwargs["Limit"] = limit - len(items)
        page = table.query(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page or (limit is not None and len(items) >= limit):
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _request_key(request: dict[str, Any]) -> tuple[str, str]:
    if "PutRequest" in request:
        item = request["PutRequest"]["Item"]
    else:
        item = request["DeleteRequest"]["Key"]
    return item["pk"], item.get("sk", "")


def _batch_write(table: Any, requests: list[dict[str, Any]]) -> None:
    """BatchWriteItem in chunks of 25, resending unprocessed items with backoff. A key
    repeated in the input is written once, with its last request (BatchWriteItem refuses
    duplicates, and the last write is what sequential writes would leave)."""
    requests = list({_request_key(r): r for r in requests}.values())
    client = table.meta.client
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending = requests[start:start + BATCH_WRITE_LIMIT]
        for attempt in range(BATCH_ATTEMPTS):
            if attempt:
                time.sleep(BATCH_BACKOFF_SECONDS * 2 ** (attempt - 1))
            out = client.batch_write_item(RequestItems={table.name: pending})
            pending = out.get("UnprocessedItems", {}).get(table.name, [])
            if not pending:
                break
        else:
            raise RetryableError(
                f"DynamoDB left {len(pending)} writes unprocessed after {BATCH_ATTEMPTS} tries")


def _batch_get(table: Any, keys: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Consistent BatchGetItem in chunks of 100, resending unprocessed keys with backoff."""
    client = table.meta.client
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        pending = keys[start:start + BATCH_GET_LIMIT]
        for attempt in range(BATCH_ATTEMPTS):
            if attempt:
                time.sleep(BATCH_BACKOFF_SECONDS * 2 ** (attempt - 1))
            out = client.batch_get_item(
                RequestItems={table.name: {"Keys": pending, "ConsistentRead": True}})
            items.extend(out["Responses"].get(table.name, []))
            pending = out.get("UnprocessedKeys", {}).get(table.name, {}).get("Keys", [])
            if not pending:
                break
        else:
            raise RetryableError(
                f"DynamoDB left {len(pending)} reads unprocessed after {BATCH_ATTEMPTS} tries")
    return items


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")
