"""The two ingestion workflows under moto's Step Functions interpreter, with the real
handlers behind their Lambda tasks: text-only adds take the Express workflow
(statemachine/ingest-text.asl.json), adds with files the Standard one (callbacks for
Textract and Transcribe), and the Express one hands any transient trouble to the Standard
one, which retries. Adds go through the real IngestService and its StateMachineRunner,
so the routing is the deployed one.

What moto cannot show: it runs an EXPRESS machine with the same interpreter as a
STANDARD one, so the 5-minute cap, at-least-once starts and the missing execution
history of Express are not reproduced (tests/contract checks the cap from the ASL's
timeouts; a repeated execution is started by hand below)."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from tests import fixtures_docs as docs
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.integration.aws_stack import TENANT, HeldWorkflow, MotoStack, moto_stack

from engram.api.memos.models import AddMessageRequest
from engram.api.memos.translate import accept_args
from engram.models.domain import TaskRef, TaskStatus
from engram.models.pipeline import request_key

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    with moto_stack(monkeypatch, execute=True) as stack:
        yield stack


def add(stack: MotoStack, user: str, content) -> TaskRef:
    """add/message (async) through the deployed path: the runner picks the workflow."""
    result = stack.runtime.services.ingest.accept(TENANT, *accept_args(AddMessageRequest(
        user_id=user, conversation_id="c1", messages=[{"role": "user", "content": content}])))
    return TaskRef(tenant_id=TENANT, task_id=result.task_id, user_id=user)


def standard(stack: MotoStack) -> str:
    return stack.settings.aws.state_machine_arn


def express(stack: MotoStack) -> str:
    return stack.settings.aws.text_state_machine_arn


def entered(stack: MotoStack, name: str, machine: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in stack.history(name, machine)
            if e["type"] in ("TaskStateEntered", "ChoiceStateEntered", "SucceedStateEntered")]


def indexed_ids(stack: MotoStack) -> set[str]:
    return {d["memory_id"] for d in stack.opensearch.indices["engram-memories"].docs.values()}


def test_a_text_add_runs_on_the_express_workflow_and_completes(stack):
    ref = add(stack, "u-text", "I prefer green tea in the morning.")
    execution = stack.wait_for_execution(ref.task_id, machine=express(stack))

    assert execution["status"] == "SUCCEEDED", execution
    assert stack.executions(standard(stack)) == []  # no state transitions billed
    assert stack.invocations == ["parse", "extract", "dedupe", "index"]
    assert entered(stack, ref.task_id, express(stack)) == [
        "Parse", "NothingToWaitFor", "Extract", "Dedupe", "Index"]
    task = stack.task(ref.task_id)
    assert task.status == TaskStatus.completed and task.memory_views.added
    assert set(task.memory_views.added) <= indexed_ids(stack)
    assert TaskRef.model_validate_json(execution["output"]) == ref


def test_a_pdf_add_runs_on_the_standard_workflow_and_completes(stack):
    content = [{"type": "text", "text": "Here is the letter."},
               {"type": "file", "file": {"file_data": base64.b64encode(
                   docs.pdf([docs.text_page(["Acme Corp renewed the contract in May."])])
               ).decode(), "file_name": "letter.pdf"}}]
    ref = add(stack, "u-pdf", content)
    execution = stack.wait_for_execution(ref.task_id, machine=standard(stack))

    assert execution["status"] == "SUCCEEDED", execution
    assert stack.executions(express(stack)) == []  # files may need callbacks: Standard only
    task = stack.task(ref.task_id)
    assert task.status == TaskStatus.completed
    (item,) = task.items
    assert (item.state, item.kind) == ("completed", "pdf")
    memories = stack.runtime.pipeline.memories.get_many(TENANT, task.memory_views.added)
    assert any("renewed the contract" in m.memory_value for m in memories)


def test_a_waking_index_on_express_hands_the_task_to_standard_which_retries(stack):
    """The collection scaled to zero: dedupe's search is refused (503) on Express, which
    hands the task over; on Standard the first dedupe is refused too and the ASL's Retry
    runs it again once the collection is back."""
    dedupes = []

    def collection(function: str) -> None:
        if function == "dedupe":
            dedupes.append(function)
            if len(dedupes) == 1:
                stack.opensearch.scale_to_zero(60)  # idle for 10 minutes: capacity at 0
            elif len(dedupes) == 3:
                stack.opensearch.scale_to_zero(0)  # capacity is back

    stack.before_task = collection
    ref = add(stack, "u-wake", "I moved to Lisbon last spring.")
    handed_over = stack.wait_for_execution(ref.task_id, machine=express(stack))
    finished = stack.wait_for_execution(ref.task_id, machine=standard(stack))

    assert handed_over["status"] == "SUCCEEDED", handed_over  # it ends in HandedOver
    assert entered(stack, ref.task_id, express(stack))[-2:] == ["HandOver", "HandedOver"]
    assert finished["status"] == "SUCCEEDED", finished
    assert TaskRef.model_validate_json(finished["input"]) == ref  # the pointer only
    assert stack.invocations == ["parse", "extract", "dedupe",  # Express
                                 "parse", "extract", "dedupe", "dedupe", "index"]  # Standard
    failures = [e["taskFailedEventDetails"] for e in stack.history(ref.task_id, standard(stack))
                if e["type"] == "TaskFailed"]
    assert [f["error"] for f in failures] == ["RetryableError"]
    assert "scaled to zero" in failures[0]["cause"] and "503" in failures[0]["cause"]
    assert stack.opensearch.waking_answers() >= 2
    task = stack.task(ref.task_id)
    assert task.status == TaskStatus.completed and task.error is None
    assert set(task.memory_views.added) <= indexed_ids(stack)


def accept_held(stack: MotoStack, user: str, text: str) -> TaskRef:
    """Accepted but not started, so the test can break something first."""
    held = HeldWorkflow()
    ingest = dataclasses.replace(stack.runtime.services.ingest, workflow=held)
    ingest.accept(TENANT, *accept_args(AddMessageRequest(
        user_id=user, conversation_id="c1", messages=[{"role": "user", "content": text}])))
    (ref,) = held.refs
    return ref


def test_a_permanent_failure_on_express_marks_the_task_failed_and_a_retry_runs_on_standard(
        stack):
    ref = accept_held(stack, "u-broken", "I like hiking on weekends.")
    bucket, key = stack.settings.aws.bucket, request_key(TENANT, ref.user_id, ref.task_id)
    raw = stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    stack.s3.delete_object(Bucket=bucket, Key=key)  # parse cannot load it: not transient
    runner = stack.runtime.services.ingest.workflow
    runner.start(ref)
    execution = stack.wait_for_execution(ref.task_id, machine=express(stack))

    assert execution["status"] == "FAILED" and execution["error"] == "PermanentError"
    assert stack.invocations == ["parse", "mark_failed"]  # caught, not handed over
    assert stack.executions(standard(stack)) == []
    task = stack.task(ref.task_id)
    assert task.status == TaskStatus.failed
    assert task.error.startswith("parse: PermanentError: missing pipeline object requests/")

    # Express starts at least once: a repeated execution leaves the failed task as it is.
    stack.sfn.start_execution(stateMachineArn=express(stack), name=f"{ref.task_id}-again",
                              input=ref.model_dump_json())
    again = stack.wait_for_execution(f"{ref.task_id}-again", machine=express(stack))
    assert again["status"] == "SUCCEEDED", again  # every step found the task failed
    assert stack.task(ref.task_id).error == task.error

    # retry/task: a failed task's next attempt takes the Standard workflow (its full
    # retries and timeouts), named <task id>-<attempt>.
    stack.s3.put_object(Bucket=bucket, Key=key, Body=raw)
    retried = stack.runtime.services.tasks.retry(TENANT, ref.task_id)
    name = f"{ref.task_id}-{retried.attempt}"
    assert stack.wait_for_execution(name, machine=standard(stack))["status"] == "SUCCEEDED"
    assert {e["name"] for e in stack.executions(express(stack))} == {
        ref.task_id, f"{ref.task_id}-again"}  # none for the retry
    assert stack.task(ref.task_id).status == TaskStatus.completed


def test_a_repeated_express_execution_leaves_a_completed_task_as_it_is(stack):
    """Express starts at least once: a second execution of a finished task (its step
    outputs already removed) must neither fail it nor store anything again."""
    ref = add(stack, "u-twice", "My sister lives in Porto.")
    stack.wait_for_execution(ref.task_id, machine=express(stack))
    done = stack.task(ref.task_id)
    assert done.status == TaskStatus.completed
    memories = stack.runtime.services.memories.conversation(TENANT, ref.user_id, "c1", 50)
    documents = dict(stack.opensearch.indices["engram-memories"].docs)

    stack.sfn.start_execution(stateMachineArn=express(stack), name=f"{ref.task_id}-again",
                              input=ref.model_dump_json())
    again = stack.wait_for_execution(f"{ref.task_id}-again", machine=express(stack))

    assert again["status"] == "SUCCEEDED", again
    assert stack.invocations[4:] == ["parse", "extract", "dedupe", "index"]
    after = stack.task(ref.task_id)
    assert after.status == TaskStatus.completed and after.error is None
    assert after.memory_views == done.memory_views
    assert stack.runtime.services.memories.conversation(TENANT, ref.user_id, "c1", 50) \
        == memories
    assert stack.opensearch.indices["engram-memories"].docs == documents


def test_the_router_sends_only_first_runs_of_text_only_adds_to_express(stack):
    runner = stack.runtime.services.ingest.workflow
    assert runner.text_state_machine is not None
    unknown = TaskRef(tenant_id=TENANT, task_id="no-such-task", user_id="u-x")
    runner.start(unknown)  # a task that cannot be read: the Standard workflow
    assert [e["name"] for e in stack.executions(standard(stack))] == ["no-such-task"]
    assert stack.executions(express(stack)) == []
