"""The MemOS routes (/v1), one Router per resource:
add/message, add/feedback, get/message; search/memory; get/memory (paged), get/memory/{id},
update/memory, delete/memory; get/status (POST with a body, or GET with ?task_id=) and
retry/task (a failed task runs again from its raw request)."""

from __future__ import annotations

from math import ceil
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
from engram.api.memos.presenters import (
    memory_detail,
    message_detail,
    preference_detail,
    tool_detail,
)
from engram.api.openapi import BODY, PARAMS, responses
from engram.api.params import IdempotencyKey, PathId, QueryId
from engram.container import Services
from engram.models.domain import Task
from engram.services.ingest import task_views


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


def search_router(services: Services) -> Router:
    router = Router()

    @router.post("/search/memory", summary="The memories that matter for a query",
                 responses=responses(*BODY))
    def search_memory(req: Annotated[SearchRequest, Body()]) -> Envelope[SearchData]:
        result = services.search.search(tenant_of(router), req)
        return Envelope(data=SearchData(
            memory_detail_list=[memory_detail(s.memory, s.relativity) for s in result.facts],
            preference_detail_list=[preference_detail(s.memory, s.relativity)
                                    for s in result.preferences],
            tool_memory_detail_list=[tool_detail(s.memory, s.relativity) for s in result.tools],
            preference_note=result.preference_note,
        ))

    return router


def memories_router(services: Services) -> Router:
    router = Router()

    @router.post("/get/memory", summary="A user's current memories, newest first, paged",
                 responses=responses(*BODY))
    def get_memory(req: Annotated[GetMemoryRequest, Body()]) -> Envelope[GetMemoryData]:
        pages = services.memories.page(tenant_of(router), req)
        return Envelope(data=GetMemoryData(
            memory_detail_list=[memory_detail(m) for m in pages.facts.items],
            preference_detail_list=[preference_detail(m) for m in pages.preferences],
            tool_memory_detail_list=[tool_detail(m) for m in pages.tools],
            total=pages.facts.total, size=req.size, current=req.page,
            pages=ceil(pages.facts.total / req.size)))

    @router.get("/get/memory/<memory_id>", summary="One memory by id, with its history",
                responses=responses(*PARAMS, 404))
    def get_memory_by_id(memory_id: PathId) -> Envelope[MemoryDetail]:
        memory = services.memories.get(tenant_of(router), memory_id)
        return Envelope(data=memory_detail(memory, with_history=True))

    @router.post("/update/memory", summary="Edit a memory's content, title or status",
                 responses=responses(*BODY, 404))
    def update_memory(req: Annotated[UpdateMemoryRequest, Body()]) -> Envelope[UpdateMemoryData]:
        memory = services.memories.update(tenant_of(router), req)
        return Envelope(data=UpdateMemoryData(memory=memory_detail(memory)))

    @router.post("/delete/memory", summary="Delete memories by id, or erase all of a user's data",
                 responses=responses(*BODY, 404))
    def delete_memory(req: Annotated[DeleteMemoryRequest, Body()]) -> Envelope[DeleteMemoryData]:
        deleted = services.memories.delete(tenant_of(router), req)
        return Envelope(data=DeleteMemoryData(deleted=deleted.deleted, receipt=deleted.receipt))

    return router


def status_data(task: Task) -> TaskStatusData:
    return TaskStatusData(
        task_id=task.task_id, status=task.status.value, step=task.step,
        memory_views=task_views(task), error=task.error, message_count=task.message_count,
        create_time=task.create_time, update_time=task.update_time, items=task.items,
        usage=task.usage, warnings=task.warnings, attempt=task.attempt)


def tasks_router(services: Services) -> Router:
    router = Router()

    @router.post("/get/status", summary="Progress and result of an add task",
                 responses=responses(*BODY, 404))
    def get_status(req: Annotated[TaskStatusRequest, Body()]) -> Envelope[TaskStatusData]:
        return Envelope(data=status_data(services.tasks.get(tenant_of(router), req.task_id)))

    @router.get("/get/status", summary="Progress and result of an add task",
                responses=responses(*PARAMS, 404))
    def get_status_query(task_id: QueryId) -> Envelope[TaskStatusData]:
        return Envelope(data=status_data(services.tasks.get(tenant_of(router), task_id)))

    @router.post("/retry/task", summary="Run a failed add task again from its raw request",
                 responses=responses(*BODY, 404, 409))
    def retry_task(req: Annotated[TaskStatusRequest, Body()]) -> Envelope[TaskStatusData]:
        return Envelope(data=status_data(services.tasks.retry(tenant_of(router), req.task_id)))

    return router
