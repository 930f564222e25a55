"""The MemOS routes (/v1), one Router per resource:
add/message, add/feedback, get/message; search/memory; get/memory (paged), get/memory/{id},
update/memory, delete/memory; get/status (POST with a body, or GET with ?task_id=) and
retry/task (a failed task runs again from its raw request). Each route hands its request
to the MemOS translator (translate.py) and wraps the answer in the envelope."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from engram.api.auth import tenant_of
from engram.api.memos.models import (
    AddMessageData,
    AddMessageRequest,
    DeleteMemoryData,
    DeleteMemoryRequest,
    Envelope,
    FeedbackRequest,
    GetMemoryData,
    GetMemoryRequest,
    GetMessageData,
    GetMessageRequest,
    MemoryDetail,
    SearchData,
    SearchRequest,
    TaskStatusData,
    TaskStatusRequest,
    UpdateMemoryData,
    UpdateMemoryRequest,
)
from engram.api.memos.translate import MemosTranslator
from engram.api.openapi import BODY, INDEX, PARAMS, responses
from engram.api.params import IdempotencyKey, PathId, QueryId


def messages_router(memos: MemosTranslator) -> Router:
    router = Router()

    # 409: the same add still being accepted, or its user erased meanwhile; 404: an
    # allow_knowledgebase_ids entry that is not the tenant's
    @router.post("/add/message", summary="Add conversation messages (async by default)",
                 responses=responses(*BODY, 404, 409, INDEX))
    def add_message(req: Annotated[AddMessageRequest, Body()],
                    idempotency_key: IdempotencyKey = None) -> Envelope[AddMessageData]:
        return Envelope(data=memos.add_message(tenant_of(router), req, idempotency_key))

    @router.post("/add/feedback", summary="Correct a user's memories in natural language",
                 responses=responses(*BODY, 404, 409, INDEX))
    def add_feedback(req: Annotated[FeedbackRequest, Body()],
                     idempotency_key: IdempotencyKey = None) -> Envelope[AddMessageData]:
        return Envelope(data=memos.add_feedback(tenant_of(router), req, idempotency_key))

    @router.post("/get/message", summary="The raw messages of a conversation",
                 responses=responses(*BODY))
    def get_message(req: Annotated[GetMessageRequest, Body()]) -> Envelope[GetMessageData]:
        return Envelope(data=memos.get_message(tenant_of(router), req))

    return router


def search_router(memos: MemosTranslator) -> Router:
    router = Router()

    # 404: a knowledgebase_ids entry that is not the tenant's
    @router.post("/search/memory", summary="The memories that matter for a query",
                 responses=responses(*BODY, 404, INDEX))
    def search_memory(req: Annotated[SearchRequest, Body()]) -> Envelope[SearchData]:
        return Envelope(data=memos.search(tenant_of(router), req))

    return router


def memories_router(memos: MemosTranslator) -> Router:
    router = Router()

    @router.post("/get/memory", summary="A user's current memories, newest first, paged",
                 responses=responses(*BODY))
    def get_memory(req: Annotated[GetMemoryRequest, Body()]) -> Envelope[GetMemoryData]:
        return Envelope(data=memos.get_memory(tenant_of(router), req))

    @router.get("/get/memory/<memory_id>", summary="One memory by id, with its history",
                responses=responses(*PARAMS, 404))
    def get_memory_by_id(memory_id: PathId) -> Envelope[MemoryDetail]:
        return Envelope(data=memos.get_memory_by_id(tenant_of(router), memory_id))

    @router.post("/update/memory", summary="Edit a memory's content, title or status",
                 responses=responses(*BODY, 404, INDEX))
    def update_memory(req: Annotated[UpdateMemoryRequest, Body()]) -> Envelope[UpdateMemoryData]:
        return Envelope(data=memos.update_memory(tenant_of(router), req))

    @router.post("/delete/memory", summary="Delete memories by id, or erase all of a user's data",
                 responses=responses(*BODY, 404, INDEX))
    def delete_memory(req: Annotated[DeleteMemoryRequest, Body()]) -> Envelope[DeleteMemoryData]:
        return Envelope(data=memos.delete_memory(tenant_of(router), req))

    return router


def tasks_router(memos: MemosTranslator) -> Router:
    router = Router()

    @router.post("/get/status", summary="Progress and result of an add task",
                 responses=responses(*BODY, 404))
    def get_status(req: Annotated[TaskStatusRequest, Body()]) -> Envelope[TaskStatusData]:
        return Envelope(data=memos.task_status(tenant_of(router), req.task_id))

    @router.get("/get/status", summary="Progress and result of an add task",
                responses=responses(*PARAMS, 404))
    def get_status_query(task_id: QueryId) -> Envelope[TaskStatusData]:
        return Envelope(data=memos.task_status(tenant_of(router), task_id))

    @router.post("/retry/task", summary="Run a failed add task again from its raw request",
                 responses=responses(*BODY, 404, 409))
    def retry_task(req: Annotated[TaskStatusRequest, Body()]) -> Envelope[TaskStatusData]:
        return Envelope(data=memos.retry_task(tenant_of(router), req.task_id))

    return router
