"""The export format: JSON Lines, a header line then one line per current memory.

    {"format": "engram-export", "version": 1, "user_id": "u1", "exported_at": 1733400000000}
    {"kind": "memory", "id": "...", "memory_type": "UserMemory", "memory_value": "...",
     "history": [{"version": 1, "memory_value": "...", "valid_from": ..., "valid_to": ...,
                  "change": "supersede", "reason": "..."}], "sources": ["msg-1"], ...}

A record is the stored memory without its tenant (the importing key decides that) and
without knowledge-base links (they name another deployment's bases). Times are UTC
epoch ms. `POST /v1/import/memory` takes these records back as they were: values,
history with validity windows, sources, info and ids."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from engram.models.domain import (
    Memory,
    MemoryStatus,
    MemoryType,
    MemoryVersion,
    SaidBy,
    content_hash,
)
from engram.models.identifiers import Id
from engram.models.times import MAX_EPOCH_MS, MIN_EPOCH_MS

EXPORT_FORMAT = "engram-export"
EXPORT_VERSION = 1
MAX_VALUE_CHARS = 100_000  # as a message's text: a memory is never longer than its turn
# epoch ms in the range every time field of the API takes (1970-2100): the indexes keep
# times as int64 and DynamoDB's sort keys as 13 digits
EpochMs = Annotated[int, Field(ge=MIN_EPOCH_MS, le=MAX_EPOCH_MS)]


class ExportHeader(BaseModel):
    """The first line of an export file."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["engram-export"] = EXPORT_FORMAT
    version: Literal[1] = EXPORT_VERSION
    user_id: str
    exported_at: EpochMs


class ExportedVersion(BaseModel):
    """A past value of a memory and the window in which it held."""

    version: int = Field(ge=1, le=1_000_000)
    memory_value: str = Field(max_length=MAX_VALUE_CHARS)
    valid_from: EpochMs
    valid_to: EpochMs
    change: Literal["add", "update", "supersede", "delete", "feedback", "edit"]
    reason: str = Field(default="", max_length=4_000)
    task_id: str | None = None


class ExportedMemory(BaseModel):
    """One line of an export after the header: a memory with its history."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["memory"] = "memory"
    id: Id
    user_id: Id
    memory_type: MemoryType
    memory_key: str = Field(default="", max_length=1_000)
    memory_value: str = Field(min_length=1, max_length=MAX_VALUE_CHARS)
    status: MemoryStatus = MemoryStatus.activated
    version: int = Field(default=1, ge=1, le=1_000_000)
    history: list[ExportedVersion] = Field(default_factory=list, max_length=1_000)
    sources: list[StrictStr] = Field(default_factory=list, max_length=10_000)
    info: dict[str, StrictStr] = Field(default_factory=dict)
    tags: list[StrictStr] = Field(default_factory=list, max_length=100)
    confidence: float = Field(default=0.9, ge=0, le=1)
    create_time: EpochMs
    update_time: EpochMs
    event_time: EpochMs | None = None
    valid_from: EpochMs
    valid_to: EpochMs | None = None
    conversation_id: Id | None = None
    agent_id: Id | None = None
    app_id: Id | None = None
    content_hash: str = ""  # as exported; import recomputes it from type and value
    preference_type: Literal["explicit", "implicit"] | None = None
    polarity: Literal["positive", "negative"] | None = None
    reasoning: str | None = Field(default=None, max_length=4_000)
    language: str = Field(default="en", max_length=16)
    context: str = Field(default="", max_length=MAX_VALUE_CHARS)
    said_by: SaidBy = "user"
    whole_turn: bool = False
    episode: bool = False
    episode_ids: list[StrictStr] = Field(default_factory=list, max_length=10_000)
    public: bool = False
    task_id: str | None = None

    @classmethod
    def of(cls, memory: Memory) -> ExportedMemory:
        return cls.model_validate(memory.model_dump(
            exclude={"tenant_id", "knowledgebase_ids"}))

    def to_memory(self, tenant_id: str, user_id: str | None = None) -> Memory:
        """The memory as it was, in `tenant_id` (and under `user_id` when given)."""
        fields = self.model_dump(exclude={"kind", "history", "content_hash"})
        fields["user_id"] = user_id or self.user_id
        return Memory(
            tenant_id=tenant_id, **fields,
            history=[MemoryVersion(**v.model_dump()) for v in self.history],
            content_hash=content_hash(self.memory_type, self.memory_value))
