"""What a tenant names besides its memories: groups and senders (the people who speak in
group conversations), the space's settings, and which partitions a conversation wrote to.
The EverOS routes keep them (api/everos/); services/directory.py reads and writes them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from engram.models.domain import now_ms


class GroupRecord(BaseModel):
    group_id: str
    name: str | None = None
    description: str | None = None
    create_time: int = Field(default_factory=now_ms)
    update_time: int = Field(default_factory=now_ms)


class SenderRecord(BaseModel):
    sender_id: str
    name: str | None = None
    create_time: int = Field(default_factory=now_ms)
    update_time: int = Field(default_factory=now_ms)


class SpaceSettings(BaseModel):
    """A tenant's EverOS settings. Stored and answered as set; Engram extracts every add
    as it arrives and runs the LLM its deployment configures, so none of them changes
    how memories are made."""

    boundary_detection_timeout: int = 0
    extraction_mode: Literal["default", "pro"] = "default"
    offline_profile_extraction_interval: int = 0
    timezone: str = "UTC"
    llm_custom_setting: dict[str, Any] | None = None
    create_time: int = Field(default_factory=now_ms)
    update_time: int = Field(default_factory=now_ms)
