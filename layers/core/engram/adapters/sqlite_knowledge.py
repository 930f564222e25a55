"""KnowledgeStore for the embedded profile: two tables in the store's SQLite file (its one
connection and lock, its secure_delete), created on first use."""

from __future__ import annotations

from collections.abc import Sequence

from engram.adapters.sqlite_store import SqliteStore
from engram.models.knowledge import KnowledgeBase, KnowledgeFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS knowledge_bases (
    tenant_id TEXT NOT NULL, knowledgebase_id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, knowledgebase_id)
);
CREATE TABLE IF NOT EXISTS knowledge_files (
    tenant_id TEXT NOT NULL, file_id TEXT NOT NULL, knowledgebase_id TEXT NOT NULL,
    create_time INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, file_id)
);
CREATE INDEX IF NOT EXISTS knowledge_files_by_base
    ON knowledge_files (tenant_id, knowledgebase_id, create_time);
"""


class SqliteKnowledgeStore:
    """Implements KnowledgeStore."""

    def __init__(self, store: SqliteStore):
        self._store = store
        with store._lock:
            store._db.executescript(SCHEMA)

    def put_base(self, base: KnowledgeBase) -> None:
        self._store._write("INSERT OR REPLACE INTO knowledge_bases VALUES (?, ?, ?)",
                           [(base.tenant_id, base.knowledgebase_id, base.model_dump_json())])

    def get_base(self, tenant_id: str, knowledgebase_id: str) -> KnowledgeBase | None:
        rows = self._store._read(
            "SELECT body FROM knowledge_bases WHERE tenant_id = ? AND knowledgebase_id = ?",
            (tenant_id, knowledgebase_id))
        return KnowledgeBase.model_validate_json(rows[0][0]) if rows else None

    def delete_base(self, tenant_id: str, knowledgebase_id: str) -> None:
        self._store._write(
            "DELETE FROM knowledge_bases WHERE tenant_id = ? AND knowledgebase_id = ?",
            [(tenant_id, knowledgebase_id)])

    def put_file(self, file: KnowledgeFile) -> None:
        self._store._write(
            "INSERT OR REPLACE INTO knowledge_files VALUES (?, ?, ?, ?, ?)",
            [(file.tenant_id, file.file_id, file.knowledgebase_id, file.create_time,
              file.model_dump_json())])

    def claim_file(self, file: KnowledgeFile) -> KnowledgeFile | None:
        with self._store._lock:  # one writer: the read and the insert are one step
            there = self.get_files(file.tenant_id, [file.file_id])
            if there:
                return there[0]
            self.put_file(file)
            return None

    def get_files(self, tenant_id: str, file_ids: Sequence[str]) -> list[KnowledgeFile]:
        if not file_ids:
            return []
        marks = ",".join("?" * len(file_ids))
        rows = self._store._read(
            f"SELECT body FROM knowledge_files WHERE tenant_id = ? AND file_id IN ({marks})",
            (tenant_id, *file_ids))
        by_id = {f.file_id: f for f in (KnowledgeFile.model_validate_json(r[0]) for r in rows)}
        return [by_id[i] for i in dict.fromkeys(file_ids) if i in by_id]

    def list_files(self, tenant_id: str, knowledgebase_id: str) -> list[KnowledgeFile]:
        rows = self._store._read(
            "SELECT body FROM knowledge_files WHERE tenant_id = ? AND knowledgebase_id = ? "
            "ORDER BY create_time, file_id", (tenant_id, knowledgebase_id))
        return [KnowledgeFile.model_validate_json(r[0]) for r in rows]

    def delete_files(self, files: Sequence[KnowledgeFile]) -> None:
        self._store._write("DELETE FROM knowledge_files WHERE tenant_id = ? AND file_id = ?",
                           [(f.tenant_id, f.file_id) for f in files])
