"""get/status: a task of the caller's tenant, or 404 (another tenant's id is unknown)."""

from __future__ import annotations

from dataclasses import dataclass

from engram.errors import NotFound
from engram.models.domain import Task
from engram.ports import TaskStore


@dataclass
class TaskService:
    tasks: TaskStore

    def get(self, tenant_id: str, task_id: str) -> Task:
        task = self.tasks.get(tenant_id, task_id)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        return task
