"""Engram memories → EverOS v2 response items (see translate.py for what maps to what).
Every item names the scope and owner it was asked for: the request's app, project, and
user or agent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engram.api.everos.presenters import iso
from engram.api.everos.v2.models import (
    V2AgentCase,
    V2AgentSkill,
    V2AtomicFact,
    V2Episode,
    V2ProfileEntry,
    V2UnprocessedMessage,
)
from engram.models.domain import Memory


@dataclass(frozen=True)
class Owner:
    """Whose memories a request reads: the request's scope and owner, and the Engram
    user (partition) that holds them."""

    app_id: str
    project_id: str
    user_id: str | None
    agent_id: str | None
    partition: str


def _when(memory: Memory) -> str:
    return iso(memory.event_time if memory.event_time is not None else memory.create_time) \
        or ""


def episode(owner: Owner, memory: Memory, score: float | None = None) -> V2Episode:
    return V2Episode(
        id=memory.id, app_id=owner.app_id, project_id=owner.project_id,
        user_id=owner.user_id, session_id=memory.conversation_id, timestamp=_when(memory),
        sender_ids=[owner.user_id] if owner.user_id else [], summary=memory.memory_value,
        subject=memory.memory_key, episode=memory.memory_value,
        type=memory.memory_type.value,
        atomic_facts=[V2AtomicFact(id=memory.id, content=memory.memory_value, score=score)],
        score=score, sources=memory.sources)


def profile_item(memory: Memory) -> dict[str, Any]:
    """One item of a profile: an explicit fact (category, description) or an implicit
    trait (trait, description), with its item_id (the memory's id)."""
    if memory.preference_type == "implicit":
        item: dict[str, Any] = {"item_id": memory.id, "trait": memory.memory_key,
                                "description": memory.memory_value}
        if memory.reasoning:
            item["basis"] = memory.reasoning
    else:
        item = {"item_id": memory.id, "category": memory.memory_key,
                "description": memory.memory_value}
    if memory.polarity:
        item["polarity"] = memory.polarity
    item["sources"] = memory.sources
    return item


def profile_data(memories: list[Memory]) -> dict[str, Any]:
    return {"explicit_info": [profile_item(m) for m in memories
                              if m.preference_type != "implicit"],
            "implicit_traits": [profile_item(m) for m in memories
                                if m.preference_type == "implicit"]}


def profile(owner: Owner, memories: list[Memory], score: float | None = None
            ) -> V2ProfileEntry:
    """A user's profile: one entry holding every item of it."""
    return V2ProfileEntry(id=f"profile:{owner.partition}", app_id=owner.app_id,
                        project_id=owner.project_id, user_id=owner.user_id or "",
                        profile_data=profile_data(memories), score=score)


def agent_case(owner: Owner, memory: Memory, score: float | None = None) -> V2AgentCase:
    return V2AgentCase(id=memory.id, app_id=owner.app_id, project_id=owner.project_id,
                     agent_id=owner.agent_id or "", session_id=memory.conversation_id or "",
                     task_intent=memory.memory_key, approach=memory.memory_value,
                     quality_score=memory.confidence, timestamp=_when(memory), score=score)


def agent_skill(owner: Owner, memory: Memory, score: float | None = None) -> V2AgentSkill:
    return V2AgentSkill(id=memory.id, app_id=owner.app_id, project_id=owner.project_id,
                      agent_id=owner.agent_id or "", name=memory.memory_key,
                      description=memory.memory_value, content=memory.memory_value,
                      confidence=memory.confidence, maturity_score=memory.confidence,
                      score=score)


def unprocessed(owner: Owner, memory: Memory) -> V2UnprocessedMessage:
    """A turn not yet turned into memories (Engram's WorkingMemory)."""
    role = "assistant" if memory.said_by == "assistant" else "user"
    return V2UnprocessedMessage(
        id=memory.id, app_id=owner.app_id, project_id=owner.project_id,
        session_id=memory.conversation_id or "",
        sender_id=owner.user_id or owner.agent_id or "",
        sender_name=memory.memory_key.removesuffix(" message") or None, role=role,
        content=memory.memory_value, timestamp=_when(memory))
