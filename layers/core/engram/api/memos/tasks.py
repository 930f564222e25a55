"""get/status (POST with a body, or GET with ?task_id=) and retry/task (a failed task runs
again from its raw request)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from engram.api.memos.models import Envelope, TaskStatusData, TaskStatusRequest
from engram.api.openapi import BODY, PARAMS, responses
from engram.api.params import QueryId, tenant_of
from engram.container import Services
from engram.models.domain import Task
from engram.services.ingest import task_views


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
