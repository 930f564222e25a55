"""Knowledge bases (MemOS `create/knowledgebase`, `add/knowledgebase-file`, ...) and the
shared scopes memories are readable in besides their owner's partition.

A memory is always owned by one user (its `user_id`, the hard partition). Two kinds of
scope are shared inside a tenant: PUBLIC_SCOPE holds the memories an add wrote with
`allow_public`, and `kb_scope(id)` a knowledge base's passages plus the memories an add
wrote into it (`allow_knowledgebase_ids`). An index keeps a memory readable in each of
`read_scopes(memory)`; searching a scope is searching it as if it were a user.

Scope names start with U+001F, a control character no client id may hold
(models/identifiers.py), so no user id can ever name a shared scope. A knowledge base's
passages are owned by the knowledge base's own scope: no user can page, edit or erase them
through a user-scoped route.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from engram.models.domain import Memory, new_id, now_ms

SHARED = "\x1f"
PUBLIC_SCOPE = f"{SHARED}public"
KB_SCOPE_PREFIX = f"{SHARED}kb:"


def kb_scope(knowledgebase_id: str) -> str:
    return f"{KB_SCOPE_PREFIX}{knowledgebase_id}"


def is_shared_scope(user_id: str) -> bool:
    return user_id.startswith(SHARED)


def read_scopes(memory: Memory) -> list[str]:
    """Where `memory` can be found: its owner's partition first, then the shared scopes."""
    scopes = [memory.user_id]
    if memory.public:
        scopes.append(PUBLIC_SCOPE)
    scopes += [kb_scope(k) for k in memory.knowledgebase_ids]
    return list(dict.fromkeys(scopes))


FileState = Literal["running", "completed", "failed"]


class KnowledgeBase(BaseModel):
    tenant_id: str
    knowledgebase_id: str = Field(default_factory=new_id)
    name: str
    description: str | None = None
    create_time: int = Field(default_factory=now_ms)


class KnowledgeFile(BaseModel):
    """One file of a knowledge base and what became of it: its state, the pages read and
    the passages (memories owned by the knowledge base's scope) made of it."""

    tenant_id: str
    knowledgebase_id: str
    file_id: str = Field(default_factory=new_id)
    name: str
    type: Literal["document"] = "document"
    size: int  # bytes
    content_type: str | None = None
    kind: str | None = None  # what the parser read it as: pdf, doc, html, text
    source: str  # "upload", "base64" or the URL it was fetched from
    status: FileState = "running"
    error: str | None = None
    pages: int | None = None
    passage_ids: list[str] = Field(default_factory=list)
    object_key: str | None = None
    create_time: int = Field(default_factory=now_ms)
    update_time: int = Field(default_factory=now_ms)
