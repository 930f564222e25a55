"""Request and response models of MemOS's profile routes (/v1): add/get/list
profile_template, bind/profile_template, edit/profile, delete/profile, and the
`profile_detail_list` items search/memory and get/memory carry. Shapes from MemOS's
client (memos.api.client) and its API reference; kept apart from models.py so the
search models can import the profile item without a cycle."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator

from engram.models.identifiers import Id
from engram.models.profiles import MAX_NAME_CHARS, check_tree

MAX_BINDS = 20  # MemOS: "批量绑定列表,单次上限 20 条"
MAX_REMOVE_FIELDS = 200

SUBJECT_ONE_OF = {"oneOf": [
    {"required": ["user_id"], "properties": {"user_id": {"type": "string"},
                                             "agent_id": {"type": "null"}}},
    {"required": ["agent_id"], "properties": {"agent_id": {"type": "string"},
                                              "user_id": {"type": "null"}}}]}


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Subject(_Request):
    model_config = ConfigDict(extra="ignore", json_schema_extra=SUBJECT_ONE_OF)

    user_id: Id | None = None
    agent_id: Id | None = None

    @model_validator(mode="after")
    def _exactly_one_subject(self) -> _Subject:
        if bool(self.user_id) == bool(self.agent_id):
            raise ValueError("give exactly one of user_id or agent_id")
        return self

    @property
    def subject(self) -> tuple[str, str]:
        return ("user", self.user_id) if self.user_id else ("agent", self.agent_id or "")


def _tree(value: dict[str, Any]) -> dict[str, Any]:
    check_tree(value)
    return value


class AddProfileTemplateRequest(_Request):
    name: StrictStr = Field(min_length=1, max_length=MAX_NAME_CHARS)
    metadata: dict[str, Any] = Field(description='The field tree: categories (at most 3 '
                                     'levels) whose leaves are {"value": str, '
                                     '"algorithm_updatable": bool}')

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must hold at least one non-space character")
        return value

    @field_validator("metadata")
    @classmethod
    def _a_template_tree(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _tree(value)


class ProfileTemplateIdRequest(_Request):
    profile_template_id: Id


class ListProfileTemplatesRequest(_Request):
    page: int = Field(default=1, ge=1)
    size: int = Field(default=10, ge=1, le=100)


class BindItem(_Subject):
    profile_template_id: Id


class BindProfileTemplateRequest(_Request):
    bind_list: list[BindItem] = Field(min_length=1, max_length=MAX_BINDS)


class EditProfileRequest(_Subject):
    model_config = ConfigDict(extra="ignore", json_schema_extra={**SUBJECT_ONE_OF, "anyOf": [
        {"required": ["metadata"], "properties": {"metadata": {"type": "object"}}},
        {"required": ["remove_fields"], "properties": {"remove_fields": {"minItems": 1}}}]})

    profile_template_id: Id
    metadata: dict[str, Any] | None = None
    remove_fields: list[StrictStr] | None = Field(default=None, max_length=MAX_REMOVE_FIELDS)

    @field_validator("metadata")
    @classmethod
    def _a_template_tree(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return value if value is None else _tree(value)

    @model_validator(mode="after")
    def _something_to_change(self) -> EditProfileRequest:
        if self.metadata is None and not self.remove_fields:
            raise ValueError("give metadata or remove_fields")
        return self


class DeleteProfileRequest(_Subject):
    profile_template_id: Id


# --- answers ---------------------------------------------------------------------------

class ProfileTemplateDetail(BaseModel):
    profile_template_id: str
    name: str
    metadata: dict[str, Any]
    create_time: int
    update_time: int


class AddProfileTemplateData(BaseModel):
    profile_template_id: str


class GetProfileTemplateData(BaseModel):
    profile_template: ProfileTemplateDetail


class ListProfileTemplatesData(BaseModel):
    profile_templates: list[ProfileTemplateDetail]
    total: int
    current: int
    size: int
    pages: int


class ProfileFieldDetail(BaseModel):
    path: list[str]
    value: str
    algorithm_updatable: bool
    source: str  # template | edit | memory
    memory_id: str | None = None  # the memory a value from memory came from
    update_time: int


class ProfileDetail(BaseModel):
    """One profile instance, as a memory item: `memory_value` is its filled fields as
    text, `metadata` the filled tree, `fields` each field with where its value came from."""

    id: str
    memory_type: str = "ProfileMemory"
    memory_key: str  # the template's name
    memory_value: str
    profile_template_id: str
    profile_template_name: str
    user_id: str | None = None
    agent_id: str | None = None
    metadata: dict[str, Any]
    fields: list[ProfileFieldDetail]
    create_time: int
    update_time: int


class BoundProfile(BaseModel):
    user_id: str | None = None
    agent_id: str | None = None
    profile_template_id: str


class BindProfileTemplateData(BaseModel):
    success: bool = True
    bound: list[BoundProfile]


class EditProfileData(BaseModel):
    success: bool = True
    profile: ProfileDetail


class DeleteProfileData(BaseModel):
    success: bool = True
