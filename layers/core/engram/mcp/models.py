"""What the MCP tools return: the /v1 answers, trimmed to what a model reads (ids, the
memory text, its type, score and times as ISO 8601 UTC). Each tool's result is also sent
as structured content with these schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from engram.api.memos.models import (
    AddMessageData,
    GetMemoryData,
    MemoryDetail,
    PreferenceDetail,
    SearchData,
    TaskStatusData,
)


def iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds")


class MemoryItem(BaseModel):
    id: str
    memory: str = Field(description="what is remembered")
    type: str = Field(description="LongTermMemory, UserMemory, WorkingMemory (a raw turn "
                                  "not yet processed), ToolSchemaMemory, ...")
    relevance: float | None = Field(default=None, description="0-1, in search results")
    created_at: str | None = None
    updated_at: str | None = None
    event_time: str | None = Field(default=None, description="when what it says happened, "
                                                             "when known")
    conversation_id: str | None = None
    tags: list[str] = []
    info: dict[str, str] = {}


class MemoryVersion(BaseModel):
    version: int
    memory: str
    valid_from: str | None
    valid_to: str | None
    change: str = Field(description="update, supersede, delete, feedback or edit")
    reason: str


class MemoryRecord(MemoryItem):
    status: str = Field(description="activated (current), or archived / deleted")
    version: int
    sources: list[str] = Field(default=[], description="the message ids it came from")
    history: list[MemoryVersion] = Field(default=[], description="earlier values, oldest first")


class PreferenceItem(BaseModel):
    id: str
    preference: str
    type: str = Field(description="explicit_preference or implicit_preference")
    relevance: float | None = None


class SearchResult(BaseModel):
    memories: list[MemoryItem]
    preferences: list[PreferenceItem]
    preference_note: str | None = Field(default=None, description="the preferences in one "
                                                                  "line, ready for a prompt")


class MemoryList(BaseModel):
    memories: list[MemoryItem]
    total: int
    page: int
    pages: int


class AddResult(BaseModel):
    task_id: str
    status: str = Field(description="waiting or running (processing in the background), "
                                    "completed, or failed")
    message_ids: list[str] = []
    memory_views: dict[str, Any] | None = Field(
        default=None, description="when the add waited: the memory ids added, updated, "
                                  "deleted")


class DeleteResult(BaseModel):
    deleted: int


class TaskResult(BaseModel):
    task_id: str
    status: str = Field(description="waiting, running, completed or failed")
    step: str | None = None
    error: str | None = None
    memory_views: dict[str, Any] = {}
    items: list[dict[str, Any]] = Field(default=[], description="files and images of the "
                                        "add, each with its state and error")
    warnings: list[str] = []


def memory_item(detail: MemoryDetail) -> MemoryItem:
    return MemoryItem(
        id=detail.id, memory=detail.memory_value, type=detail.memory_type,
        relevance=detail.relativity, created_at=iso(detail.create_time),
        updated_at=iso(detail.update_time), event_time=iso(detail.event_time),
        conversation_id=detail.conversation_id, tags=detail.tags, info=detail.info)


def memory_record(detail: MemoryDetail) -> MemoryRecord:
    history = [MemoryVersion(version=v.version, memory=v.memory_value,
                             valid_from=iso(v.valid_from), valid_to=iso(v.valid_to),
                             change=v.change, reason=v.reason)
               for v in detail.history or []]
    return MemoryRecord(**memory_item(detail).model_dump(), status=detail.status,
                        version=detail.version, sources=detail.sources, history=history)


def preference_item(detail: PreferenceDetail) -> PreferenceItem:
    return PreferenceItem(id=detail.id, preference=detail.preference,
                          type=detail.preference_type, relevance=detail.relativity)


def search_result(data: SearchData) -> SearchResult:
    return SearchResult(memories=[memory_item(d) for d in data.memory_detail_list],
                        preferences=[preference_item(d) for d in data.preference_detail_list],
                        preference_note=data.preference_note or None)


def memory_list(data: GetMemoryData) -> MemoryList:
    return MemoryList(memories=[memory_item(d) for d in data.memory_detail_list],
                      total=data.total, page=data.current, pages=data.pages)


def add_result(data: AddMessageData) -> AddResult:
    return AddResult(task_id=data.task_id, status=data.status, message_ids=data.message_ids,
                     memory_views=data.memory_views)


def task_result(data: TaskStatusData) -> TaskResult:
    return TaskResult(task_id=data.task_id, status=data.status, step=data.step,
                      error=data.error, memory_views=data.memory_views,
                      items=[i.model_dump(mode="json") for i in data.items],
                      warnings=data.warnings)
