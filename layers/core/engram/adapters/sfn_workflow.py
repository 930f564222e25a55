"""Step Functions: the WorkflowStarter (one execution per task, named by the task id) and
the TaskCallbacks that answer the ingest workflow's waits for content jobs."""

from __future__ import annotations

import json
from typing import Any

from engram.models.domain import TaskRef


class StepFunctionsWorkflow:
    def __init__(self, client: Any, state_machine_arn: str):
        self._sfn = client  # a boto3 Step Functions client
        self._arn = state_machine_arn

    def start(self, ref: TaskRef, attempt: int = 1) -> None:
        """Starting a task twice is harmless: the execution name is the task id (and the
        attempt, for a retried task), and ExecutionAlreadyExists means the first start
        went through. The input is the pointer only; the request itself waits in the
        object store."""
        name = ref.task_id if attempt == 1 else f"{ref.task_id}-{attempt}"
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=name,
                                      input=ref.model_dump_json())
        except self._sfn.exceptions.ExecutionAlreadyExists:
            pass


class StepFunctionsCallbacks:
    """TaskCallbacks on Step Functions: answers a `.waitForTaskToken` task. A token the
    workflow no longer waits on (timed out, answered already, execution gone) is not an
    error here: a redelivered or late notice must not fail its consumer."""

    MAX_CAUSE = 32_768  # SendTaskFailure's limits
    MAX_ERROR = 256

    def __init__(self, client: Any):
        self._sfn = client

    def succeed(self, token: str, output: dict) -> bool:
        return self._answer(self._sfn.send_task_success, taskToken=token,
                            output=json.dumps(output))

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._answer(self._sfn.send_task_failure, taskToken=token,
                            error=error[:self.MAX_ERROR], cause=cause[:self.MAX_CAUSE])

    def _answer(self, call: Any, **params: Any) -> bool:
        spent = (self._sfn.exceptions.TaskTimedOut, self._sfn.exceptions.InvalidToken,
                 self._sfn.exceptions.TaskDoesNotExist)
        try:
            call(**params)
        except spent:
            return False
        return True
