"""The EverOS routes (/api/v1), one Router per resource: object/sign (pre-signed upload
forms for up to 20 files per call); memories: add (personal, group, agent) and their flush,
get, search, delete; tasks/{task_id} (an add's progress, with each file's state). Each
route hands its request to the EverOS translator (translate.py) and wraps the answer.
groups, groups/{group_id}, senders, senders/{sender_id} and settings keep what the SDK
names besides memories (services/directory.py)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from engram.api.auth import tenant_of
from engram.api.everos.models import (
    AddResponse,
    AddResult,
    AgentAddRequest,
    DeleteResponse,
    FlushRequest,
    FlushResponse,
    FlushResult,
    GetMemoriesResponse,
    GroupAddRequest,
    GroupCreateRequest,
    GroupFlushRequest,
    GroupPatchRequest,
    GroupResponse,
    MemoryAddRequest,
    MemoryDeleteRequest,
    MemoryGetRequest,
    MemorySearchRequest,
    ObjectSignRequest,
    ObjectSignResponse,
    ObjectSignResult,
    SearchResponse,
    SenderCreateRequest,
    SenderPatchRequest,
    SenderResponse,
    SettingsResponse,
    SettingsUpdateRequest,
    TaskStatusResponse,
)
from engram.api.everos.translate import EverosTranslator
from engram.api.openapi import BODY, INDEX, PARAMS, mms_responses, responses
from engram.api.params import IdempotencyKey, PathId, check_body_size


def everos_objects_router(everos: EverosTranslator) -> Router:
    router = Router()

    @router.post("/object/sign", summary="Pre-signed POST forms to upload files directly",
                 responses=mms_responses(*BODY))
    def sign(req: Annotated[ObjectSignRequest, Body()]) -> ObjectSignResponse:
        check_body_size(router, everos.limits.max_everos_body_bytes)
        signed = everos.sign(tenant_of(router), req)
        return ObjectSignResponse(
            request_id=router.current_event.request_context.request_id,
            result=ObjectSignResult(data=signed))

    return router


# An add answers 200 when done (sync), 202 while it runs; an object key of another tenant
# is a 403, one never uploaded a 404.
ADDED = responses(*BODY, 403, 404, 409, INDEX, accepted=AddResponse)  # 409: a replay in flight
NOTHING_TO_FLUSH = ("Engram extracts memories from every add as it arrives; nothing is "
                    "held back for a flush (follow an add with GET /api/v1/tasks/{task_id})")


def added(result: AddResult) -> Response[AddResponse]:
    """202 with the task while it runs (always, when files came with it); 200 when done."""
    return Response(status_code=200 if result.status == "extracted" else 202,
                    content_type=content_types.APPLICATION_JSON, body=AddResponse(data=result))


def everos_memories_router(everos: EverosTranslator) -> Router:
    router = Router()
    limit = everos.limits.max_everos_body_bytes

    def tenant() -> str:
        check_body_size(router, limit)
        return tenant_of(router)

    @router.post("/memories", summary="Add messages (text, images, documents) to a user's memory",
                 responses=ADDED)
    def add(req: Annotated[MemoryAddRequest, Body()],
            idempotency_key: IdempotencyKey = None) -> Response[AddResponse]:
        return added(everos.add(tenant(), req, idempotency_key))

    @router.post("/memories/group", summary="Add group messages (sender_id on each)",
                 responses=ADDED)
    def add_group(req: Annotated[GroupAddRequest, Body()],
                  idempotency_key: IdempotencyKey = None) -> Response[AddResponse]:
        return added(everos.add_group(tenant(), req, idempotency_key))

    @router.post("/memories/agent", summary="Add an agent trajectory (tool calls and results)",
                 responses=ADDED)
    def add_agent(req: Annotated[AgentAddRequest, Body()],
                  idempotency_key: IdempotencyKey = None) -> Response[AddResponse]:
        return added(everos.add_agent(tenant(), req, idempotency_key))

    def flushed() -> FlushResponse:
        tenant()
        return FlushResponse(data=FlushResult(
            status="no_extraction", message=NOTHING_TO_FLUSH,
            request_id=router.current_event.request_context.request_id))

    @router.post("/memories/flush", summary="Flush a user's pending messages (a no-op here)",
                 responses=responses(*BODY))
    def flush(req: Annotated[FlushRequest, Body()]) -> FlushResponse:
        return flushed()

    @router.post("/memories/group/flush", summary="Flush a group's pending messages (no-op)",
                 responses=responses(*BODY))
    def flush_group(req: Annotated[GroupFlushRequest, Body()]) -> FlushResponse:
        return flushed()

    @router.post("/memories/agent/flush", summary="Flush an agent's pending messages (no-op)",
                 responses=responses(*BODY))
    def flush_agent(req: Annotated[FlushRequest, Body()]) -> FlushResponse:
        return flushed()

    @router.post("/memories/get", summary="A user's (or group's) memories of one type, paged",
                 responses=responses(*BODY))
    def get(req: Annotated[MemoryGetRequest, Body()]) -> GetMemoriesResponse:
        return GetMemoriesResponse(data=everos.get(tenant(), req))

    @router.post("/memories/search", summary="Memories relevant to a query",
                 responses=responses(*BODY, INDEX))
    def search(req: Annotated[MemorySearchRequest, Body()]) -> SearchResponse:
        return SearchResponse(data=everos.search(tenant(), req))

    @router.post("/memories/delete",
                 summary="Soft-delete a memory or a session's; erase a user's or group's data",
                 responses=responses(*BODY, 404, INDEX))
    def delete(req: Annotated[MemoryDeleteRequest, Body()]) -> DeleteResponse:
        return DeleteResponse(data=everos.delete(tenant(), req))

    return router


def everos_tasks_router(everos: EverosTranslator) -> Router:
    router = Router()

    @router.get("/tasks/<task_id>", summary="Status of an add task",
                responses=responses(*PARAMS, 404))
    def get_task(task_id: PathId) -> TaskStatusResponse:
        return TaskStatusResponse(data=everos.task(tenant_of(router), task_id))

    return router


def everos_groups_router(everos: EverosTranslator) -> Router:
    router = Router()
    limit = everos.limits.max_everos_body_bytes

    def tenant() -> str:
        check_body_size(router, limit)
        return tenant_of(router)

    @router.post("/groups", summary="Create a group, or update the fields given (by group_id)",
                 responses=responses(*BODY))
    def put_group(req: Annotated[GroupCreateRequest, Body()]) -> GroupResponse:
        return GroupResponse(data=everos.put_group(tenant(), req))

    @router.get("/groups/<group_id>", summary="A group, with the sender ids that spoke in it",
                responses=responses(*PARAMS, 404))
    def get_group(group_id: PathId) -> GroupResponse:
        return GroupResponse(data=everos.get_group(tenant_of(router), group_id))

    @router.patch("/groups/<group_id>", summary="Change a group's name and/or description",
                  responses=responses(*BODY, 404))
    def patch_group(group_id: PathId,
                    req: Annotated[GroupPatchRequest, Body()]) -> GroupResponse:
        return GroupResponse(data=everos.patch_group(tenant(), group_id, req))

    return router


def everos_senders_router(everos: EverosTranslator) -> Router:
    router = Router()
    limit = everos.limits.max_everos_body_bytes

    def tenant() -> str:
        check_body_size(router, limit)
        return tenant_of(router)

    @router.post("/senders", summary="Create a sender, or rename one (by sender_id)",
                 responses=responses(*BODY))
    def put_sender(req: Annotated[SenderCreateRequest, Body()]) -> SenderResponse:
        return SenderResponse(data=everos.put_sender(tenant(), req))

    @router.get("/senders/<sender_id>", summary="A sender (the name its messages speak by)",
                responses=responses(*PARAMS, 404))
    def get_sender(sender_id: PathId) -> SenderResponse:
        return SenderResponse(data=everos.get_sender(tenant_of(router), sender_id))

    @router.patch("/senders/<sender_id>", summary="Rename a sender",
                  responses=responses(*BODY, 404))
    def patch_sender(sender_id: PathId,
                     req: Annotated[SenderPatchRequest, Body()]) -> SenderResponse:
        return SenderResponse(data=everos.patch_sender(tenant(), sender_id, req))

    return router


def everos_settings_router(everos: EverosTranslator) -> Router:
    router = Router()

    @router.get("/settings", summary="The space's settings (stored; defaults until set)",
                responses=responses(401))
    def get_settings() -> SettingsResponse:
        return SettingsResponse(data=everos.settings(tenant_of(router)))

    @router.put("/settings", summary="Change the settings given; the others stay",
                responses=responses(*BODY))
    def put_settings(req: Annotated[SettingsUpdateRequest, Body()]) -> SettingsResponse:
        check_body_size(router, everos.limits.max_everos_body_bytes)
        return SettingsResponse(data=everos.update_settings(tenant_of(router), req))

    return router
