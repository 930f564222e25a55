"""EverOS object/sign: pre-signed upload forms for up to 20 files per call."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from engram.api.everos.models import (
    ObjectSignData,
    ObjectSignRequest,
    ObjectSignResponse,
    ObjectSignResult,
)
from engram.api.openapi import BODY, mms_responses
from engram.api.params import check_body_size, tenant_of
from engram.container import Services


def everos_objects_router(services: Services) -> Router:
    router = Router()

    @router.post("/object/sign", summary="Pre-signed POST forms to upload files directly",
                 responses=mms_responses(*BODY))
    def sign(req: Annotated[ObjectSignRequest, Body()]) -> ObjectSignResponse:
        check_body_size(router, services.ingest.limits.max_everos_body_bytes)
        signed = services.uploads.sign(tenant_of(router), req)
        return ObjectSignResponse(
            request_id=router.current_event.request_context.request_id,
            result=ObjectSignResult(data=ObjectSignData(objectList=signed)))

    return router
