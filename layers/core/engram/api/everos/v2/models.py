"""Request and response models of EverOS's v2 API (/api/v2/...), as EverOS's cloud SDK
(PyPI everos-cloud==1.0.0) and its MCP server (everos-mcp) send and read them.

Answers are `{"request_id": ..., "data": {...}}`; object/sign answers in the MMS format
(as in v1). Errors use Engram's envelope `{"code", "message", "data": null}`, the
message naming the field (object/sign: MMS's, status 2018).

v2 names an owner per request: `user_id` (a person) or `agent_id` (an assistant, whose
trajectories become agent cases and skills); `app_id` / `project_id` scope both.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from engram.api.everos.models import ContentItem, Filters, ObjectSignItemRequest
from engram.api.memos.models import ToolCall
from engram.models.identifiers import ID_PATTERN, Id, UserId, plain_identifier
from engram.models.times import EpochMs

# EverOS caps a session id at 128 characters (Engram's identifiers reach 256)
SessionId = Annotated[str, Field(min_length=1, max_length=128,
                                 json_schema_extra={"pattern": ID_PATTERN}),
                      AfterValidator(plain_identifier)]
SCOPE_HELP = "Business scope; memories of one app and project are apart from every other's"


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Scoped(Request):
    app_id: Id = Field(default="default", description=SCOPE_HELP)
    project_id: Id = Field(default="default", description=SCOPE_HELP)


class Owned(Scoped):
    """Exactly one of user_id / agent_id (checked by the translator, naming both)."""

    user_id: UserId | None = None
    agent_id: Id | None = None


# --- add -----------------------------------------------------------------------------

class V2MessageItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sender_id: Id
    sender_name: str | None = Field(default=None, max_length=256)
    role: Literal["user", "assistant", "tool"]
    timestamp: EpochMs
    content: str | list[ContentItem]
    tool_calls: list[ToolCall] | None = None
    tool_call_id: Id | None = None


class V2AddRequest(Scoped):
    session_id: SessionId
    mode: Literal["chat", "agent"] = "chat"
    messages: list[V2MessageItem] = Field(min_length=1, max_length=500)
    async_mode: bool = True


class V2AddData(BaseModel):
    message_count: int
    # queued: accepted, running (202); extracted: done (200, async_mode false)
    status: Literal["accumulated", "extracted", "queued"]
    # Engram's additions: the add's task (follow it with GET /api/v1/tasks/{task_id}, or
    # wait for it with /api/v2/memory/flush); one per owner when several users spoke.
    task_id: str
    task_ids: list[str]


class V2AddResponse(BaseModel):
    request_id: str
    data: V2AddData


# --- search / get --------------------------------------------------------------------

class V2SearchRequest(Owned):
    query: str = Field(min_length=1, max_length=4_000)
    method: Literal["keyword", "vector", "hybrid", "agentic"] = "hybrid"
    top_k: int = Field(default=-1, ge=-1, le=100)
    radius: float | None = Field(default=None, ge=0, le=1)
    min_score: float | None = Field(default=None, ge=0, le=1)
    include_profile: bool = False
    enable_llm_rerank: bool = False
    filters: Filters | None = None

    @field_validator("top_k")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("top_k is -1 (as many as pass the threshold) or 1-100")
        return value


class V2GetRequest(Owned):
    memory_type: Literal["episode", "profile", "agent_case", "agent_skill"]
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=20, ge=1, le=100)
    sort_by: Literal["timestamp", "updated_at"] = "timestamp"
    sort_order: Literal["asc", "desc"] = "desc"
    filters: Filters | None = None


def _score() -> Any:
    return Field(default=None, exclude_if=lambda v: v is None)


class V2AtomicFact(BaseModel):
    id: str
    content: str
    score: float | None = _score()


class V2Episode(BaseModel):
    id: str
    app_id: str
    project_id: str
    user_id: str | None = None
    session_id: str | None = None
    timestamp: str
    sender_ids: list[str] = []
    summary: str
    subject: str
    episode: str
    type: str
    atomic_facts: list[V2AtomicFact] = []
    score: float | None = _score()
    sources: list[str] = []  # Engram's: the message ids (and pages) it came from


class V2ProfileEntry(BaseModel):
    id: str
    app_id: str
    project_id: str
    user_id: str
    # {"explicit_info": [{item_id, category, description, ...}],
    #  "implicit_traits": [{item_id, trait, description, ...}]}
    profile_data: dict[str, Any]
    score: float | None = _score()


class V2AgentCase(BaseModel):
    id: str
    app_id: str
    project_id: str
    agent_id: str
    session_id: str
    task_intent: str
    approach: str
    quality_score: float
    key_insight: str | None = None
    timestamp: str
    score: float | None = _score()


class V2AgentSkill(BaseModel):
    id: str
    app_id: str
    project_id: str
    agent_id: str
    name: str
    description: str
    content: str
    confidence: float
    maturity_score: float
    source_case_ids: list[str] = []
    score: float | None = _score()


class V2UnprocessedMessage(BaseModel):
    id: str
    app_id: str
    project_id: str
    session_id: str
    sender_id: str
    sender_name: str | None = None
    role: Literal["user", "assistant", "tool"]
    content: str
    timestamp: str


class V2SearchData(BaseModel):
    episodes: list[V2Episode] = []
    profiles: list[V2ProfileEntry] = []
    agent_cases: list[V2AgentCase] = []
    agent_skills: list[V2AgentSkill] = []
    unprocessed_messages: list[V2UnprocessedMessage] = []


class V2SearchResponse(BaseModel):
    request_id: str
    data: V2SearchData


class V2GetData(BaseModel):
    episodes: list[V2Episode] | None = None
    profiles: list[V2ProfileEntry] | None = None
    agent_cases: list[V2AgentCase] | None = None
    agent_skills: list[V2AgentSkill] | None = None
    total_count: int
    count: int


class V2GetResponse(BaseModel):
    request_id: str
    data: V2GetData


# --- delete / flush ------------------------------------------------------------------

class V2DeleteRequest(Owned):
    session_id: Id | None = None


class V2DeleteData(BaseModel):
    filters: list[str]  # the scope fields applied, e.g. ["user_id", "session_id"]
    count: int  # memories taken out of search


class V2DeleteResponse(BaseModel):
    request_id: str
    data: V2DeleteData


class V2FlushRequest(Scoped):
    session_id: SessionId


class V2FlushData(BaseModel):
    # extracted: the session's adds still running were waited for; no_extraction: none was
    status: Literal["extracted", "no_extraction"]


class V2FlushResponse(BaseModel):
    request_id: str
    data: V2FlushData


# --- edit (the user's profile) -------------------------------------------------------

ProfileKind = Literal["explicit_info", "implicit_traits"]
REASON = Field(default=None, max_length=256)


class V2AddOperation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    action: Literal["add"]
    type: ProfileKind
    # explicit_info: category + description; implicit_traits: trait + description
    data: dict[str, Any]
    reason: str | None = REASON


class V2UpdateOperation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    action: Literal["update"]
    type: ProfileKind
    item_id: Id
    data: dict[str, Any]  # the fields to change: category / trait and/or description
    reason: str | None = REASON


class V2DeleteOperation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    action: Literal["delete"]
    type: ProfileKind
    item_id: Id
    reason: str | None = REASON


V2EditOperation = Annotated[V2AddOperation | V2UpdateOperation | V2DeleteOperation,
                          Field(discriminator="action")]


class V2EditRequest(Scoped):
    user_id: UserId
    memory_type: Literal["profile"] = "profile"
    operations: list[V2EditOperation] = Field(min_length=1, max_length=50)


class V2EditResult(BaseModel):
    op_index: int
    action: str
    type: str
    status: Literal["applied", "rejected"]
    item_id: str | None = None
    new_item_id: str | None = None
    error: str | None = None


class V2EditData(BaseModel):
    user_id: str
    version: int  # when the profile last changed (epoch ms)
    applied: int
    results: list[V2EditResult]
    profile: dict[str, Any]  # the profile after the edit (profile_data's shape)


class V2EditResponse(BaseModel):
    request_id: str
    data: V2EditData


# --- object/sign ---------------------------------------------------------------------

class V2SignRequest(Request):
    objectList: list[ObjectSignItemRequest] = Field(min_length=1)
