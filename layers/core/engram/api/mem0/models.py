"""Request and response models of mem0's platform API, as `mem0ai` 2.2.1's MemoryClient
sends and reads them (mem0/client/main.py, types.py). Fields the client can send but
Engram cannot honour are declared, so a request using them gets a 422 that names them
instead of being silently half-done."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engram.models.identifiers import plain_identifier


class Mem0Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _refuse(values: dict[str, Any], names: tuple[str, ...], why: str) -> None:
    used = [n for n in names if values.get(n) not in (None, [], {})]
    if used:
        raise ValueError(f"{', '.join(used)} {'is' if len(used) == 1 else 'are'} not "
                         f"supported by Engram ({why})")


class Mem0ChatMessage(Mem0Strict):
    role: Literal["user", "assistant", "system", "tool"] = "user"
    content: str = Field(max_length=100_000)
    name: str | None = None


class Mem0EntityFields(Mem0Strict):
    user_id: str | None = Field(default=None, min_length=1, max_length=256)
    agent_id: str | None = Field(default=None, min_length=1, max_length=256)
    app_id: str | None = Field(default=None, min_length=1, max_length=256)
    run_id: str | None = Field(default=None, min_length=1, max_length=256)

    @field_validator("user_id", "agent_id", "app_id", "run_id")
    @classmethod
    def _plain(cls, value: str | None) -> str | None:
        return plain_identifier(value) if value is not None else None


class Mem0AddRequest(Mem0EntityFields):
    messages: list[Mem0ChatMessage] = Field(min_length=1, max_length=500)
    filters: dict[str, Any] | None = None  # the entities may come here instead
    metadata: dict[str, Any] | None = None
    infer: bool = True
    async_mode: bool = True
    timestamp: int | None = Field(default=None, ge=0)  # when the messages were said (s)
    version: str | None = None
    output_format: str | None = None
    custom_categories: Any = None
    custom_instructions: str | None = None
    agent_custom_instructions: str | None = None
    expiration_date: str | None = None
    structured_data_schema: dict[str, Any] | None = None
    includes: str | None = None
    excludes: str | None = None
    enable_graph: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, values: Any) -> Any:
        if isinstance(values, dict):
            _refuse(values, ("custom_categories", "custom_instructions",
                             "agent_custom_instructions", "structured_data_schema",
                             "includes", "excludes"),
                    "Engram's extraction has no per-request instructions or categories")
            _refuse(values, ("expiration_date",), "memories do not expire")
            _refuse(values, ("enable_graph",), "there is no graph store")
            if values.get("infer") is False:
                raise ValueError("infer=false is not supported by Engram: every add is "
                                 "extracted, de-duplicated and superseded")
        return values


class Mem0SearchRequest(Mem0Strict):
    query: str = Field(min_length=1, max_length=4_000)
    filters: dict[str, Any] | None = None
    top_k: int = Field(default=10, ge=1, le=100)
    threshold: float | None = Field(default=None, ge=0, le=1)
    rerank: bool | None = None  # results are always ranked by Engram's hybrid search
    fields: list[str] | None = None
    categories: list[str] | None = None
    metadata: dict[str, Any] | None = None
    keyword_search: bool | None = None
    latest_only: bool | None = None  # always: superseded values live in history
    show_expired: bool | None = None
    reference_date: str | int | None = None
    version: str | None = None
    output_format: str | None = None


class Mem0GetAllRequest(Mem0Strict):
    filters: dict[str, Any] | None = None
    start_date: str | None = None
    end_date: str | None = None
    categories: list[str] | None = None
    show_expired: bool | None = None
    latest_only: bool | None = None
    version: str | None = None
    output_format: str | None = None


class Mem0UpdateRequest(Mem0Strict):
    text: str | None = Field(default=None, min_length=1, max_length=100_000)
    metadata: dict[str, Any] | None = None
    timestamp: int | float | str | None = None
    expiration_date: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, values: Any) -> Any:
        if isinstance(values, dict):
            _refuse(values, ("expiration_date",), "memories do not expire")
            _refuse(values, ("timestamp",), "a memory's time is when it was said")
        return values


class Mem0BatchUpdateItem(Mem0Strict):
    memory_id: str = Field(min_length=1, max_length=256)
    text: str | None = Field(default=None, min_length=1, max_length=100_000)
    metadata: dict[str, Any] | None = None


class Mem0BatchUpdateRequest(Mem0Strict):
    memories: list[Mem0BatchUpdateItem] = Field(min_length=1, max_length=1000)


class Mem0BatchDeleteItem(Mem0Strict):
    memory_id: str = Field(min_length=1, max_length=256)


class Mem0BatchDeleteRequest(Mem0Strict):
    memories: list[Mem0BatchDeleteItem] = Field(min_length=1, max_length=1000)


class Mem0FeedbackRequest(Mem0Strict):
    memory_id: str = Field(min_length=1, max_length=256)
    feedback: Literal["POSITIVE", "NEGATIVE", "VERY_NEGATIVE"] | None = None
    feedback_reason: str | None = Field(default=None, max_length=2_000)


class Mem0WebhookCreate(Mem0Strict):
    url: str = Field(min_length=1, max_length=2048)
    name: str = Field(min_length=1, max_length=200)
    event_types: list[str] = Field(min_length=1, max_length=10)


class Mem0WebhookUpdate(Mem0Strict):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=10)


# --- responses -----------------------------------------------------------------------

class Mem0Ping(BaseModel):
    status: str = "ok"
    message: str = "API key is valid"
    org_id: str
    project_id: str
    user_email: str | None = None


class Mem0MemoryOut(BaseModel):
    id: str
    memory: str
    user_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] | None = None
    categories: list[str] = []
    created_at: str
    updated_at: str
    expiration_date: str | None = None
    immutable: bool = False
    score: float | None = None


class Mem0Queued(BaseModel):
    message: str = "Memory processing has been queued for background execution"
    status: Literal["PENDING"] = "PENDING"
    event_id: str


class Mem0AddEvent(BaseModel):
    id: str
    event: Literal["ADD", "UPDATE", "DELETE", "NONE"]
    memory: str


class Mem0AddResults(BaseModel):
    results: list[Mem0AddEvent]
    event_id: str


class Mem0EventStatus(BaseModel):
    id: str
    status: Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]
    results: list[Mem0AddEvent] = []
    error: str | None = None
    created_at: str
    updated_at: str


class Mem0SearchResults(BaseModel):
    results: list[Mem0MemoryOut]


class Mem0MemoryPageOut(BaseModel):
    count: int
    next: str | None = None
    previous: str | None = None
    results: list[Mem0MemoryOut]


class Mem0HistoryEntry(BaseModel):
    id: str
    memory_id: str
    input: list[dict[str, Any]] = []
    old_memory: str | None = None
    new_memory: str | None = None
    user_id: str | None = None
    categories: list[str] = []
    event: Literal["ADD", "UPDATE", "DELETE"]
    metadata: dict[str, Any] | None = None
    reason: str | None = None
    created_at: str
    updated_at: str


class Mem0Entity(BaseModel):
    id: str
    name: str
    type: Literal["user", "agent", "app", "run"]
    created_at: str
    updated_at: str
    total_memories: int


class Mem0EntityPage(BaseModel):
    count: int
    next: str | None = None
    previous: str | None = None
    results: list[Mem0Entity]


class Mem0Message(BaseModel):
    message: str


class Mem0FeedbackOut(BaseModel):
    id: str
    feedback: str | None = None
    feedback_reason: str | None = None


class Mem0WebhookOut(BaseModel):
    webhook_id: str
    name: str
    url: str
    event_types: list[str]
    project: str
    is_active: bool
    secret: str | None = None  # shown when created: the key of its signatures
    created_at: str
    updated_at: str


class Mem0Error(BaseModel):
    """An error, with mem0's `detail` beside the envelope's fields."""

    detail: str
    code: int
    message: str
