"""add/message, add/feedback, get/message."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from engram.api.memos.models import (
    AddMessageData,
    AddMessageRequest,
    Envelope,
    FeedbackRequest,
    GetMessageData,
    GetMessageRequest,
)
from engram.api.memos.presenters import message_detail
from engram.api.openapi import BODY, responses
from engram.api.params import IdempotencyKey, tenant_of
from engram.container import Services


def messages_router(services: Services) -> Router:
    router = Router()

    # 409: the same add still being accepted, or its user erased meanwhile
    @router.post("/add/message", summary="Add conversation messages (async by default)",
                 responses=responses(*BODY, 409))
    def add_message(req: Annotated[AddMessageRequest, Body()],
                    idempotency_key: IdempotencyKey = None) -> Envelope[AddMessageData]:
        return Envelope(data=services.ingest.add_messages(tenant_of(router), req,
                                                          idempotency_key))

    @router.post("/add/feedback", summary="Correct a user's memories in natural language",
                 responses=responses(*BODY, 409))
    def add_feedback(req: Annotated[FeedbackRequest, Body()],
                     idempotency_key: IdempotencyKey = None) -> Envelope[AddMessageData]:
        return Envelope(data=services.ingest.add_feedback(tenant_of(router), req,
                                                          idempotency_key))

    @router.post("/get/message", summary="The raw messages of a conversation",
                 responses=responses(*BODY))
    def get_message(req: Annotated[GetMessageRequest, Body()]) -> Envelope[GetMessageData]:
        messages = services.memories.conversation(
            tenant_of(router), req.user_id, req.conversation_id, req.message_limit_number)
        return Envelope(data=GetMessageData(
            message_detail_list=[message_detail(m) for m in messages]))

    return router
