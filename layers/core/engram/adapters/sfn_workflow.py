"""WorkflowStarter on Step Functions: one execution per task, named by the task id."""

from __future__ import annotations

from typing import Any

from engram.models.domain import TaskRef


class StepFunctionsWorkflow:
    def __init__(self, client: Any, state_machine_arn: str):
        self._sfn = client  # a boto3 Step Functions client
        self._arn = state_machine_arn

    def start(self, ref: TaskRef) -> None:
        """Starting a task twice is harmless: the execution name is the task id, and
        ExecutionAlreadyExists means the first start went through. The input is the
        pointer only; the request itself waits in the object store."""
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=ref.task_id,
                                      input=ref.model_dump_json())
        except self._sfn.exceptions.ExecutionAlreadyExists:
            pass
