"""What the request services take and answer, whichever API a request came through.

Each dialect (api/memos, api/everos) translates its requests into these and the answers
back into its own response shapes (its translate.py); the services know no dialect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from engram.models.content import ItemInput
from engram.models.domain import MemoryStatus, MemoryType, Role
from engram.models.filters import FilterNode

# --- adds (services/ingest.py) ---------------------------------------------------------


@dataclass
class MessageDraft:
    """One message of an add, whichever API it came through."""

    role: Role
    text: str
    chat_time: int | None = None
    message_id: str | None = None
    speaker: str | None = None
    items: list[ItemInput] = field(default_factory=list)
    tool_calls: list[tuple[str, str, str]] = field(default_factory=list)  # (id, name, args)
    tool_call_id: str | None = None  # a tool turn: the call it answers


@dataclass
class AddSpec:
    """Where an add goes and how it runs."""

    user_id: str
    conversation_id: str
    async_mode: bool = True
    kind: str = "add"  # "agent": tool calls become tool memory; "feedback": corrections
    agent_id: str | None = None
    app_id: str | None = None
    tags: list[str] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)
    allow_public: bool = False
    knowledgebase_ids: list[str] = field(default_factory=list)
    idempotency_key: str | None = None  # the client's Idempotency-Key, or a queued job's


def shown_text(text: str, calls: list[tuple[str, str, str]]) -> str:
    """A turn's text as kept and replayed: its tool calls written out after its words."""
    return "\n".join([text, *(f"[tool call {name}] {args}" for _, name, args in calls)]).strip()


class AcceptResult(BaseModel):
    """What an accepted add answers. A replay gets the first answer back from the
    idempotency record that holds it as JSON, so these field names are stored: keep them
    (erasure reads `$.task_id` from those records)."""

    success: bool = True
    task_id: str
    status: str
    message_ids: list[str] = []
    memory_views: dict[str, Any] | None = None  # present when the add ran synchronously


# --- search (services/search.py) ---------------------------------------------------------


@dataclass
class SearchSpec:
    """What a search looks for in one user's memories, and how many of each kind it
    returns (0: none of that kind)."""

    user_id: str
    query: str
    where: FilterNode | None = None
    conversation_id: str | None = None  # memories of this conversation rank a little higher
    fact_limit: int = 6
    preference_limit: int = 0
    tool_limit: int = 0
    relativity: float | None = None  # the least relativity a result may have
    # When the question is asked (epoch ms; None: now, or as_of when given): the dates
    # the query names ("last Saturday") count from it (retrieval/timeframes.py)
    reference_time: int | None = None
    as_of: int | None = None  # each memory as it stood then (epoch ms); None: as it is now


# --- memories (services/memories.py) -----------------------------------------------------


@dataclass
class PageSpec:
    """One page of a user's current memories of some types, newest first."""

    user_id: str
    types: tuple[MemoryType, ...]
    offset: int = 0
    limit: int = 10
    where: FilterNode | None = None


@dataclass
class MemoryEdit:
    """A client's change to one memory; what is None stays as it is."""

    memory_id: str
    content: str | None = None
    title: str | None = None
    status: MemoryStatus | None = None
    info: dict[str, str] | None = None  # replaces the memory's info (mem0's metadata)
    # When given, the memory must be this user's own (a public memory of another user is
    # readable by every user of the tenant, never editable by them): else a 404.
    user_id: str | None = None


# --- uploads (services/uploads.py) -------------------------------------------------------


@dataclass
class SignedFile:
    """Where one file goes and the form that uploads it: POST `fields` plus the file to
    `url`, at most `max_bytes`."""

    key: str
    url: str
    fields: dict[str, str]
    max_bytes: int
