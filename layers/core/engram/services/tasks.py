"""get/status and retry/task: a task of the caller's tenant, or 404 (another tenant's id
is unknown)."""

from __future__ import annotations

from dataclasses import dataclass

from engram.errors import Conflict, NotFound
from engram.models.domain import Task, TaskRef, TaskStatus
from engram.ports import TaskStore, WorkflowStarter


@dataclass
class TaskService:
    tasks: TaskStore
    workflow: WorkflowStarter

    def get(self, tenant_id: str, task_id: str) -> Task:
        task = self.tasks.get(tenant_id, task_id)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        return task

    def retry(self, tenant_id: str, task_id: str) -> Task:
        """Run a failed task again from its raw request, which a failure never loses
        (e.g. after the LLM endpoint was down). Steps already done are redone: dedupe
        finds what an earlier run stored, so nothing is stored twice."""
        task = self.get(tenant_id, task_id)
        if task.status != TaskStatus.failed:
            raise Conflict(f"task {task_id} is {task.status.value}; only a failed task can "
                           "be retried")
        task.status, task.step, task.error = TaskStatus.waiting, None, None
        task.attempt += 1
        self.tasks.save(task)
        self.workflow.start(TaskRef(tenant_id=task.tenant_id, task_id=task.task_id,
                                    user_id=task.user_id), attempt=task.attempt)
        return task
