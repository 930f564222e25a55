"""The pipeline steps as state machine tasks: a TaskRef in, the same TaskRef out, never
a document (a state's payload is capped at 256 KiB).

Errors are named for the ASL, which matches names exactly: a transient failure leaves as
`RetryableError` (retried with backoff), anything else under its own name (caught, and
the task is marked failed with the reason by `mark_step_failed`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from engram.aws.events import ExecutionStatusChange, FailedStepInput
from engram.aws.observability import count
from engram.errors import RetryableError
from engram.models.domain import TaskRef, TaskStatus
from engram.pipeline.steps import PipelineDeps, mark_failed

Step = Callable[[PipelineDeps, TaskRef], TaskRef]
T = TypeVar("T")

TRANSIENT_AWS_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "SlowDown",
    "InternalError", "InternalFailure", "InternalServerError", "InternalServerException",
    "ServiceUnavailable", "ServiceUnavailableException", "ModelNotReadyException",
    "ModelTimeoutException", "TransactionInProgressException",
    "LimitExceededException",  # Textract/Transcribe: too many concurrent jobs for now
})
TRANSIENT_HTTP_STATUS = frozenset({429, 500, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """Throttling, 5xx and connection failures of AWS and OpenSearch calls."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as AwsConnectionError

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in TRANSIENT_AWS_CODES or status in TRANSIENT_HTTP_STATUS
    if isinstance(error, (AwsConnectionError, HTTPClientError)):
        return True
    try:
        from opensearchpy.exceptions import ConnectionError as SearchConnectionError
        from opensearchpy.exceptions import TransportError
    except ImportError:  # pragma: no cover - opensearch-py ships in the layer
        return False
    if isinstance(error, SearchConnectionError):  # includes ConnectionTimeout
        return True
    return isinstance(error, TransportError) and error.status_code in TRANSIENT_HTTP_STATUS


def run_step(step: Step, deps: PipelineDeps, event: dict[str, Any]) -> dict[str, Any]:
    ref = TaskRef.model_validate(event)
    if finished(deps, ref):
        # An Express execution runs at least once: a repeated one finds the task done
        # (its step outputs removed) or failed (retry/task makes it waiting before it
        # starts a run) and must leave it as it is.
        return ref.model_dump()
    return classified(lambda: step(deps, ref)).model_dump()


def finished(deps: PipelineDeps, ref: TaskRef, *,
             ends: tuple[TaskStatus, ...] = (TaskStatus.completed, TaskStatus.failed)) -> bool:
    task = classified(lambda: deps.tasks.get(ref.tenant_id, ref.task_id))
    return task is not None and task.status in ends


def classified(call: Callable[[], T]) -> T:
    """`call()`, its transient failures renamed RetryableError for the ASL's Retry."""
    try:
        return call()
    except RetryableError as error:
        if type(error) is RetryableError:
            raise
        raise RetryableError(error.message) from error  # a subclass' name would not match
    except Exception as error:
        if is_transient(error):
            raise RetryableError(f"{type(error).__name__}: {error}") from error
        raise


def mark_step_failed(deps: PipelineDeps, event: dict[str, Any]) -> dict[str, Any]:
    """The Catch target: the task row says failed, which step, and why."""
    failed = FailedStepInput.model_validate(event)
    # A repeated execution's failure after the task was done leaves it done.
    if finished(deps, failed.ref(), ends=(TaskStatus.completed,)):
        return failed.ref().model_dump()
    mark_failed(deps, failed.ref(), failed.error.as_exception())
    count("TasksFailed")
    return failed.ref().model_dump()


class ExecutionEnded(Exception):
    """How a task's reason reads when its execution ended outside the ASL's Catch."""


def close_ended_execution(deps: PipelineDeps, event: dict[str, Any]) -> dict[str, Any]:
    """An execution aborted, timed out or failed where no Catch ran (an execution-level
    timeout, StopExecution, a failing Catch target): a task it left waiting or running is
    marked failed, so it can be seen and retried; a finished task is left as it is."""
    change = ExecutionStatusChange.model_validate(event)
    detail = change.detail
    ref = detail.input
    task = deps.tasks.get(ref.tenant_id, ref.task_id) if ref else None
    if task is None or task.status not in (TaskStatus.waiting, TaskStatus.running):
        return {"task_id": ref.task_id if ref else None, "changed": False}
    reason = f"the workflow execution {detail.name} ended {detail.status}"
    if detail.error or detail.cause:
        reason += f" ({': '.join(p for p in (detail.error, detail.cause) if p)})"
    mark_failed(deps, ref, ExecutionEnded(reason))
    count("TasksFailed")
    return {"task_id": ref.task_id, "changed": True}
