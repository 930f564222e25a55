"""Request and response models of the EverOS routes (/api/v1/...), as EverOS's official
Python SDK (PyPI everos==0.1.1) sends and reads them.

Successful answers are `{"data": {...}}`; `object/sign` answers in the MMS format the
SDK expects there (`{"status": 0, "error": "OK", "request_id", "result": {"data":
{"objectList": [...]}}}`) with camelCase names, as on the wire. Errors use Engram's
envelope `{"code": <HTTP status>, "message": ..., "data": null}` (object/sign: MMS's,
with status 2018 for a validation error).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from engram.api.memos.models import NON_EMPTY_LIST, NON_EMPTY_STRING, ToolCall, only_for_role
from engram.models.domain import ErasureReceipt
from engram.models.identifiers import Id, UserId, plain_identifier
from engram.models.times import (
    AS_OF_HELP,
    CLIENT_TIME_SCHEMA,
    REFERENCE_TIME_HELP,
    EpochMs,
    to_epoch_ms,
)


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- object/sign ---------------------------------------------------------------------

class ObjectSignItemRequest(Request):
    fileId: Id
    fileName: str = Field(min_length=1, max_length=1024)
    fileType: Literal["image", "file", "video"]


class ObjectSignRequest(Request):
    # The 20-file limit is checked by sign_objects (translate.py), so the error names it
    # plainly.
    objectList: list[ObjectSignItemRequest] = Field(min_length=1)
    # Not in the SDK: puts the uploads under this user's folder, so deleting the user's
    # data removes them too. Without it they go under "anon".
    userId: Id | None = None


class ObjectSignedInfo(BaseModel):
    url: str
    fields: dict[str, str]
    maxSize: int


class ObjectSignItem(BaseModel):
    fileId: str
    fileName: str
    fileType: str
    objectKey: str
    objectSignedInfo: ObjectSignedInfo


class ObjectSignData(BaseModel):
    objectList: list[ObjectSignItem]


class ObjectSignResult(BaseModel):
    data: ObjectSignData | str | None = None


class ObjectSignResponse(BaseModel):
    status: int = 0
    error: str = "OK"
    request_id: str
    result: ObjectSignResult


# --- memories: add -------------------------------------------------------------------

class ContentItem(BaseModel):
    # A text item carries `text`; any other, a uri (object key or http(s) URL), base64 or text.
    model_config = ConfigDict(extra="ignore", json_schema_extra={"if": {
        "required": ["type"], "properties": {"type": {"const": "text"}}},
        "then": {"required": ["text"], "properties": {"text": {"type": "string"}}},
        "else": {"anyOf": [{"required": [name], "properties": {name: NON_EMPTY_STRING}}
                           for name in ("uri", "base64", "text")]}})

    type: Literal["text", "image", "audio", "video", "doc", "pdf", "html", "email"]
    text: str | None = None
    uri: str | None = Field(default=None, max_length=4096)
    base64: str | None = None
    name: str | None = Field(default=None, max_length=1024)
    ext: str | None = Field(default=None, max_length=32)
    source: str | None = Field(default=None, max_length=256)
    source_info: dict[str, Any] | None = None
    extras: dict[str, Any] | None = None


class MessageItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant"]
    timestamp: EpochMs
    content: str | list[ContentItem]
    sender_id: Id | None = None
    sender_name: str | None = Field(default=None, max_length=256)
    message_id: Id | None = None


class GroupMessageItem(MessageItem):
    sender_id: Id


class AgentMessageItem(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"allOf": [
        {"if": {"required": ["role"], "properties": {"role": {"const": "tool"}}},
         "then": {"required": ["tool_call_id"],
                  "properties": {"tool_call_id": NON_EMPTY_STRING}}},
        only_for_role("tool_calls", "assistant", NON_EMPTY_LIST)]})

    role: Literal["user", "assistant", "tool"]
    timestamp: EpochMs
    content: str | list[ContentItem] | None = None
    sender_id: Id | None = None
    tool_call_id: Id | None = None
    tool_calls: list[ToolCall] | None = None


class MemoryAddRequest(Request):
    user_id: UserId
    messages: list[MessageItem] = Field(min_length=1, max_length=500)
    async_mode: bool = True
    session_id: Id | None = None


class GroupAddRequest(Request):
    group_id: Id
    messages: list[GroupMessageItem] = Field(min_length=1, max_length=500)
    async_mode: bool = True
    group_meta: dict[str, Any] | None = None


class AgentAddRequest(Request):
    user_id: UserId
    messages: list[AgentMessageItem] = Field(min_length=1, max_length=500)
    async_mode: bool = True
    session_id: Id | None = None


class AddResult(BaseModel):
    message: str
    message_count: int
    status: Literal["accumulated", "extracted"]
    task_id: str


class AddResponse(BaseModel):
    data: AddResult


# --- memories: flush -----------------------------------------------------------------

class FlushRequest(Request):
    user_id: UserId
    session_id: Id | None = None


class GroupFlushRequest(Request):
    group_id: Id


class FlushResult(BaseModel):
    message: str
    request_id: str
    status: Literal["extracted", "no_extraction"]


class FlushResponse(BaseModel):
    data: FlushResult


# --- memories: get / search / delete -------------------------------------------------

FILTER_IDS = ("user_id", "group_id", "session_id", "sender_id")


def _plain_filter_ids(filters: dict[str, Any]) -> dict[str, Any]:
    """The ids a filter names follow the identifier rule; the rest of the filter is
    compiled (and refused field by field) by the service."""
    stack: list[tuple[str, Any]] = [("", filters)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, list):
            stack.extend((f"{where}.{i}", v) for i, v in enumerate(node))
        elif isinstance(node, dict):
            for key, value in node.items():
                path = f"{where}.{key}".lstrip(".")
                if key in FILTER_IDS:
                    values = value.values() if isinstance(value, dict) else [value]
                    for v in values:
                        for one in (v if isinstance(v, list) else [v]):
                            if isinstance(one, str):
                                try:
                                    plain_identifier(one)
                                except ValueError as exc:
                                    raise ValueError(f"{path} {exc}") from None
                else:
                    stack.append((path, value))
    return filters


Filters = Annotated[dict[str, Any], AfterValidator(_plain_filter_ids)]

MemoryKind = Literal["episodic_memory", "profile", "agent_case", "agent_skill"]
SearchKind = Literal["episodic_memory", "profile", "raw_message", "agent_memory"]


class MemoryGetRequest(Request):
    filters: Filters
    memory_type: MemoryKind
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=20, ge=1, le=100)
    rank_by: str | None = Field(default=None, max_length=64)
    rank_order: Literal["asc", "desc"] = "desc"


class MemorySearchRequest(Request):
    filters: Filters
    query: str = Field(min_length=1, max_length=4_000)
    include_original_data: bool = False
    memory_types: list[SearchKind] = Field(default_factory=lambda: ["episodic_memory"])
    method: Literal["keyword", "vector", "hybrid", "agentic"] = "hybrid"
    radius: float | None = Field(default=None, ge=0, le=1)
    top_k: int = Field(default=10, ge=-1, le=100)
    reference_time: str | int | float | None = Field(
        default=None, description=REFERENCE_TIME_HELP, json_schema_extra=CLIENT_TIME_SCHEMA)
    as_of: str | int | float | None = Field(
        default=None, description=AS_OF_HELP, json_schema_extra=CLIENT_TIME_SCHEMA)

    @field_validator("top_k")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("top_k is -1 (all above the threshold) or 1-100")
        return value

    @field_validator("reference_time", "as_of", mode="before")  # true is not 1 s
    @classmethod
    def _parse_times(cls, value: Any, info: ValidationInfo) -> int | None:
        return None if value is None else to_epoch_ms(value, info.field_name or "time")


class MemoryDeleteRequest(Request):
    # memory_id alone, or a user and/or a group (with a session); never by sender.
    model_config = ConfigDict(extra="ignore", json_schema_extra={
        "allOf": [{"properties": {"sender_id": {"type": "null"}}}], "oneOf": [
            {"required": ["memory_id"], "properties": {
                name: {"type": "null"} for name in ("user_id", "group_id", "session_id")}},
            {"properties": {"memory_id": {"type": "null"}},
             "anyOf": [{"required": [name], "properties": {name: {"type": "string"}}}
                       for name in ("user_id", "group_id")]}]})
    memory_id: Id | None = None
    user_id: UserId | None = None
    group_id: Id | None = None
    session_id: Id | None = None
    sender_id: Id | None = None


class DeleteResult(BaseModel):
    deleted: int  # memories taken out of search (by id or session), or erased (all of a user)
    # A whole user's or group's delete: what was erased, per kind (the SDK reads no body).
    receipt: ErasureReceipt | None = Field(default=None, exclude_if=lambda v: v is None)


class DeleteResponse(BaseModel):
    data: DeleteResult


class EpisodeAtomicFact(BaseModel):
    id: str
    atomic_fact: str
    parent_episode_id: str
    user_id: str | None = None
    group_id: str | None = None
    session_id: str | None = None
    timestamp: str | None = None
    score: float | None = None


class Episode(BaseModel):
    """An Engram fact (LongTermMemory / UserMemory) as an EverOS episode."""

    id: str
    episode: str
    summary: str
    subject: str
    type: str  # the Engram memory type
    user_id: str | None = None
    group_id: str | None = None
    session_id: str | None = None
    participants: list[str] = []
    sender_ids: list[str] = []
    timestamp: str | None = None  # ISO 8601, when it happened
    parent_id: str | None = None
    parent_type: str | None = None
    atomic_facts: list[EpisodeAtomicFact] = []
    score: float | None = None
    # Engram's own fields, kept for provenance
    sources: list[str] = []
    tags: list[str] = []


class Profile(BaseModel):
    """An Engram preference or fact about the user as an EverOS profile entry."""

    id: str
    user_id: str | None = None
    group_id: str | None = None
    profile_data: dict[str, Any]
    scenario: Literal["solo", "team"] = "solo"
    memcell_count: int = 1
    score: float | None = None
    sources: list[str] = []


class RawMessage(BaseModel):
    """A turn not yet turned into memories (Engram's fast-path WorkingMemory)."""

    id: str
    request_id: str
    message_id: str | None = None
    content_items: list[dict[str, Any]]
    session_id: str | None = None
    group_id: str | None = None
    sender_id: str | None = None
    sender_name: str | None = None
    timestamp: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    score: float | None = None


class AgentCase(BaseModel):
    """An Engram tool trajectory memory as an EverOS agent case."""

    id: str
    task_intent: str
    approach: str
    user_id: str | None = None
    group_id: str | None = None
    session_id: str | None = None
    quality_score: float | None = None
    timestamp: str | None = None
    parent_id: str | None = None
    parent_type: str | None = None
    score: float | None = None
    sources: list[str] = []


class AgentSkill(BaseModel):
    """An Engram tool schema memory as an EverOS agent skill."""

    id: str
    name: str
    description: str
    content: str
    user_id: str | None = None
    group_id: str | None = None
    confidence: float | None = None
    maturity_score: float | None = None
    cluster_id: str | None = None
    source_case_ids: list[str] = []
    score: float | None = None


class GetMemoriesData(BaseModel):
    episodes: list[Episode] | None = None
    profiles: list[Profile] | None = None
    agent_cases: list[AgentCase] | None = None
    agent_skills: list[AgentSkill] | None = None
    count: int
    total_count: int


class GetMemoriesResponse(BaseModel):
    data: GetMemoriesData


class SearchQuery(BaseModel):
    method: str
    text: str
    filters_applied: dict[str, Any] | None = None


class AgentMemory(BaseModel):
    cases: list[AgentCase] = []
    skills: list[AgentSkill] = []


class SearchData(BaseModel):
    query: SearchQuery
    episodes: list[Episode] | None = None
    profiles: list[Profile] | None = None
    raw_messages: list[RawMessage] | None = None
    agent_memory: AgentMemory | None = None
    original_data: dict[str, Any] | None = None


class SearchResponse(BaseModel):
    data: SearchData


# --- tasks ---------------------------------------------------------------------------

class TaskItem(BaseModel):
    """One non-text item's progress (Engram's addition to the SDK's task status)."""

    message_id: str
    index: int
    type: str
    name: str
    uri: str
    state: str
    kind: str | None = None
    pages: int | None = None
    seconds: float | None = None
    error: str | None = None


class TaskStatusResult(BaseModel):
    task_id: str
    status: Literal["processing", "success", "failed"]
    error: str | None = None
    items: list[TaskItem] = []


class TaskStatusResponse(BaseModel):
    data: TaskStatusResult


# --- groups, senders, settings -------------------------------------------------------

NAME = Field(default=None, max_length=256)
DESCRIPTION = Field(default=None, max_length=4000)


class GroupCreateRequest(Request):
    group_id: Id
    name: str | None = NAME
    description: str | None = DESCRIPTION


class GroupPatchRequest(Request):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"anyOf": [
        {"required": ["name"]}, {"required": ["description"]}]})
    name: str | None = NAME
    description: str | None = DESCRIPTION


class GroupData(BaseModel):
    group_id: str
    name: str | None = None
    description: str | None = None
    created_at: str
    updated_at: str
    # Engram's addition: the sender ids that have spoken in the group's adds
    sender_ids: list[str] = []


class GroupResponse(BaseModel):
    data: GroupData


class SenderCreateRequest(Request):
    sender_id: Id
    name: str | None = NAME


class SenderPatchRequest(Request):
    name: str = Field(min_length=1, max_length=256)


class SenderData(BaseModel):
    sender_id: str
    name: str | None = None
    created_at: str
    updated_at: str


class SenderResponse(BaseModel):
    data: SenderData


class LlmProviderConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")
    provider: str = Field(min_length=1, max_length=128)
    model: str = Field(min_length=1, max_length=256)
    extra: dict[str, Any] | None = None


class LlmCustomSetting(BaseModel):
    model_config = ConfigDict(extra="ignore")
    boundary: LlmProviderConfig | None = None
    extraction: LlmProviderConfig | None = None
    extra: dict[str, Any] | None = None


class SettingsUpdateRequest(Request):
    """Only the fields sent change (null keeps a value; llm_custom_setting: null clears)."""

    boundary_detection_timeout: int | None = Field(default=None, ge=0, le=7 * 24 * 3600)
    extraction_mode: Literal["default", "pro"] | None = None
    llm_custom_setting: LlmCustomSetting | None = None
    offline_profile_extraction_interval: int | None = Field(default=None, ge=0,
                                                            le=30 * 24 * 3600)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)


class SettingsData(BaseModel):
    boundary_detection_timeout: int
    extraction_mode: str
    offline_profile_extraction_interval: int
    timezone: str
    llm_custom_setting: dict[str, Any] | None = None
    created_at: str
    updated_at: str


class SettingsResponse(BaseModel):
    data: SettingsData
