"""Engram memories, tasks and items → EverOS response items (see api/everos/translate.py for
what maps to what)."""

from __future__ import annotations

from datetime import UTC, datetime

from engram.api.everos.models import (
    AgentCase,
    AgentSkill,
    Episode,
    EpisodeAtomicFact,
    GroupData,
    Profile,
    RawMessage,
    SenderData,
    SettingsData,
    TaskItem,
    TaskStatusResult,
)
from engram.models.directory import GroupRecord, SenderRecord, SpaceSettings
from engram.models.domain import Memory, Task, TaskStatus
from engram.models.identifiers import GROUP_OWNER

GROUP_PREFIX = GROUP_OWNER  # a group is the Engram user group:<group_id>


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _owner(memory: Memory) -> tuple[str | None, str | None]:
    """(user_id, group_id) of the partition the memory lives in."""
    if memory.user_id.startswith(GROUP_PREFIX):
        return None, memory.user_id[len(GROUP_PREFIX):]
    return memory.user_id, None


def _when(memory: Memory) -> int:
    return memory.event_time if memory.event_time is not None else memory.create_time


def episode(memory: Memory, score: float | None = None) -> Episode:
    user_id, group_id = _owner(memory)
    return Episode(
        id=memory.id, episode=memory.memory_value, summary=memory.memory_value,
        subject=memory.memory_key, type=memory.memory_type.value, user_id=user_id,
        group_id=group_id, session_id=memory.conversation_id, timestamp=iso(_when(memory)),
        atomic_facts=[EpisodeAtomicFact(
            id=memory.id, atomic_fact=memory.memory_value, parent_episode_id=memory.id,
            user_id=user_id, group_id=group_id, session_id=memory.conversation_id,
            timestamp=iso(_when(memory)), score=score)],
        score=score, sources=memory.sources, tags=memory.tags)


def profile(memory: Memory, score: float | None = None) -> Profile:
    user_id, group_id = _owner(memory)
    entry = {"key": memory.memory_key, "value": memory.memory_value,
             "polarity": memory.polarity, "reasoning": memory.reasoning}
    data = ({"explicit_info": [entry], "implicit_traits": []}
            if memory.preference_type != "implicit"
            else {"explicit_info": [], "implicit_traits": [entry]})
    return Profile(id=memory.id, user_id=user_id, group_id=group_id, profile_data=data,
                   scenario="team" if group_id else "solo", score=score,
                   sources=memory.sources)


def raw_message(memory: Memory, score: float | None = None) -> RawMessage:
    _, group_id = _owner(memory)
    return RawMessage(
        id=memory.id, request_id=memory.task_id or "",
        message_id=memory.sources[0] if memory.sources else None,
        content_items=[{"type": "text", "text": memory.memory_value}],
        session_id=memory.conversation_id, group_id=group_id,
        sender_name=memory.memory_key.removesuffix(" message"),
        timestamp=iso(_when(memory)), created_at=iso(memory.create_time),
        updated_at=iso(memory.update_time), score=score)


def agent_case(memory: Memory, score: float | None = None) -> AgentCase:
    user_id, group_id = _owner(memory)
    return AgentCase(id=memory.id, task_intent=memory.memory_key,
                     approach=memory.memory_value, user_id=user_id, group_id=group_id,
                     session_id=memory.conversation_id, quality_score=memory.confidence,
                     timestamp=iso(_when(memory)), score=score, sources=memory.sources)


def agent_skill(memory: Memory, score: float | None = None) -> AgentSkill:
    user_id, group_id = _owner(memory)
    return AgentSkill(id=memory.id, name=memory.memory_key, description=memory.memory_value,
                      content=memory.memory_value, user_id=user_id, group_id=group_id,
                      confidence=memory.confidence, score=score)


TASK_STATES = {TaskStatus.waiting: "processing", TaskStatus.running: "processing",
               TaskStatus.completed: "success", TaskStatus.failed: "failed"}


def task_status(task: Task) -> TaskStatusResult:
    return TaskStatusResult(
        task_id=task.task_id, status=TASK_STATES[task.status], error=task.error,
        items=[TaskItem(message_id=s.message_id, index=s.index, type=s.type, name=s.name,
                        uri=s.uri, state=s.state, kind=s.kind, pages=s.pages,
                        seconds=s.seconds, error=s.error) for s in task.items])


def group(record: GroupRecord, sender_ids: list[str]) -> GroupData:
    return GroupData(group_id=record.group_id, name=record.name,
                     description=record.description, created_at=iso(record.create_time) or "",
                     updated_at=iso(record.update_time) or "", sender_ids=sender_ids)


def sender(record: SenderRecord) -> SenderData:
    return SenderData(sender_id=record.sender_id, name=record.name,
                      created_at=iso(record.create_time) or "",
                      updated_at=iso(record.update_time) or "")


def settings(record: SpaceSettings) -> SettingsData:
    return SettingsData(
        boundary_detection_timeout=record.boundary_detection_timeout,
        extraction_mode=record.extraction_mode,
        offline_profile_extraction_interval=record.offline_profile_extraction_interval,
        timezone=record.timezone, llm_custom_setting=record.llm_custom_setting,
        created_at=iso(record.create_time) or "", updated_at=iso(record.update_time) or "")
