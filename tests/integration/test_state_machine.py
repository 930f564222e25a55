"""statemachine/ingest.asl.json executed by moto's Step Functions interpreter, with the
real handlers of functions/ behind its Lambda tasks (feasibility §1d), so the ASL's
Retry and Catch run for real: a happy path, a retryable failure that recovers, and a
permanent failure that ends in a failed task saying why. RetryIntervalSeconds is
substituted with 1 (the template's default is 2, doubled per attempt)."""

from __future__ import annotations

import dataclasses

import pytest
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.integration.aws_stack import TENANT, MotoStack, moto_stack

from engram.adapters.sfn_workflow import StepFunctionsWorkflow
from engram.models.api import AddMessageRequest
from engram.models.domain import TaskRef, TaskStatus
from engram.models.pipeline import request_key

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    with moto_stack(monkeypatch, execute=True) as stack:
        yield stack


class HeldWorkflow:
    """Accept a task without starting it, so a test can prepare, then start it itself."""

    def __init__(self) -> None:
        self.refs: list[TaskRef] = []

    def start(self, ref: TaskRef) -> None:
        self.refs.append(ref)


def accept(stack: MotoStack, user: str, text: str) -> TaskRef:
    """add/message through the real IngestService; the execution is not started yet."""
    held = HeldWorkflow()
    ingest = dataclasses.replace(stack.runtime.services.ingest, workflow=held)
    ingest.add_messages(TENANT, AddMessageRequest(
        user_id=user, conversation_id="c1", messages=[{"role": "user", "content": text}]))
    (ref,) = held.refs
    return ref


def run(stack: MotoStack, ref: TaskRef) -> dict:
    StepFunctionsWorkflow(stack.sfn, stack.settings.state_machine_arn).start(ref)
    return stack.wait_for_execution(ref.task_id)


def entered_states(stack: MotoStack, ref: TaskRef) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in stack.history(ref.task_id)
            if e["type"] == "TaskStateEntered"]


def test_happy_path_completes_the_task_and_indexes_the_memory(stack):
    ref = accept(stack, "u-happy", "I prefer green tea in the morning.")
    execution = run(stack, ref)

    assert execution["status"] == "SUCCEEDED", execution
    assert stack.invocations == ["parse", "extract", "dedupe", "index"]
    assert entered_states(stack, ref) == ["Parse", "Extract", "Dedupe", "Index"]
    task = stack.task(ref.task_id)
    assert task.status == TaskStatus.completed and task.memory_views.added
    # Only the pointer travelled through the states.
    assert TaskRef.model_validate_json(execution["output"]) == ref
    memory_ids = set(task.memory_views.added)
    indexed = {d["memory_id"] for d in stack.opensearch.indices["engram-memories"].docs.values()}
    assert memory_ids <= indexed


def test_retryable_failure_is_retried_and_recovers(stack):
    ref = accept(stack, "u-retry", "I prefer oolong tea after lunch.")
    armed = []

    def throttle_first_dedupe(function: str) -> None:
        # The next OpenSearch request (dedupe's near-duplicate search) gets a 429, which
        # the index adapter reports as RetryableError: the ASL's first Retry applies.
        if function == "dedupe" and not armed:
            armed.append(True)
            stack.opensearch.fail_next(429)

    stack.before_task = throttle_first_dedupe
    execution = run(stack, ref)

    assert execution["status"] == "SUCCEEDED", execution
    assert stack.invocations == ["parse", "extract", "dedupe", "dedupe", "index"]
    failures = [e["taskFailedEventDetails"] for e in stack.history(ref.task_id)
                if e["type"] == "TaskFailed"]
    assert [f["error"] for f in failures] == ["RetryableError"]
    assert "429" in failures[0]["cause"]
    assert stack.task(ref.task_id).status == TaskStatus.completed


def test_permanent_failure_marks_the_task_failed_with_the_reason(stack):
    ref = accept(stack, "u-broken", "I like hiking on weekends.")
    # The raw request disappears: parse cannot load it, and retrying will not help.
    stack.s3.delete_object(Bucket=stack.settings.bucket,
                           Key=request_key(TENANT, ref.user_id, ref.task_id))
    execution = run(stack, ref)

    assert execution["status"] == "FAILED"
    assert execution.get("error") == "PermanentError"
    assert stack.invocations == ["parse", "mark_failed"]  # no retry of a permanent error
    task = stack.task(ref.task_id)
    assert task.status == TaskStatus.failed
    assert task.error.startswith("parse: PermanentError: missing pipeline object requests/")


def test_an_unclassified_error_is_caught_too_and_named(stack):
    ref = accept(stack, "u-bug", "I have two cats.")

    def corrupt_the_plan(function: str) -> None:
        # Vectors of the wrong length in dedupe's plan: the index step raises ValueError,
        # neither retryable nor permanent by name, so the Catch takes it.
        if function == "index":
            plan_key = f"work/{TENANT}/{ref.task_id}/plan.json"
            plan = stack.s3.get_object(Bucket=stack.settings.bucket, Key=plan_key)
            text = plan["Body"].read().decode()
            broken = text.replace('"vector":[', '"vector":[' + "0.0," * 3, 1)
            stack.s3.put_object(Bucket=stack.settings.bucket, Key=plan_key, Body=broken)

    stack.before_task = corrupt_the_plan
    execution = run(stack, ref)

    assert execution["status"] == "FAILED"
    task = stack.task(ref.task_id)
    assert task.status == TaskStatus.failed
    assert task.error.startswith("index: ValueError: ")
    assert stack.invocations == ["parse", "extract", "dedupe", "index", "mark_failed"]
