"""EverOS's v2 routes (/api/v2), one Router per resource: memory (add, search, get,
delete, flush, edit) and object/sign. Each hands its request to the v2 translator
(translate.py) and wraps the answer with the request id."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from engram.api.auth import tenant_of
from engram.api.everos.models import ObjectSignResponse, ObjectSignResult
from engram.api.everos.v2.models import (
    V2AddRequest,
    V2AddResponse,
    V2DeleteRequest,
    V2DeleteResponse,
    V2EditRequest,
    V2EditResponse,
    V2FlushRequest,
    V2FlushResponse,
    V2GetRequest,
    V2GetResponse,
    V2SearchRequest,
    V2SearchResponse,
    V2SignRequest,
)
from engram.api.everos.v2.translate import EverosV2Translator
from engram.api.openapi import BODY, INDEX, mms_responses, responses
from engram.api.params import IdempotencyKey, check_body_size


def everos_v2_objects_router(everos: EverosV2Translator) -> Router:
    router = Router()

    @router.post("/object/sign", summary="Pre-signed POST forms to upload files (up to 50)",
                 responses=mms_responses(*BODY))
    def sign(req: Annotated[V2SignRequest, Body()]) -> ObjectSignResponse:
        check_body_size(router, everos.v1.limits.max_everos_body_bytes)
        signed = everos.sign(tenant_of(router), req)
        return ObjectSignResponse(
            request_id=router.current_event.request_context.request_id,
            result=ObjectSignResult(data=signed))

    return router


def everos_v2_memory_router(everos: EverosV2Translator) -> Router:
    router = Router()
    limit = everos.v1.limits.max_everos_body_bytes

    def tenant() -> str:
        check_body_size(router, limit)
        return tenant_of(router)

    def request_id() -> str:
        return router.current_event.request_context.request_id or ""

    @router.post("/memory/add", summary="Add a conversation's messages (202 with its task)",
                 responses=responses(*BODY, 403, 404, 409, INDEX, accepted=V2AddResponse))
    def add(req: Annotated[V2AddRequest, Body()],
            idempotency_key: IdempotencyKey = None) -> Response[V2AddResponse]:
        data = everos.add(tenant(), req, idempotency_key)
        return Response(status_code=200 if data.status == "extracted" else 202,
                        content_type=content_types.APPLICATION_JSON,
                        body=V2AddResponse(request_id=request_id(), data=data))

    @router.post("/memory/search", summary="A user's (or agent's) memories relevant to a query",
                 responses=responses(*BODY, INDEX))
    def search(req: Annotated[V2SearchRequest, Body()]) -> V2SearchResponse:
        return V2SearchResponse(request_id=request_id(), data=everos.search(tenant(), req))

    @router.post("/memory/get", summary="A user's (or agent's) memories of one type, paged",
                 responses=responses(*BODY))
    def get(req: Annotated[V2GetRequest, Body()]) -> V2GetResponse:
        return V2GetResponse(request_id=request_id(), data=everos.get(tenant(), req))

    @router.post("/memory/delete",
                 summary="A conversation's memories out of search; an owner's data erased",
                 responses=responses(*BODY, INDEX))
    def delete(req: Annotated[V2DeleteRequest, Body()]) -> V2DeleteResponse:
        return V2DeleteResponse(request_id=request_id(), data=everos.delete(tenant(), req))

    @router.post("/memory/flush", summary="Wait for a conversation's adds still running",
                 responses=responses(*BODY, 409))
    def flush(req: Annotated[V2FlushRequest, Body()]) -> V2FlushResponse:
        return V2FlushResponse(request_id=request_id(), data=everos.flush(tenant(), req))

    @router.post("/memory/edit", summary="Add, change or delete items of a user's profile",
                 responses=responses(*BODY))
    def edit(req: Annotated[V2EditRequest, Body()]) -> V2EditResponse:
        return V2EditResponse(request_id=request_id(), data=everos.edit(tenant(), req))

    return router
