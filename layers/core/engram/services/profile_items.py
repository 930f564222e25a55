"""A user's profile as items edited one by one (EverOS v2 memory/edit): each item is one
of the user's preference memories, an explicit fact (category → description) or an
implicit trait (trait → description). Added items are stored and indexed at once, as
the pipeline would store them; an update supersedes the memory (its old value goes to
its history); a delete takes it out of search. An item of another user, or of another
tenant, is not found."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engram.errors import NotFound
from engram.models.domain import Memory, MemoryStatus, MemoryType, content_hash
from engram.models.requests import MemoryEdit, PageSpec
from engram.retrieval.vectors import memory_vectors
from engram.services.memories import MemoryService

MAX_ITEMS = 1_000  # items of one profile read at once
PREFERENCE = (MemoryType.preference,)


@dataclass
class ProfileItemService:
    memories: MemoryService

    def items(self, tenant_id: str, user_id: str) -> list[Memory]:
        """The user's current profile items, oldest first."""
        page = self.memories.page(tenant_id, PageSpec(user_id=user_id, types=PREFERENCE,
                                                      offset=0, limit=MAX_ITEMS))
        return sorted(page.items, key=lambda m: (m.create_time, m.id))

    def add(self, tenant_id: str, user_id: str, kind: Literal["explicit", "implicit"],
            key: str, value: str, reason: str | None = None) -> Memory:
        """A new item; one that says the same as a current item is that item."""
        digest = content_hash(MemoryType.preference, value)
        same = self.memories.memories.find_by_hash(tenant_id, user_id, digest)
        if same is not None and same.status == MemoryStatus.activated:
            return same
        memory = Memory(tenant_id=tenant_id, user_id=user_id,
                        memory_type=MemoryType.preference, memory_key=key, memory_value=value,
                        preference_type=kind, reasoning=reason, content_hash=digest,
                        confidence=1.0, tags=["profile_edit"])
        self.memories.memories.put_many([memory])
        self.memories.index.upsert([memory], memory_vectors(self.memories.embedder, [memory]))
        return memory

    def own(self, tenant_id: str, user_id: str, item_id: str) -> Memory:
        found = self.memories.memories.get_many(tenant_id, [item_id])
        if not found or found[0].user_id != user_id or \
                found[0].memory_type != MemoryType.preference or \
                found[0].status != MemoryStatus.activated:
            raise NotFound(f"item {item_id} is not in this user's profile")
        return found[0]

    def update(self, tenant_id: str, user_id: str, item_id: str, key: str | None,
               value: str | None) -> Memory:
        self.own(tenant_id, user_id, item_id)
        return self.memories.update(tenant_id, MemoryEdit(memory_id=item_id, content=value,
                                                          title=key))

    def delete(self, tenant_id: str, user_id: str, item_id: str) -> None:
        self.own(tenant_id, user_id, item_id)
        self.memories.delete(tenant_id, [item_id])
