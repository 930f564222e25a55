"""Export of a user's current memories (with their history, sources and info) and their
restoration as they were, whichever API asked.

Export reads keyset pages (MemoryStore.page_active), so a user with a million memories
costs a million / page-size bounded reads, never one that holds them all. Restoration
writes the exported records back without extraction or dedupe: the same ids, values,
history windows and sources. It is idempotent by memory id and content hash: a record
whose memory is already stored unchanged is skipped, so an import cut short and run
again writes nothing twice."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from engram.errors import Conflict, Unprocessable
from engram.models.domain import Memory, MemoryStatus
from engram.models.exports import ExportedMemory
from engram.models.knowledge import is_shared_scope
from engram.models.times import MAX_EPOCH_MS, MIN_EPOCH_MS
from engram.ports import DirectoryStore, Embedder, MemoryCursor, MemoryIndex, MemoryStore
from engram.retrieval.vectors import memory_vectors

MAX_PAGE = 500
EXPORT_JOBS = "exports"  # DirectoryStore collection of mem0 export requests, by id


class ExportJob(BaseModel):
    """A requested export (mem0's create_memory_export): whose memories, and the schema
    the client sent. The memories themselves are read when the export is fetched."""

    id: str
    user_id: str
    agent_id: str | None = None
    app_id: str | None = None
    conversation_id: str | None = None
    schema_text: str = ""
    create_time: int


class ExportPage(BaseModel):
    records: list[ExportedMemory]
    next_cursor: str | None = None  # None: this was the last page


class RestoreResult(BaseModel):
    written: list[str] = Field(default_factory=list)  # memory ids stored (new or changed)
    skipped: list[str] = Field(default_factory=list)  # already stored as exported


def encode_cursor(cursor: MemoryCursor) -> str:
    raw = json.dumps([cursor.create_time, cursor.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> MemoryCursor:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        create_time, memory_id = json.loads(raw)
        if type(create_time) is not int or not isinstance(memory_id, str) \
                or not MIN_EPOCH_MS <= create_time <= MAX_EPOCH_MS:
            raise ValueError
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise Unprocessable("cursor: not a cursor this API returned (pass next_cursor "
                            "from the previous page as it is)") from None
    return MemoryCursor(create_time, memory_id)


@dataclass
class ExportService:
    memories: MemoryStore
    index: MemoryIndex
    embedder: Embedder
    jobs: DirectoryStore | None = None  # export requests (None: mem0 exports not served)

    def save_job(self, tenant_id: str, job: ExportJob) -> None:
        if self.jobs is None:
            raise Unprocessable("memory exports are not served by this deployment")
        self.jobs.put_entry(tenant_id, EXPORT_JOBS, job.id, job.model_dump_json())

    def find_job(self, tenant_id: str, job_id: str | None = None,
                 user_id: str | None = None) -> ExportJob | None:
        """The job of that id, or the tenant's latest job for `user_id`: None when none.
        Keyed by tenant: another tenant's job id is not found."""
        if self.jobs is None:
            return None
        if job_id is not None:
            body = self.jobs.get_entry(tenant_id, EXPORT_JOBS, job_id)
            return ExportJob.model_validate_json(body) if body else None
        jobs = [ExportJob.model_validate_json(b)
                for _, b in self.jobs.list_entries(tenant_id, EXPORT_JOBS)]
        mine = [j for j in jobs if user_id is None or j.user_id == user_id]
        return max(mine, key=lambda j: (j.create_time, j.id)) if mine else None

    def forget_user(self, tenant_id: str, user_id: str) -> int:
        """Erasure: the export requests that name the user; how many."""
        if self.jobs is None:
            return 0
        gone = [key for key, body in self.jobs.list_entries(tenant_id, EXPORT_JOBS)
                if ExportJob.model_validate_json(body).user_id == user_id]
        for key in gone:
            self.jobs.delete_entry(tenant_id, EXPORT_JOBS, key)
        return len(gone)

    def all_current(self, tenant_id: str, user_id: str) -> list[Memory]:
        """Every current memory of the user, read page by page."""
        out: list[Memory] = []
        after: MemoryCursor | None = None
        while True:
            page = self.memories.page_active(tenant_id, user_id, after, MAX_PAGE)
            out.extend(page)
            if len(page) < MAX_PAGE:
                return out
            after = MemoryCursor(page[-1].create_time, page[-1].id)

    def page(self, tenant_id: str, user_id: str, cursor: str | None,
             limit: int = 100) -> ExportPage:
        """One page of the user's current memories, newest first. Another tenant's user
        is simply a user with no memories here: the tenant partitions every read."""
        after = decode_cursor(cursor) if cursor else None
        limit = max(1, min(limit, MAX_PAGE))
        # one more than asked tells whether another page follows
        found = self.memories.page_active(tenant_id, user_id, after, limit + 1)
        page = found[:limit]
        more = len(found) > limit
        next_cursor = encode_cursor(MemoryCursor(page[-1].create_time, page[-1].id)) \
            if more and page else None
        return ExportPage(records=[ExportedMemory.of(m) for m in page], next_cursor=next_cursor)

    def restore(self, tenant_id: str, records: Sequence[ExportedMemory],
                user_id: str | None = None) -> RestoreResult:
        """Store exported memories as they were (in `user_id` when given, else each in its
        own). A memory id already stored for another user is a Conflict: ids are unique
        per tenant, and an import never takes over someone else's memory."""
        seen: dict[str, int] = {}
        for i, record in enumerate(records):
            first = seen.setdefault(record.id, i)
            if first != i:
                raise Unprocessable(f"records[{i}].id repeats records[{first}].id "
                                    f"({record.id!r})")
            owner = user_id or record.user_id
            if is_shared_scope(owner):
                raise Unprocessable(f"records[{i}].user_id: {owner!r} names a shared scope "
                                    "(knowledge base or public), not a user")
        incoming = [r.to_memory(tenant_id, user_id) for r in records]
        stored = {m.id: m for m in self.memories.get_many(tenant_id, [m.id for m in incoming])}
        result, writes = RestoreResult(), []
        for i, memory in enumerate(incoming):
            old = stored.get(memory.id)
            if old is not None and old.user_id != memory.user_id:
                raise Conflict(f"records[{i}].id: memory {memory.id} belongs to another user "
                               "of this tenant; import it under its own user_id")
            if old is not None and _same(old, memory):
                result.skipped.append(memory.id)
                continue
            if old is None and memory.status == MemoryStatus.activated:
                twin = self.memories.find_by_hash(tenant_id, memory.user_id,
                                                  memory.content_hash)
                if twin is not None and twin.memory_type == memory.memory_type:
                    result.skipped.append(memory.id)  # the user already remembers it
                    continue
            writes.append(memory)
        if writes:
            self.memories.put_many(writes)
            active = [m for m in writes if m.status == MemoryStatus.activated]
            if active:
                self.index.upsert(active, memory_vectors(self.embedder, active))
            gone = [m.id for m in writes if m.status != MemoryStatus.activated]
            if gone:
                self.index.remove(tenant_id, gone)
            result.written = [m.id for m in writes]
        return result


def _same(old: Memory, new: Memory) -> bool:
    """Stored as exported: same value (content hash), version, status and history."""
    return (old.content_hash == new.content_hash and old.version == new.version
            and old.status == new.status and len(old.history) == len(new.history))
