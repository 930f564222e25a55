"""Engram's records in mem0's response shapes: a memory as mem0's client reads it."""

from __future__ import annotations

from datetime import UTC, datetime

from engram.api.mem0 import models as m
from engram.api.mem0.filters import metadata_of, run_of
from engram.models.domain import Memory


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def present(memory: Memory, score: float | None = None) -> m.Mem0MemoryOut:
    user = memory.user_id
    return m.Mem0MemoryOut(
        id=memory.id, memory=memory.memory_value,
        user_id=None if ":" in user and user.split(":", 1)[0] in ("agent", "app", "run")
        else user,
        agent_id=memory.agent_id, app_id=memory.app_id, run_id=run_of(memory),
        metadata=metadata_of(memory) or None, categories=list(memory.tags),
        created_at=iso(memory.create_time), updated_at=iso(memory.update_time),
        score=score)
