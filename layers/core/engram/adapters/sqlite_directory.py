"""The directory (groups, senders, settings, conversation owners) in the embedded
profile's SQLite file, beside the memories: one table, every statement scoped by
tenant, on the store's one connection and lock."""

from __future__ import annotations

from engram.adapters.sqlite_store import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS directory (
    tenant_id TEXT NOT NULL, collection TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, collection, key)
)
"""


class SqliteDirectory:
    """Implements DirectoryStore."""

    def __init__(self, store: SqliteStore):
        self._store = store
        with store._lock:
            store._db.execute(SCHEMA)

    def get_entry(self, tenant_id: str, collection: str, key: str) -> str | None:
        rows = self._store._read(
            "SELECT body FROM directory WHERE tenant_id = ? AND collection = ? AND key = ?",
            (tenant_id, collection, key))
        return rows[0][0] if rows else None

    def put_entry(self, tenant_id: str, collection: str, key: str, body: str) -> None:
        self._store._write("INSERT OR REPLACE INTO directory VALUES (?, ?, ?, ?)",
                           [(tenant_id, collection, key, body)])

    def list_entries(self, tenant_id: str, collection: str) -> list[tuple[str, str]]:
        rows = self._store._read(
            "SELECT key, body FROM directory WHERE tenant_id = ? AND collection = ? "
            "ORDER BY key", (tenant_id, collection))
        return [(r[0], r[1]) for r in rows]

    def delete_entry(self, tenant_id: str, collection: str, key: str) -> None:
        self._store._write(
            "DELETE FROM directory WHERE tenant_id = ? AND collection = ? AND key = ?",
            [(tenant_id, collection, key)])

    def delete_collection(self, tenant_id: str, collection: str) -> int:
        with self._store._lock:
            cur = self._store._db.execute(
                "DELETE FROM directory WHERE tenant_id = ? AND collection = ?",
                (tenant_id, collection))
            return cur.rowcount
