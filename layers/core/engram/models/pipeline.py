"""What pipeline steps write to the object store and read back (by key, never inline)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from engram.models.content import ContentItem, TextBlockRef
from engram.models.domain import Candidate, Memory, MessageRecord


class ToolCallRecord(BaseModel):
    """A tool call an assistant turn made (OpenAI format), with the tool turn answering it."""

    message_id: str
    call_id: str
    name: str
    arguments: str = ""
    result_message_id: str | None = None


class IngestJob(BaseModel):
    """The raw add/message (or add/feedback) request, kept as received."""

    task_id: str
    tenant_id: str
    user_id: str
    conversation_id: str | None
    # "agent": an agent trajectory (EverOS memories/agent); its tool calls become tool memory
    kind: Literal["add", "feedback", "agent"] = "add"
    agent_id: str | None = None
    app_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    info: dict[str, str] = Field(default_factory=dict)
    allow_public: bool = False
    knowledgebase_ids: list[str] = Field(default_factory=list)
    messages: list[MessageRecord]
    items: list[ContentItem] = Field(default_factory=list)  # non-text content, by pointer
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)  # agent trajectories
    working_ids: list[str] = Field(default_factory=list)  # fast-path memories to retire


class ParsedMessages(BaseModel):
    messages: list[MessageRecord]
    blocks: list[TextBlockRef] = Field(default_factory=list)  # text parsed from the items


class ExtractedCandidates(BaseModel):
    extractor: str
    candidates: list[Candidate]


class MemoryWrite(BaseModel):
    memory: Memory
    vector: list[float] | None = None  # None: the stored vector is still right


class DedupePlan(BaseModel):
    """Final states of every memory the task touches, and what the task did."""

    writes: list[MemoryWrite]
    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    noop: int = 0


def segment(value: str) -> str:
    """An id made safe as one object-key segment ("/" and ".." cannot walk the tree)."""
    return quote(value, safe="").replace(".", "%2E")


def user_prefix(tenant_id: str, user_id: str) -> str:
    return f"requests/{segment(tenant_id)}/{segment(user_id)}"


def request_key(tenant_id: str, user_id: str, task_id: str) -> str:
    return f"{user_prefix(tenant_id, user_id)}/{segment(task_id)}.json"


def item_key(tenant_id: str, user_id: str, task_id: str, message_id: str, index: int) -> str:
    """Where inline content (base64, data: URLs) of an add request is kept: beside the
    request, so deleting the user's data removes it too."""
    return (f"{user_prefix(tenant_id, user_id)}/{segment(task_id)}/items/"
            f"{segment(message_id)}-{index}")


def upload_prefix(tenant_id: str) -> str:
    """Every key object/sign hands out for a tenant starts with this."""
    return f"uploads/{segment(tenant_id)}/"


def work_prefix(tenant_id: str, task_id: str) -> str:
    return f"work/{segment(tenant_id)}/{segment(task_id)}"


def work_key(tenant_id: str, task_id: str, name: str) -> str:
    return f"{work_prefix(tenant_id, task_id)}/{name}.json"
