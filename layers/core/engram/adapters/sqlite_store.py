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
from collections.abc import Sequence
from pathlib import Path

from engram.errors import TaskErased
from engram.models.domain import Memory, MemoryStatus, MemoryType, MessageRecord, Task, now_ms
from engram.models.filters import FilterNode
from engram.ports import MemoryPage

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
    seq INTEGER NOT NULL, message_id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, conversation_id, seq)
);
CREATE TABLE IF NOT EXISTS memories (
    tenant_id TEXT NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL, status TEXT NOT NULL,
    memory_type TEXT NOT NULL, content_hash TEXT NOT NULL, create_time INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS memories_by_user ON memories (tenant_id, user_id, status, memory_type);
CREATE INDEX IF NOT EXISTS memories_by_hash ON memories (tenant_id, user_id, content_hash);
"""
# A user's tasks, for erasure: an index on the body's user_id, which also covers rows
# written before it existed (no column to add, no migration).
TASK_USER = "json_extract(body, '$.user_id')"
TASKS_BY_USER = f"CREATE INDEX IF NOT EXISTS tasks_by_user ON tasks (tenant_id, {TASK_USER})"


class SqliteStore:
    """Implements TaskStore, MessageStore, MemoryStore and ApiKeyStore."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")
        names = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        self._db.executescript(SCHEMA)
        self._db.execute(TASKS_BY_USER)
        if "tasks" in names and "tasks_by_user" not in names:
            # Written before secure_delete: rows deleted or replaced back then may linger
            # in free space. Rewritten once, so an erasure leaves nothing behind.
            self._db.execute("VACUUM")
            self.checkpoint()

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
    def create(self, task: Task) -> None:
        self._write("INSERT INTO tasks VALUES (?, ?, ?)",
                    [(task.tenant_id, task.task_id, task.model_dump_json())])

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
        self._write(
            "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?, ?)",
            [(m.tenant_id, m.user_id, m.conversation_id, m.seq, m.message_id,
              m.model_dump_json()) for m in messages],
        )

    def next_seq(self, tenant_id: str, user_id: str, conversation_id: str) -> int:
        rows = self._read(
            "SELECT MAX(seq) FROM messages WHERE tenant_id = ? AND user_id = ? "
            "AND conversation_id = ?", (tenant_id, user_id, conversation_id))
        return 0 if rows[0][0] is None else rows[0][0] + 1

    def list_conversation(
        self, tenant_id: str, user_id: str, conversation_id: str, limit: int
    ) -> list[MessageRecord]:
        rows = self._read(
            "SELECT body FROM (SELECT body, seq FROM messages WHERE tenant_id = ? AND user_id = ? "
            "AND conversation_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
            (tenant_id, user_id, conversation_id, limit))
        return [MessageRecord.model_validate_json(r[0]) for r in rows]

    def delete_user(self, tenant_id: str, user_id: str) -> int:
        with self._lock:
            cur = self._db.execute("DELETE FROM messages WHERE tenant_id = ? AND user_id = ?",
                                   (tenant_id, user_id))
            return cur.rowcount

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

    def ids_for_user(self, tenant_id: str, user_id: str) -> list[str]:
        rows = self._read("SELECT id FROM memories WHERE tenant_id = ? AND user_id = ?",
                          (tenant_id, user_id))
        return [r[0] for r in rows]

    def erase(self, tenant_id: str, ids: Sequence[str]) -> None:
        self._write("DELETE FROM memories WHERE tenant_id = ? AND id = ?",
                    [(tenant_id, i) for i in ids])
