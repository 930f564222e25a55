"""ProfileStore in the embedded profile's SQLite file (the store's connection and lock):
two tables of its own, created on first use, every statement keyed by tenant."""

from __future__ import annotations

from engram.adapters.sqlite_store import SqliteStore
from engram.models.profiles import Profile, ProfileTemplate

PROFILE_SCHEMA = """
CREATE TABLE IF NOT EXISTS profile_templates (
    tenant_id TEXT NOT NULL, template_id TEXT NOT NULL, create_time INTEGER NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (tenant_id, template_id)
);
CREATE TABLE IF NOT EXISTS profiles (
    tenant_id TEXT NOT NULL, subject_kind TEXT NOT NULL, subject_id TEXT NOT NULL,
    template_id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, subject_kind, subject_id, template_id)
);
"""


class SqliteProfileStore:
    """Implements ProfileStore. Deletes go through the store's connection, which has
    secure_delete on: an erased profile leaves no readable page behind."""

    def __init__(self, store: SqliteStore):
        self._store = store
        with store._lock:
            store._db.executescript(PROFILE_SCHEMA)

    def put_template(self, template: ProfileTemplate) -> None:
        self._store._write("INSERT OR REPLACE INTO profile_templates VALUES (?, ?, ?, ?)",
                           [(template.tenant_id, template.profile_template_id,
                             template.create_time, template.model_dump_json())])

    def get_template(self, tenant_id: str, template_id: str) -> ProfileTemplate | None:
        rows = self._store._read("SELECT body FROM profile_templates WHERE tenant_id = ? "
                                 "AND template_id = ?", (tenant_id, template_id))
        return ProfileTemplate.model_validate_json(rows[0][0]) if rows else None

    def list_templates(self, tenant_id: str) -> list[ProfileTemplate]:
        rows = self._store._read("SELECT body FROM profile_templates WHERE tenant_id = ? "
                                 "ORDER BY create_time DESC, template_id DESC", (tenant_id,))
        return [ProfileTemplate.model_validate_json(r[0]) for r in rows]

    def put_profile(self, profile: Profile) -> None:
        self._store._write("INSERT OR REPLACE INTO profiles VALUES (?, ?, ?, ?, ?)",
                           [(profile.tenant_id, profile.subject_kind, profile.subject_id,
                             profile.profile_template_id, profile.model_dump_json())])

    def get_profile(self, tenant_id: str, kind: str, subject_id: str,
                    template_id: str) -> Profile | None:
        rows = self._store._read(
            "SELECT body FROM profiles WHERE tenant_id = ? AND subject_kind = ? AND "
            "subject_id = ? AND template_id = ?", (tenant_id, kind, subject_id, template_id))
        return Profile.model_validate_json(rows[0][0]) if rows else None

    def profiles_of(self, tenant_id: str, kind: str, subject_id: str) -> list[Profile]:
        rows = self._store._read(
            "SELECT body FROM profiles WHERE tenant_id = ? AND subject_kind = ? AND "
            "subject_id = ? ORDER BY template_id", (tenant_id, kind, subject_id))
        return [Profile.model_validate_json(r[0]) for r in rows]

    def delete_profile(self, tenant_id: str, kind: str, subject_id: str,
                       template_id: str) -> bool:
        with self._store._lock:
            cur = self._store._db.execute(
                "DELETE FROM profiles WHERE tenant_id = ? AND subject_kind = ? AND "
                "subject_id = ? AND template_id = ?", (tenant_id, kind, subject_id, template_id))
            return cur.rowcount > 0

    def erase_subject(self, tenant_id: str, kind: str, subject_id: str) -> int:
        with self._store._lock:
            cur = self._store._db.execute(
                "DELETE FROM profiles WHERE tenant_id = ? AND subject_kind = ? AND "
                "subject_id = ?", (tenant_id, kind, subject_id))
            return cur.rowcount
