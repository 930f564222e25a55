"""mem0's memory exports, as `mem0ai==2.2.1`'s MemoryClient calls them:

    create_memory_export(schema, **filters)
        POST /v1/exports/      {"schema", "user_id" or "filters", ...} → {"message", "id"}
    get_memory_export(**filters)
        POST /v1/exports/get/  {"memory_export_id"} or filters → the export

mem0 fills the client's Pydantic schema with an LLM. Engram does not: the export holds
the user's current memories, each with its history (earlier values and the windows they
held in), in mem0's memory shape; the schema is kept and sent back beside them. The
memories are read when the export is fetched, so an export of an erased user is empty."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engram.api.auth import tenant_of
from engram.api.mem0.filters import ENTITIES
from engram.api.openapi import BODY
from engram.api.openapi import mem0_responses as responses
from engram.errors import NotFound
from engram.models.domain import Memory, new_id, now_ms
from engram.models.identifiers import Id
from engram.services.exports import ExportJob, ExportService

MAX_SCHEMA_CHARS = 100_000


def _entities(filters: dict[str, Any] | None) -> dict[str, str]:
    """user_id / agent_id / app_id / run_id from mem0's filters: {"user_id": "u"}, or
    equalities inside an AND list ({"AND": [{"user_id": "u"}, ...]}). Anything else in
    them is not an entity this route filters by, and is refused rather than ignored."""
    found: dict[str, str] = {}
    if not filters:
        return found
    clauses = filters["AND"] if set(filters) == {"AND"} and isinstance(filters["AND"], list) \
        else [filters]
    for clause in clauses:
        if not isinstance(clause, dict):
            raise ValueError("filters: AND takes a list of objects")
        for key, value in clause.items():
            if key not in ENTITIES:
                raise ValueError(f"filters.{key}: exports filter by {', '.join(ENTITIES)} "
                                 "(equality) only")
            if not isinstance(value, str) or not value:
                raise ValueError(f"filters.{key}: must be a non-empty string")
            found[key] = value
    return found


class ExportFilters(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filters: dict[str, Any] | None = Field(default=None, description=(
        "mem0 filters: entity equalities, alone or in an AND list"))
    user_id: Id | None = None
    agent_id: Id | None = None
    app_id: Id | None = None
    run_id: Id | None = None

    def entities(self) -> dict[str, str]:
        found = _entities(self.filters)
        for name in ENTITIES:
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        return found

    @model_validator(mode="after")
    def _filters_parse(self) -> ExportFilters:
        self.entities()  # a ValueError names the filter
        return self


class CreateExportRequest(ExportFilters):
    schema_: dict[str, Any] | str = Field(alias="schema", description=(
        "The export's JSON schema (kept and returned with the export)"))
    export_instructions: str | None = Field(default=None, max_length=10_000)

    @model_validator(mode="after")
    def _names_a_user(self) -> CreateExportRequest:
        if "user_id" not in self.entities():
            raise ValueError("user_id: an export is of one user's memories; give user_id "
                             "(or filters {\"user_id\": ...})")
        text = self.schema_ if isinstance(self.schema_, str) else json.dumps(self.schema_)
        if len(text) > MAX_SCHEMA_CHARS:
            raise ValueError(f"schema: {len(text)} characters; the limit is {MAX_SCHEMA_CHARS}")
        return self


class CreateExportResponse(BaseModel):
    message: str
    id: str


class GetExportRequest(ExportFilters):
    memory_export_id: Id | None = None


class ExportedVersion(BaseModel):
    memory: str
    valid_from: str  # ISO 8601
    valid_to: str
    change: str
    reason: str


class ExportedMemory(BaseModel):
    id: str
    memory: str
    user_id: str
    agent_id: str | None = None
    app_id: str | None = None
    run_id: str | None = None
    metadata: dict[str, str]
    categories: list[str]
    hash: str
    created_at: str
    updated_at: str
    memory_type: str
    sources: list[str]
    history: list[ExportedVersion]


class MemoryExport(BaseModel):
    id: str
    status: str = "completed"
    user_id: str
    created_at: str
    export_schema: Any = Field(default=None, serialization_alias="schema")
    memories: list[ExportedMemory]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _exported(memory: Memory) -> ExportedMemory:
    return ExportedMemory(
        id=memory.id, memory=memory.memory_value, user_id=memory.user_id,
        agent_id=memory.agent_id, app_id=memory.app_id, run_id=memory.conversation_id,
        metadata=memory.info, categories=memory.tags, hash=memory.content_hash,
        created_at=_iso(memory.create_time), updated_at=_iso(memory.update_time),
        memory_type=memory.memory_type.value, sources=memory.sources,
        history=[ExportedVersion(memory=v.memory_value, valid_from=_iso(v.valid_from),
                                 valid_to=_iso(v.valid_to), change=v.change, reason=v.reason)
                 for v in memory.history])


@dataclass
class Mem0ExportTranslator:
    exports: ExportService

    def create(self, tenant_id: str, req: CreateExportRequest) -> CreateExportResponse:
        found = req.entities()
        schema = req.schema_ if isinstance(req.schema_, str) else json.dumps(req.schema_)
        job = ExportJob(id=new_id(), user_id=found["user_id"], agent_id=found.get("agent_id"),
                        app_id=found.get("app_id"), conversation_id=found.get("run_id"),
                        schema_text=schema, create_time=now_ms())
        self.exports.save_job(tenant_id, job)
        return CreateExportResponse(
            message="Memory export request received. The export will be ready in a few "
                    "seconds.", id=job.id)

    def get(self, tenant_id: str, req: GetExportRequest) -> MemoryExport:
        found = req.entities()
        job = self.exports.find_job(tenant_id, req.memory_export_id, found.get("user_id"))
        if job is None:
            which = f"memory export {req.memory_export_id}" if req.memory_export_id \
                else "a memory export for these filters"
            raise NotFound(f"{which} not found")
        memories = [m for m in self.exports.all_current(tenant_id, job.user_id)
                    if (job.agent_id is None or m.agent_id == job.agent_id)
                    and (job.app_id is None or m.app_id == job.app_id)
                    and (job.conversation_id is None
                         or m.conversation_id == job.conversation_id)]
        try:
            schema: Any = json.loads(job.schema_text)
        except ValueError:
            schema = job.schema_text
        return MemoryExport(id=job.id, user_id=job.user_id, created_at=_iso(job.create_time),
                            export_schema=schema, memories=[_exported(m) for m in memories])


def exports_router(translator: Mem0ExportTranslator) -> Router:
    """mem0's export routes, at the root (their paths carry /v1)."""
    router = Router()

    @router.post("/v1/exports/", summary="mem0: request an export of a user's memories",
                 responses=responses(*BODY))
    def create_memory_export(req: Annotated[CreateExportRequest, Body()]
                             ) -> CreateExportResponse:
        return translator.create(tenant_of(router), req)

    @router.post("/v1/exports/get/", summary="mem0: a requested export, with its memories",
                 responses=responses(*BODY, 404))
    def get_memory_export(req: Annotated[GetExportRequest, Body()]) -> MemoryExport:
        return translator.get(tenant_of(router), req)

    return router
