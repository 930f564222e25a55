"""SQLite for the embedded profile: tasks, raw messages, memories and API keys.

One file, WAL mode, one connection guarded by a lock: writes are serialised (SQLite
does that anyway) and every statement is scoped by tenant_id.

Erasure leaves nothing readable on disk: `secure_delete` zeroes deleted rows and freed
pages, and `checkpoint()` (run after a user is erased) copies the WAL back into the
database and truncates it, so the WAL holds no page from before the delete.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from engram.errors import TaskErased
from engram.models.domain import Memory, MemoryStatus, MemoryType, MessageRecord, Task, now_ms
from engram.models.filters import FilterNode
from engram.ports import MemoryCursor, MemoryPage

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, label TEXT, create_time INTEGER
);
CREATE TABLE IF NOT EXISTS tasks (
    tenant_id TEXT NOT NULL, task_id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, task_id)
);
CREATE TABLE IF NOT EXISTS messages (
    tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
    message_id TEXT NOT NULL, event_time INTEGER NOT NULL, arrival_time INTEGER NOT NULL,
    position INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, conversation_id, message_id)
);
CREATE TABLE IF NOT EXISTS memories (
    tenant_id TEXT NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL, status TEXT NOT NULL,
    memory_type TEXT NOT NULL, content_hash TEXT NOT NULL, create_time INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS memories_by_user ON memories (tenant_id, user_id, status, memory_type);
CREATE INDEX IF NOT EXISTS memories_by_hash ON memories (tenant_id, user_id, content_hash);
-- a user's newest current memories without sorting them all (page_active: export, and
-- the profile shown with every search)
CREATE INDEX IF NOT EXISTS memories_newest
    ON memories (tenant_id, user_id, status, create_time, id);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, status TEXT NOT NULL, expiry INTEGER NOT NULL,
    in_progress_expiry INTEGER, response TEXT, payload_hash TEXT
);
CREATE INDEX IF NOT EXISTS messages_in_order
    ON messages (tenant_id, user_id, conversation_id, event_time);
"""
MESSAGES_TABLE = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS messages"):
                        SCHEMA.index("CREATE TABLE IF NOT EXISTS memories")]
SCHEMA_VERSION = 1  # 1: messages keyed by message id (0 keyed them by a sequence number)
# A user's tasks, for erasure: an index on the body's user_id, which also covers rows
# written before it existed (no column to add, no migration).
TASK_USER = "json_extract(body, '$.user_id')"
TASKS_BY_USER = f"CREATE INDEX IF NOT EXISTS tasks_by_user ON tasks (tenant_id, {TASK_USER})"


class SqliteStore:
    """Implements TaskStore, MessageStore, MemoryStore and ApiKeyStore (and keeps the
    idempotency records of SqliteIdempotencyLayer)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")
        with self._lock:
            names = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
            self._migrate()
            self._db.executescript(SCHEMA)
            self._db.execute(TASKS_BY_USER)
            if "tasks" in names and "tasks_by_user" not in names:
                # Written before secure_delete: rows deleted or replaced back then may
                # linger in free space. Rewritten once, so an erasure leaves nothing behind.
                self._db.execute("VACUUM")
                self.checkpoint()

    def _migrate(self) -> None:
        """Version 0 keyed messages by (conversation, seq): its rows move to the new table
        in their old order (seq), keeping their ids; nothing is dropped before it is copied."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        columns = [r[1] for r in self._db.execute("PRAGMA table_info(messages)")]
        if version < 1 and "seq" in columns:
            self._db.execute("BEGIN")
            self._db.execute("ALTER TABLE messages RENAME TO messages_v0")
            self._db.execute(MESSAGES_TABLE)
            rows = self._db.execute("SELECT body FROM messages_v0 ORDER BY tenant_id, "
                                    "user_id, conversation_id, seq").fetchall()
            self._db.executemany(
                "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [_message_row(MessageRecord.model_validate_json(r[0])) for r in rows])
            self._db.execute("DROP TABLE messages_v0")
            self._db.execute("COMMIT")
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it to zero bytes."""
        with self._lock:
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:  # only this connection writes, so nothing should hold the WAL
            raise RuntimeError("the WAL checkpoint after an erasure did not complete")

    def _write(self, sql: str, rows: Sequence[tuple]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, args: tuple) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- API keys -------------------------------------------------------------------
    def put(self, key_hash: str, tenant_id: str, label: str) -> None:
        self._write(
            "INSERT OR REPLACE INTO api_keys VALUES (?, ?, ?, ?)",
            [(key_hash, tenant_id, label, now_ms())],
        )

    def tenant_for(self, key_hash: str) -> str | None:
        rows = self._read("SELECT tenant_id FROM api_keys WHERE key_hash = ?", (key_hash,))
        return rows[0][0] if rows else None

    def count(self) -> int:
        return self._read("SELECT COUNT(*) FROM api_keys", ())[0][0]

    # --- tasks ----------------------------------------------------------------------
    def create(self, task: Task) -> bool:
        with self._lock:
            cur = self._db.execute("INSERT OR IGNORE INTO tasks VALUES (?, ?, ?)",
                                   (task.tenant_id, task.task_id, task.model_dump_json()))
            return cur.rowcount == 1

    def get(self, tenant_id: str, task_id: str) -> Task | None:
        rows = self._read("SELECT body FROM tasks WHERE tenant_id = ? AND task_id = ?",
                          (tenant_id, task_id))
        return Task.model_validate_json(rows[0][0]) if rows else None

    def save(self, task: Task) -> None:
        # An UPDATE, never an insert: a writer holding a task whose user was erased
        # meanwhile must not bring the row back.
        task.update_time = now_ms()
        with self._lock:
            cur = self._db.execute("UPDATE tasks SET body = ? WHERE tenant_id = ? AND task_id = ?",
                                   (task.model_dump_json(), task.tenant_id, task.task_id))
        if cur.rowcount == 0:
            raise TaskErased(f"task {task.task_id} not found: it was erased")

    def tasks_of_user(self, tenant_id: str, user_id: str) -> list[Task]:
        rows = self._read(f"SELECT body FROM tasks WHERE tenant_id = ? AND {TASK_USER} = ?",
                          (tenant_id, user_id))
        return [Task.model_validate_json(r[0]) for r in rows]

    def erase_tasks(self, tasks: Sequence[Task]) -> list[Task]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                bodies = [row[0] for t in tasks for row in self._db.execute(
                    "DELETE FROM tasks WHERE tenant_id = ? AND task_id = ? RETURNING body",
                    (t.tenant_id, t.task_id)).fetchall()]
                # and the record of the add that made each (a replay then adds anew)
                self._db.executemany(
                    "DELETE FROM idempotency WHERE json_extract(response, '$.task_id') = ?",
                    [(t.task_id,) for t in tasks])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [Task.model_validate_json(b) for b in bodies]

    def unfinished(self) -> list[Task]:
        """Tasks a stopped server left waiting or running: resumed at start."""
        rows = self._read("SELECT body FROM tasks", ())
        tasks = (Task.model_validate_json(r[0]) for r in rows)
        return [t for t in tasks if t.status in ("waiting", "running")]

    # --- messages -------------------------------------------------------------------
    def add_many(self, messages: Sequence[MessageRecord]) -> None:
        self._write("INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [_message_row(m) for m in messages])

    def list_conversation(
        self, tenant_id: str, user_id: str, conversation_id: str, limit: int
    ) -> list[MessageRecord]:
        order = "event_time {0}, arrival_time {0}, position {0}, message_id {0}"
        rows = self._read(
            "SELECT body FROM (SELECT * FROM messages "
            "WHERE tenant_id = ? AND user_id = ? AND conversation_id = ? "
            f"ORDER BY {order.format('DESC')} LIMIT ?) ORDER BY {order.format('ASC')}",
            (tenant_id, user_id, conversation_id, limit))
        return [MessageRecord.model_validate_json(r[0]) for r in rows]

    def delete_user(self, tenant_id: str, user_id: str) -> int:
        with self._lock:
            cur = self._db.execute("DELETE FROM messages WHERE tenant_id = ? AND user_id = ?",
                                   (tenant_id, user_id))
            return cur.rowcount

    def remove(self, messages: Sequence[MessageRecord]) -> None:
        self._write("DELETE FROM messages WHERE tenant_id = ? AND user_id = ? AND "
                    "conversation_id = ? AND message_id = ?",
                    [(m.tenant_id, m.user_id, m.conversation_id, m.message_id)
                     for m in messages])

    # --- memories -------------------------------------------------------------------
    def put_many(self, memories: Sequence[Memory]) -> None:
        self._write(
            "INSERT OR REPLACE INTO memories VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(m.tenant_id, m.id, m.user_id, m.status.value, m.memory_type.value,
              m.content_hash, m.create_time, m.model_dump_json()) for m in memories],
        )

    def get_many(self, tenant_id: str, ids: Sequence[str]) -> list[Memory]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._read(f"SELECT body FROM memories WHERE tenant_id = ? AND id IN ({marks})",
                          (tenant_id, *ids))
        by_id = {m.id: m for m in (Memory.model_validate_json(r[0]) for r in rows)}
        return [by_id[i] for i in ids if i in by_id]

    def find_by_hash(self, tenant_id: str, user_id: str, content_hash: str) -> Memory | None:
        rows = self._read(
            "SELECT body FROM memories WHERE tenant_id = ? AND user_id = ? AND content_hash = ? "
            "AND status = ? LIMIT 1",
            (tenant_id, user_id, content_hash, MemoryStatus.activated.value))
        return Memory.model_validate_json(rows[0][0]) if rows else None

    def list_active(
        self,
        tenant_id: str,
        user_id: str,
        types: Sequence[MemoryType],
        offset: int,
        limit: int,
        where: FilterNode | None = None,
    ) -> MemoryPage:
        marks = ",".join("?" * len(types))
        rows = self._read(
            f"SELECT body FROM memories WHERE tenant_id = ? AND user_id = ? AND status = ? "
            f"AND memory_type IN ({marks}) ORDER BY create_time DESC, id",
            (tenant_id, user_id, MemoryStatus.activated.value, *(t.value for t in types)))
        memories = [Memory.model_validate_json(r[0]) for r in rows]
        if where is not None:
            memories = [m for m in memories if where.matches(m)]
        return MemoryPage(items=memories[offset:offset + limit], total=len(memories))

    def page_active(self, tenant_id: str, user_id: str, after: MemoryCursor | None,
                    limit: int) -> list[Memory]:
        # row-value comparison: the page starts right after the cursor's (time, id)
        since = "AND (create_time, id) < (?, ?) " if after is not None else ""
        rows = self._read(
            "SELECT body FROM memories WHERE tenant_id = ? AND user_id = ? AND status = ? "
            f"{since}ORDER BY create_time DESC, id DESC LIMIT ?",
            (tenant_id, user_id, MemoryStatus.activated.value,
             *((after.create_time, after.id) if after is not None else ()), limit))
        return [Memory.model_validate_json(r[0]) for r in rows]

    def ids_for_user(self, tenant_id: str, user_id: str) -> list[str]:
        rows = self._read("SELECT id FROM memories WHERE tenant_id = ? AND user_id = ?",
                          (tenant_id, user_id))
        return [r[0] for r in rows]

    def erase(self, tenant_id: str, ids: Sequence[str]) -> None:
        self._write("DELETE FROM memories WHERE tenant_id = ? AND id = ?",
                    [(tenant_id, i) for i in ids])


def _message_row(m: MessageRecord) -> tuple:
    """Ordered by when it was said (chat_time, else when it arrived), then arrival: the
    time of its add and its place in it."""
    return (m.tenant_id, m.user_id, m.conversation_id, m.message_id, m.event_time,
            m.create_time, m.seq, m.model_dump_json())


class SqliteIdempotencyLayer(BasePersistenceLayer):
    """Powertools idempotency records in the store's SQLite file: the local twin of its
    DynamoDBPersistenceLayer, with the same conditions (a record may be claimed when
    absent, expired, or in progress past its in-progress expiry)."""

    def __init__(self, store: SqliteStore):
        super().__init__()
        self._store = store

    def _get_record(self, idempotency_key: str) -> DataRecord:
        rows = self._store._read(
            "SELECT status, expiry, in_progress_expiry, response, payload_hash "
            "FROM idempotency WHERE key = ?", (idempotency_key,))
        if not rows:
            raise IdempotencyItemNotFoundError
        status, expiry, in_progress_expiry, response, payload_hash = rows[0]
        return DataRecord(idempotency_key=idempotency_key, status=status,
                          expiry_timestamp=expiry,
                          in_progress_expiry_timestamp=in_progress_expiry,
                          response_data=response or "", payload_hash=payload_hash or "")

    def _put_record(self, data_record: DataRecord) -> None:
        now = time.time()
        with self._store._lock:
            cur = self._store._db.execute(
                "INSERT INTO idempotency VALUES (?, ?, ?, ?, NULL, ?) ON CONFLICT (key) DO "
                "UPDATE SET status = excluded.status, expiry = excluded.expiry, "
                "in_progress_expiry = excluded.in_progress_expiry, response = NULL, "
                "payload_hash = excluded.payload_hash "
                "WHERE idempotency.expiry < ? OR (idempotency.status = 'INPROGRESS' "
                "AND idempotency.in_progress_expiry IS NOT NULL "
                "AND idempotency.in_progress_expiry < ?)",
                (data_record.idempotency_key, data_record.status, data_record.expiry_timestamp,
                 data_record.in_progress_expiry_timestamp, data_record.payload_hash,
                 int(now), int(now * 1000)))
            if cur.rowcount == 0:
                raise IdempotencyItemAlreadyExistsError

    def _update_record(self, data_record: DataRecord) -> None:
        self._store._write(
            "UPDATE idempotency SET status = ?, expiry = ?, response = ?, payload_hash = ? "
            "WHERE key = ?",
            [(data_record.status, data_record.expiry_timestamp, data_record.response_data,
              data_record.payload_hash, data_record.idempotency_key)])

    def _delete_record(self, data_record: DataRecord) -> None:
        self._store._write("DELETE FROM idempotency WHERE key = ?",
                           [(data_record.idempotency_key,)])

    def forget_in_progress(self) -> int:
        """At start: a claim still in progress belonged to a process that is gone (its
        request never answered), so the client's retry may run it again; expired records
        go too."""
        with self._store._lock:
            cur = self._store._db.execute(
                "DELETE FROM idempotency WHERE status = 'INPROGRESS' OR expiry < ?",
                (int(time.time()),))
            return cur.rowcount
