"""Domain records → MemOS response items."""

from __future__ import annotations

from engram.api.memos.models import (
    MemoryDetail,
    MemoryVersionDetail,
    MessageDetail,
    PreferenceDetail,
    ToolMemoryDetail,
)
from engram.models.domain import Memory, MessageRecord


def memory_detail(memory: Memory, relativity: float | None = None,
                  with_history: bool = False) -> MemoryDetail:
    history = [MemoryVersionDetail(**v.model_dump()) for v in memory.history] \
        if with_history else None
    return MemoryDetail(
        id=memory.id, memory_key=memory.memory_key, memory_value=memory.memory_value,
        memory_type=memory.memory_type.value, create_time=memory.create_time,
        conversation_id=memory.conversation_id, status=memory.status.value,
        confidence=memory.confidence, tags=memory.tags, update_time=memory.update_time,
        relativity=relativity, sources=memory.sources, info=memory.info,
        agent_id=memory.agent_id, app_id=memory.app_id, event_time=memory.event_time,
        version=memory.version, history=history, public=memory.public)


def shared_detail(memory: Memory, relativity: float, source: str,
                  knowledgebase_id: str | None = None) -> MemoryDetail:
    """A memory a search found in a shared scope: the tenant's public memories, or a
    knowledge base (a passage names its file and page)."""
    detail = memory_detail(memory, relativity)
    detail.source = source  # type: ignore[assignment]
    if knowledgebase_id is not None:
        detail.knowledgebase_id = knowledgebase_id
        detail.file_id = memory.info.get("file_id")
        detail.file_name = memory.info.get("file_name")
        page = memory.info.get("page")
        detail.page = int(page) if page and page.isdigit() else None
    return detail


def preference_detail(memory: Memory, relativity: float | None = None) -> PreferenceDetail:
    return PreferenceDetail(
        id=memory.id, preference_type=f"{memory.preference_type or 'explicit'}_preference",
        preference=memory.memory_value, reasoning=memory.reasoning or "",
        memory_key=memory.memory_key, polarity=memory.polarity,
        create_time=memory.create_time, update_time=memory.update_time,
        conversation_id=memory.conversation_id, status=memory.status.value,
        confidence=memory.confidence, tags=memory.tags, relativity=relativity,
        sources=memory.sources)


def tool_detail(memory: Memory, relativity: float | None = None) -> ToolMemoryDetail:
    return ToolMemoryDetail(
        id=memory.id, tool_type=memory.memory_type.value, tool_value=memory.memory_value,
        memory_key=memory.memory_key, create_time=memory.create_time,
        update_time=memory.update_time, relativity=relativity, sources=memory.sources)


def message_detail(message: MessageRecord) -> MessageDetail:
    return MessageDetail(
        message_id=message.message_id, role=message.role.value, content=message.text,
        chat_time=message.chat_time, create_time=message.create_time,
        conversation_id=message.conversation_id)
