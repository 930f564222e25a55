"""Reading and editing a user's memories, and reading back raw messages."""

from __future__ import annotations

from dataclasses import dataclass

from engram.errors import NotFound, Unprocessable
from engram.models.api import DeleteMemoryRequest, GetMemoryRequest, UpdateMemoryRequest
from engram.models.domain import (
    FACT_TYPES,
    TOOL_TYPES,
    Memory,
    MemoryStatus,
    MemoryType,
    MemoryVersion,
    MessageRecord,
    now_ms,
)
from engram.models.filters import FilterError, split_sources
from engram.models.pipeline import segment, upload_prefix, user_prefix
from engram.ports import Embedder, MemoryIndex, MemoryPage, MemoryStore, MessageStore, ObjectStore
from engram.services.dedupe import content_hash
from engram.services.vectors import memory_vectors


@dataclass
class MemoryPages:
    facts: MemoryPage
    preferences: list[Memory]
    tools: list[Memory]


@dataclass
class MemoryService:
    memories: MemoryStore
    messages: MessageStore
    index: MemoryIndex
    embedder: Embedder
    objects: ObjectStore

    def page(self, tenant_id: str, req: GetMemoryRequest) -> MemoryPages:
        try:
            where = split_sources(req.filter)["user"]
        except FilterError as exc:
            raise Unprocessable(str(exc)) from None
        offset = (req.page - 1) * req.size
        facts = self.memories.list_active(tenant_id, req.user_id, FACT_TYPES, offset, req.size,
                                          where)

        def first_page(types: tuple[MemoryType, ...], wanted: bool) -> list[Memory]:
            if not wanted:
                return []
            return self.memories.list_active(tenant_id, req.user_id, types, 0, req.size,
                                             where).items

        return MemoryPages(
            facts=facts,
            preferences=first_page((MemoryType.preference,), req.include_preference),
            tools=first_page(TOOL_TYPES, req.include_tool_memory),
        )

    def get(self, tenant_id: str, memory_id: str) -> Memory:
        found = self.memories.get_many(tenant_id, [memory_id])
        if not found:
            raise NotFound(f"memory {memory_id} not found")
        return found[0]

    def update(self, tenant_id: str, req: UpdateMemoryRequest) -> Memory:
        memory = self.get(tenant_id, req.memory_id)
        if memory.status == MemoryStatus.deleted:
            raise NotFound(f"memory {req.memory_id} was deleted")
        now = now_ms()
        if req.content is not None and req.content != memory.memory_value:
            memory.history.append(MemoryVersion(
                version=memory.version, memory_value=memory.memory_value,
                valid_from=memory.valid_from, valid_to=now, change="edit",
                reason="edited through update/memory"))
            memory.memory_value, memory.version, memory.valid_from = req.content, \
                memory.version + 1, now
            memory.content_hash = content_hash(memory.memory_type, req.content)
            memory.context = ""  # the old neighbouring text no longer describes it
        if req.title is not None:
            memory.memory_key = req.title
        if req.status is not None:
            memory.status = MemoryStatus(req.status)
            memory.valid_to = now if memory.status == MemoryStatus.archived else None
        memory.update_time = now
        self.memories.put_many([memory])
        if memory.status == MemoryStatus.activated:
            self.index.upsert([memory], memory_vectors(self.embedder, [memory]))
        else:
            self.index.remove(tenant_id, [memory.id])
        return memory

    def delete(self, tenant_id: str, req: DeleteMemoryRequest) -> int:
        if req.user_id:
            return self.erase_user(tenant_id, req.user_id)
        found = [m for m in self.memories.get_many(tenant_id, req.memory_ids or [])
                 if m.status != MemoryStatus.deleted]
        if not found:
            raise NotFound("none of memory_ids was found")
        now = now_ms()
        for memory in found:
            memory.status, memory.valid_to, memory.update_time = MemoryStatus.deleted, now, now
        self.memories.put_many(found)
        self.index.remove(tenant_id, [m.id for m in found])
        return len(found)

    def erase_user(self, tenant_id: str, user_id: str) -> int:
        """Delete by user: memories, raw messages, raw requests (with their inline files)
        and the files uploaded for the user (object/sign with userId) are erased."""
        ids = self.memories.ids_for_user(tenant_id, user_id)
        self.index.remove(tenant_id, ids)
        self.memories.erase(tenant_id, ids)
        self.messages.delete_user(tenant_id, user_id)
        self.objects.delete_prefix(user_prefix(tenant_id, user_id))
        self.objects.delete_prefix(f"{upload_prefix(tenant_id)}{segment(user_id)}")
        return len(ids)

    def conversation(self, tenant_id: str, user_id: str, conversation_id: str,
                     limit: int | None) -> list[MessageRecord]:
        return self.messages.list_conversation(tenant_id, user_id, conversation_id,
                                               limit or 1000)
