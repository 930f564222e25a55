"""Webhook registrations and their deliveries, as the directory store keeps them (JSON
bodies under the tenant), and the events Engram sends."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from engram.models.domain import new_id, now_ms

# What a tenant can subscribe to. Names follow `<resource>.<what happened>`.
EVENT_TYPES = ("task.completed", "task.failed", "memory.added", "memory.updated",
               "memory.deleted")


class WebhookRecord(BaseModel):
    webhook_id: str = Field(default_factory=lambda: "wh_" + new_id().replace("-", "")[:20])
    name: str
    url: str
    event_types: list[str]
    secret: str  # the HMAC-SHA256 key of this webhook's signatures
    is_active: bool = True
    create_time: int = Field(default_factory=now_ms)
    update_time: int = Field(default_factory=now_ms)


class DeliveryRecord(BaseModel):
    """One event sent (or being sent) to one webhook: its outcome after the retries."""

    delivery_id: str = Field(default_factory=new_id)
    webhook_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"] = "pending"
    attempts: int = 0
    last_status: int | None = None  # the receiver's last HTTP status
    last_error: str | None = None
    update_time: int = Field(default_factory=now_ms)


class Event(BaseModel):
    """What a webhook receives (the JSON body) and what goes on the EventBridge bus
    (`data` as the detail). `event_details` is mem0's webhook shape, for memory events, so
    a receiver written for mem0 reads it unchanged."""

    id: str = Field(default_factory=new_id)
    type: str
    created_at: int = Field(default_factory=now_ms)  # epoch ms
    data: dict[str, Any]
    event_details: dict[str, Any] | None = None
