"""EverOS tasks/{task_id}: an add's progress, with each file's state."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from engram.api.everos.models import TaskStatusResponse
from engram.api.everos.presenters import task_status
from engram.api.openapi import PARAMS, responses
from engram.api.params import PathId, tenant_of
from engram.container import Services


def everos_tasks_router(services: Services) -> Router:
    router = Router()

    @router.get("/tasks/<task_id>", summary="Status of an add task",
                responses=responses(*PARAMS, 404))
    def get_task(task_id: PathId) -> TaskStatusResponse:
        task = services.everos.task(tenant_of(router), task_id)
        return TaskStatusResponse(data=task_status(task))

    return router
