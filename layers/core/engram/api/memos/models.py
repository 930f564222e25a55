"""Request and response models of the /v1 API (MemOS cloud shapes).

Every response is the MemOS envelope {"code": 0, "message": "ok", "data": ...}; errors
use the same envelope with code = the HTTP status. Unknown request fields that MemOS's
own client sends (source, allow_memory_view, include_skill, ...) are accepted and ignored.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engram.api.memos.profile_models import ProfileDetail
from engram.models.content import ItemStatus
from engram.models.domain import ErasureReceipt, TokenUsage
from engram.models.identifiers import Id, UserId, agent_owner
from engram.models.times import (
    AS_OF_HELP,
    CLIENT_TIME,
    CLIENT_TIME_SCHEMA,
    RANGE,
    REFERENCE_TIME_HELP,
    to_epoch_ms,
)

T = TypeVar("T")


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Envelope(BaseModel, Generic[T]):
    code: int = 0
    message: str = "ok"
    data: T | None = None


class ErrorEnvelope(BaseModel):
    code: int
    message: str
    data: None = None


# --- add/message ---------------------------------------------------------------------

class ToolCallFunction(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    arguments: str = ""  # JSON text, as OpenAI sends it


class ToolCall(BaseModel):
    """An assistant turn's tool call, OpenAI shape."""

    model_config = ConfigDict(extra="ignore")

    id: Id
    type: str = "function"
    function: ToolCallFunction


def only_for_role(field: str, role: str, filled: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema: when `field` is given (`filled`), `role` must be `role`."""
    return {"if": {"required": [field], "properties": {field: filled}},
            "then": {"properties": {"role": {"const": role}}}}


NON_EMPTY_LIST = {"type": "array", "minItems": 1}
NON_EMPTY_STRING = {"type": "string", "minLength": 1}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"allOf": [
        only_for_role("tool_calls", "assistant", NON_EMPTY_LIST),
        only_for_role("tool_call_id", "tool", NON_EMPTY_STRING)]})

    role: Literal["user", "assistant", "system", "tool"]
    content: str | list[dict[str, Any]] | None = Field(
        default=None, description="Text, or a list of parts: {type: text, text}, {type: "
        "image_url, image_url: {url}} (http(s) or data: URL), {type: file, file: {file_data}} "
        "(http(s) URL or base64)")
    chat_time: str | int | float | None = Field(
        default=None, description=f"When it was said: {CLIENT_TIME}; {RANGE}",
        json_schema_extra=CLIENT_TIME_SCHEMA)
    message_id: Id | None = None
    name: str | None = Field(default=None, max_length=256)  # who spoke, OpenAI style
    tool_calls: list[ToolCall] | None = Field(default=None, max_length=128)  # assistant
    tool_call_id: Id | None = None  # tool

    @model_validator(mode="after")
    def _tool_fields_fit_the_role(self) -> ChatMessage:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("tool_calls: only assistant messages make tool calls")
        if self.tool_call_id and self.role != "tool":
            raise ValueError("tool_call_id: only tool messages answer a tool call")
        return self

    @field_validator("content")
    @classmethod
    def _known_parts(cls, content: Any) -> Any:
        """Text, image (`image_url`: an http(s) or data: URL) and file (`file.file_data`:
        an http(s) URL or base64) parts; anything else is refused, never dropped."""
        if not isinstance(content, list):
            return content
        for i, part in enumerate(content):
            kind = part.get("type")
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    raise ValueError(f"content[{i}] of type 'text' needs a string 'text'")
            elif kind == "image_url":
                spec = part.get("image_url")
                if isinstance(spec, str):  # accepted shorthand: {"image_url": "<url>"}
                    part["image_url"] = spec = {"url": spec}
                if not isinstance(spec, dict) or not isinstance(spec.get("url"), str) \
                        or not spec["url"].strip():
                    raise ValueError(f"content[{i}] of type 'image_url' needs "
                                     "'image_url': {'url': <http(s) or data: URL>}")
            elif kind == "file":
                spec = part.get("file")
                if not isinstance(spec, dict) or not isinstance(spec.get("file_data"), str) \
                        or not spec["file_data"].strip():
                    raise ValueError(f"content[{i}] of type 'file' needs "
                                     "'file': {'file_data': <http(s) URL or base64>}")
            else:
                raise ValueError(f"content[{i}]: content part type '{kind}' is not supported "
                                 "(text, image_url, file)")
        return content

    @field_validator("chat_time")
    @classmethod
    def _parse_chat_time(cls, value: Any) -> int | None:
        return None if value is None else to_epoch_ms(value, "chat_time")

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part["text"] for part in self.content if part.get("type") == "text")


class OwnedRequest(Request):
    """A request about a user's memories, or (no user_id, an agent_id) an agent's own."""

    user_id: UserId | None = Field(default=None, description=(
        "The user whose memories these are; may not start with 'agent:' or 'app:'"))
    agent_id: Id | None = Field(default=None, description=(
        "With user_id: the user's memories of this agent. Alone: the agent's own memories"))

    @model_validator(mode="after")
    def _has_owner(self) -> OwnedRequest:
        if not self.user_id and not self.agent_id:
            raise ValueError("give user_id, or agent_id for an agent's own memories")
        return self

    @property
    def owner(self) -> str:
        """The user partition the request reads or writes."""
        return self.user_id or agent_owner(self.agent_id or "")


class AddMessageRequest(OwnedRequest):
    conversation_id: Id
    messages: list[ChatMessage] = Field(min_length=1, max_length=500)
    app_id: Id | None = None
    tags: list[StrictStr] | None = Field(default=None, max_length=50)
    info: dict[str, StrictStr] | None = None
    async_mode: bool = True
    allow_public: bool = False
    allow_knowledgebase_ids: list[Id] | None = None


class AddMessageData(BaseModel):
    success: bool = True
    task_id: str
    status: str
    message_ids: list[str] = []
    memory_views: dict[str, Any] | None = None  # present when the add ran synchronously


class FeedbackRequest(Request):
    user_id: UserId
    feedback_content: str = Field(min_length=1, max_length=20_000)
    conversation_id: Id | None = None
    agent_id: Id | None = None
    app_id: Id | None = None
    feedback_time: str | int | None = Field(
        default=None, description=f"An ISO 8601 date or datetime, or epoch seconds or ms; {RANGE}")
    allow_public: bool = False
    allow_knowledgebase_ids: list[Id] | None = None

    @field_validator("feedback_time")
    @classmethod
    def _parse_time(cls, value: Any) -> int | None:
        return None if value is None else to_epoch_ms(value, "feedback_time")


# --- get/status ----------------------------------------------------------------------

class TaskStatusRequest(Request):
    task_id: Id


class TaskStatusData(BaseModel):
    task_id: str
    status: Literal["waiting", "running", "completed", "failed"]
    step: str | None = None
    memory_views: dict[str, Any]
    error: str | None = None
    message_count: int
    create_time: int
    update_time: int
    # Non-text content (images, documents, ...): each item's state, pages or seconds read,
    # and why it failed ("Processing Failed: ..."). A failed item leaves the rest processed.
    items: list[ItemStatus] = []
    # LLM tokens in (prompt) and out (completion) over all of the task's calls and runs.
    usage: TokenUsage = TokenUsage()
    # What did not go as asked but did not fail the task (e.g. a batch the LLM could not
    # answer validly, extracted by rules instead).
    warnings: list[str] = []
    attempt: int = 1  # > 1 after retry/task


# --- search/memory -------------------------------------------------------------------

class SearchRequest(OwnedRequest):
    query: str = Field(min_length=1, max_length=4_000)
    conversation_id: Id | None = None
    app_id: Id | None = None
    tags: list[StrictStr] | None = None
    filter: dict[str, Any] | None = None
    memory_limit_number: int = Field(default=6, ge=1, le=25)
    include_preference: bool = True
    preference_limit_number: int = Field(default=6, ge=0, le=25)
    include_tool_memory: bool = False
    tool_memory_limit_number: int = Field(default=6, ge=0, le=25)
    relativity: float | None = Field(default=None, ge=0, le=1)
    knowledgebase_ids: list[Id] | None = Field(
        default=None, max_length=20,
        description="Also search these knowledge bases (their passages, and the memories "
        "adds wrote into them); results carry source 'knowledgebase'")
    include_public: bool = Field(
        default=False, description="Also search the tenant's public memories (adds with "
        "allow_public); a per-source filter with a 'public' key asks for them too")
    reference_time: str | int | float | None = Field(
        default=None, description=REFERENCE_TIME_HELP, json_schema_extra=CLIENT_TIME_SCHEMA)
    as_of: str | int | float | None = Field(
        default=None, description=AS_OF_HELP, json_schema_extra=CLIENT_TIME_SCHEMA)

    @field_validator("reference_time", "as_of", mode="before")  # true is not 1 s
    @classmethod
    def _parse_times(cls, value: Any, info: ValidationInfo) -> int | None:
        return None if value is None else to_epoch_ms(value, info.field_name or "time")


class MemoryVersionDetail(BaseModel):
    """A past value of a memory: when it held, what changed it and why."""

    version: int
    memory_value: str
    valid_from: int
    valid_to: int
    change: str  # update | supersede | delete | feedback | edit
    reason: str
    task_id: str | None = None


class MemoryDetail(BaseModel):
    id: str
    memory_key: str
    memory_value: str
    memory_type: str
    create_time: int
    conversation_id: str | None
    status: str
    confidence: float
    tags: list[str]
    update_time: int
    relativity: float | None = None
    sources: list[str]
    info: dict[str, str]
    agent_id: str | None = None
    app_id: str | None = None
    event_time: int | None = None
    version: int = 1
    # Where a search found it: the user's own memories, the tenant's public memories
    # (`public` true), or a knowledge base (with the file and page a passage came from).
    source: Literal["user", "public", "knowledgebase"] = "user"
    public: bool = False
    knowledgebase_id: str | None = Field(default=None, exclude_if=lambda v: v is None)
    file_id: str | None = Field(default=None, exclude_if=lambda v: v is None)
    file_name: str | None = Field(default=None, exclude_if=lambda v: v is None)
    page: int | None = Field(default=None, exclude_if=lambda v: v is None)
    # get/memory/{id} only: the earlier values, oldest first (an update supersedes, a
    # delete invalidates; nothing is erased).
    history: list[MemoryVersionDetail] | None = None


class PreferenceDetail(BaseModel):
    id: str
    preference_type: Literal["explicit_preference", "implicit_preference"]
    preference: str
    reasoning: str
    memory_key: str
    polarity: str | None
    create_time: int
    update_time: int
    conversation_id: str | None
    status: str
    confidence: float
    tags: list[str]
    relativity: float | None = None
    sources: list[str]


class ToolMemoryDetail(BaseModel):
    id: str
    tool_type: str
    tool_value: str
    memory_key: str
    create_time: int
    update_time: int
    relativity: float | None = None
    sources: list[str]


class SearchData(BaseModel):
    memory_detail_list: list[MemoryDetail]
    preference_detail_list: list[PreferenceDetail]
    tool_memory_detail_list: list[ToolMemoryDetail]
    preference_note: str
    # The user's profiles (MemOS's profile_detail_list): every one bound, filled.
    profile_detail_list: list[ProfileDetail] | None = Field(
        default=None, exclude_if=lambda v: v is None)  # left out when the user has none


# --- get/memory, update/memory, delete/memory, get/message -----------------------------

class GetMemoryRequest(OwnedRequest):
    page: int = Field(default=1, ge=1)
    size: int = Field(default=10, ge=1, le=50)
    include_preference: bool = True
    include_tool_memory: bool = True
    filter: dict[str, Any] | None = None


class GetMemoryData(BaseModel):
    memory_detail_list: list[MemoryDetail]
    preference_detail_list: list[PreferenceDetail]
    tool_memory_detail_list: list[ToolMemoryDetail]
    total: int
    size: int
    current: int
    pages: int
    profile_detail_list: list[ProfileDetail] | None = Field(
        default=None, exclude_if=lambda v: v is None)  # as search/memory's


class UpdateMemoryRequest(Request):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"anyOf": [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in ("content", "title", "status")]})

    memory_id: Id
    content: str | None = Field(default=None, min_length=1, max_length=20_000)
    title: str | None = Field(default=None, min_length=1, max_length=256)
    status: Literal["activated", "archived"] | None = None
    user_id: Id | None = Field(default=None, description="When given, the memory must be "
                               "this user's own: another user's (public) memory is a 404")

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateMemoryRequest:
        if self.content is None and self.title is None and self.status is None:
            raise ValueError("one of content, title or status is required")
        return self


class UpdateMemoryData(BaseModel):
    success: bool = True
    memory: MemoryDetail


DELETE_MODES = ("memory_ids", "user_id", "agent_id", "filter")


def _only(mode: str) -> dict[str, Any]:
    """JSON Schema: `mode` given, every other delete mode absent or null (or empty)."""
    given = {"memory_ids": NON_EMPTY_LIST, "user_id": {"type": "string"},
             "agent_id": {"type": "string"}, "filter": {"type": "object", "minProperties": 1}}
    absent = {"memory_ids": {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}]}}
    return {"required": [mode], "properties": {
        m: given[m] if m == mode else absent.get(m, {"type": "null"}) for m in DELETE_MODES}}


class DeleteMemoryRequest(Request):
    model_config = ConfigDict(extra="ignore", json_schema_extra={
        "oneOf": [_only(mode) for mode in DELETE_MODES]})

    memory_ids: list[Id] | None = Field(default=None, max_length=1000)
    user_id: Id | None = None
    agent_id: Id | None = Field(default=None, description="Delete every current memory of "
                                "this agent, across the tenant's users")
    filter: dict[str, Any] | None = Field(
        default=None, description="Delete every current memory (of any user of the tenant) "
        "the search filter admits; at least one condition")

    @model_validator(mode="after")
    def _exactly_one_mode(self) -> DeleteMemoryRequest:
        given = [m for m in DELETE_MODES if getattr(self, m) not in (None, [], "")]
        if len(given) != 1:
            raise ValueError("give exactly one of memory_ids, user_id, agent_id or filter "
                             f"(given: {', '.join(given) or 'none'})")
        if self.filter is not None and not self.filter:
            raise ValueError("filter: an empty filter would delete every memory of the "
                             "tenant; name at least one condition")
        return self


class DeleteMemoryData(BaseModel):
    success: bool = True
    deleted: int
    # Delete by user_id: what was erased, per kind (an extra field: MemOS's client keeps
    # only `success`). Left out for a delete by memory_ids.
    receipt: ErasureReceipt | None = Field(default=None, exclude_if=lambda v: v is None)


class GetMessageRequest(Request):
    user_id: UserId
    conversation_id: Id
    message_limit_number: int | None = Field(default=None, ge=1, le=1000)


class MessageDetail(BaseModel):
    message_id: str
    role: str
    content: str
    chat_time: int | None
    create_time: int
    conversation_id: str


class GetMessageData(BaseModel):
    message_detail_list: list[MessageDetail]
