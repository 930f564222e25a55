"""statemachine/ingest.asl.json executed by moto's Step Functions interpreter, with the
real handlers of functions/ behind its Lambda tasks (feasibility §1d), so the ASL's
Retry and Catch run for real: a happy path, a retryable failure that recovers, and a
permanent failure that ends in a failed task saying why. RetryIntervalSeconds is
substituted with 1 (the template's default is 2, doubled per attempt).

Content jobs use the callback pattern (`lambda:invoke.waitForTaskToken`), which moto's
interpreter runs for real: the execution waits in its Map until the test hands the
job's completion (Textract's SNS notice from the OCR queue, a Transcribe EventBridge
event) to the real ocr_done / transcript_done handler, which answers the token."""

from __future__ import annotations

import base64
import dataclasses
import json
import time

import pytest
from moto.moto_api import state_manager
from moto.textract.models import TextractBackend
from tests import fixtures_docs as docs
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.integration.aws_stack import (
    JOB_PREFIX,
    TENANT,
    HeldWorkflow,
    MotoStack,
    invoke,
    load_event,
    moto_stack,
)
from tests.integration.test_parsing_textract import textract_blocks
from tests.integration.test_transcribe_media import transcript_json

from engram.adapters.sfn_workflow import StepFunctionsWorkflow
from engram.api.memos.models import AddMessageRequest
from engram.api.memos.translate import accept_args
from engram.models.domain import TaskRef, TaskStatus
from engram.models.pipeline import content_job_key, content_key, request_key

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    with moto_stack(monkeypatch, execute=True) as stack:
        yield stack


def accept(stack: MotoStack, user: str, text: str) -> TaskRef:
    """add/message through the real IngestService; the execution is not started yet."""
    held = HeldWorkflow()
    ingest = dataclasses.replace(stack.runtime.services.ingest, workflow=held)
    ingest.accept(TENANT, *accept_args(AddMessageRequest(
        user_id=user, conversation_id="c1", messages=[{"role": "user", "content": text}])))
    (ref,) = held.refs
    return ref


def run(stack: MotoStack, ref: TaskRef) -> dict:
    StepFunctionsWorkflow(stack.sfn, stack.settings.aws.state_machine_arn).start(ref)
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
    stack.s3.delete_object(Bucket=stack.settings.aws.bucket,
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
        # A vector of the wrong length in dedupe's plan (3 more bytes in its base64): the
        # index step raises ValueError, neither retryable nor permanent by name, so the
        # Catch takes it.
        if function == "index":
            plan_key = f"work/{TENANT}/{ref.task_id}/plan.json"
            plan = stack.s3.get_object(Bucket=stack.settings.aws.bucket, Key=plan_key)
            text = plan["Body"].read().decode()
            broken = text.replace('"vector":"', '"vector":"AAAA', 1)
            assert broken != text
            stack.s3.put_object(Bucket=stack.settings.aws.bucket, Key=plan_key, Body=broken)

    stack.before_task = corrupt_the_plan
    execution = run(stack, ref)

    assert execution["status"] == "FAILED"
    task = stack.task(ref.task_id)
    assert task.status == TaskStatus.failed
    assert task.error.startswith("index: ValueError: ")
    assert stack.invocations == ["parse", "extract", "dedupe", "index", "mark_failed"]


# --- content jobs: waits with a task token, answered by the jobs' completions -------------

SCANNED_LINES = ["Invoice 4711 from Acme Corp", "Total due 250 EUR by December 3"]


def accept_with_file(stack: MotoStack, user: str, text: str, name: str, data: bytes) -> TaskRef:
    """add/message with a MemOS file part (base64), stored beside the request."""
    held = HeldWorkflow()
    ingest = dataclasses.replace(stack.runtime.services.ingest, workflow=held)
    content = [{"type": "text", "text": text},
               {"type": "file", "file": {"file_data": base64.b64encode(data).decode(),
                                         "file_name": name}}]
    ingest.accept(TENANT, *accept_args(AddMessageRequest(
        user_id=user, conversation_id="c1", messages=[{"role": "user", "content": content}])))
    (ref,) = held.refs
    return ref


def start(stack: MotoStack, ref: TaskRef) -> None:
    StepFunctionsWorkflow(stack.sfn, stack.settings.aws.state_machine_arn).start(ref)


def wait_for_invocation(stack: MotoStack, name: str, timeout: float = 20) -> None:
    """Until the state machine's call of `name` has returned. moto's Textract sends its
    notice from inside the start call, before the function has saved the job id's alias
    (moto drops JobTag), so a notice read earlier could find no waiting item."""
    deadline = time.monotonic() + timeout
    while name not in stack.returned:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} has not returned; invocations: {stack.invocations}")
        time.sleep(0.05)


@pytest.fixture
def two_page_textract(monkeypatch):
    """Textract's async answer for docs.pdf_scanned(): page 1's text layer and the scan."""
    monkeypatch.setattr(TextractBackend, "BLOCKS", textract_blocks(
        [["Cover letter from Acme Corp."], SCANNED_LINES]))


def test_a_scanned_pdf_waits_for_its_textract_job_and_resumes_on_the_callback(
        stack, two_page_textract):
    ref = accept_with_file(stack, "u-scan", "Here is the invoice.", "invoice.pdf",
                           docs.pdf_scanned())
    start(stack, ref)
    # Parse left the item processing and the Map's wait started the job; Textract's
    # notice arrives on the OCR queue (SNS → SQS) and the ocr_done function answers.
    wait_for_invocation(stack, "start_content_job")
    notices = stack.ocr_notices()
    item = stack.task(ref.task_id).items[0]
    assert (item.state, item.pages) == ("processing", 2)
    assert invoke("ocr_done", notices) == {"batchItemFailures": []}
    execution = stack.wait_for_execution(ref.task_id)

    assert execution["status"] == "SUCCEEDED", execution
    assert stack.invocations == ["parse", "start_content_job", "collect_content", "extract",
                                 "dedupe", "index"]
    assert entered_states(stack, ref) == ["Parse", "AwaitOcr", "CollectContent", "Extract",
                                          "Dedupe", "Index"]
    task = stack.task(ref.task_id)
    assert task.status == TaskStatus.completed
    (item,) = task.items
    assert (item.state, item.kind, item.pages, item.error) == ("completed", "pdf", 2, None)
    memories = stack.runtime.pipeline.memories.get_many(TENANT, task.memory_views.added)
    scanned = [m for m in memories if "Total due 250 EUR" in m.memory_value]
    assert any(s.endswith("#page=2") for m in scanned for s in m.sources)  # a passage
    assert TaskRef.model_validate_json(execution["output"]) == ref


def test_an_ocr_job_that_never_finishes_fails_its_item_only(aws_credentials, monkeypatch,  # noqa: F811
                                                             two_page_textract):
    with moto_stack(monkeypatch, execute=True, job_timeout_seconds=2) as stack:
        ref = accept_with_file(stack, "u-late", "I moved to Porto in May.", "late.pdf",
                               docs.pdf_scanned())
        execution = run(stack, ref)  # nobody delivers the notice: the wait times out

        assert execution["status"] == "SUCCEEDED", execution
        failures = [e for e in stack.history(ref.task_id) if e["type"] == "TaskTimedOut"]
        assert failures, [e["type"] for e in stack.history(ref.task_id)]
        task = stack.task(ref.task_id)
        assert task.status == TaskStatus.completed and task.memory_views.added
        (item,) = task.items
        # The text layer (page 1) was read; the scanned page was not, and it says why.
        assert item.state == "completed" and item.pages == 2
        assert item.warnings[-1] == ("page 2 not read: OCR (Amazon Textract) did not "
                                     "finish in the time allowed")
        # The late notice finds no waiting item (collected): consumed, not an error.
        assert invoke("ocr_done", stack.ocr_notices()) == {"batchItemFailures": []}


def test_a_failed_textract_job_answers_with_failure_and_the_item_says_why(
        stack, monkeypatch, two_page_textract):
    monkeypatch.setattr(TextractBackend, "JOB_STATUS", "FAILED")
    ref = accept_with_file(stack, "u-bad-scan", "", "bad.pdf", docs.pdf_scanned())
    start(stack, ref)
    wait_for_invocation(stack, "start_content_job")
    assert invoke("ocr_done", stack.ocr_notices()) == {"batchItemFailures": []}
    execution = stack.wait_for_execution(ref.task_id)

    assert execution["status"] == "SUCCEEDED", execution
    failed = [e["taskFailedEventDetails"] for e in stack.history(ref.task_id)
              if e["type"] == "TaskFailed"]
    assert [f["error"] for f in failed] == ["ContentJobFailed"]
    (item,) = stack.task(ref.task_id).items
    assert item.state == "completed"  # its text layer still counts
    assert item.warnings[-1] == "page 2 not read: OCR of the PDF failed: no reason given"


def test_audio_waits_for_its_transcribe_job_and_keeps_time_spans(stack):
    ref = accept_with_file(stack, "u-talk", "", "standup.mp3", b"ID3\x04" + b"\x00" * 2048)
    start(stack, ref)
    wait_for_invocation(stack, "start_content_job")
    (item,) = stack.task(ref.task_id).items
    output = content_key(TENANT, ref.task_id, item.message_id, item.index, "transcript.json")
    job_name = JOB_PREFIX + "-" + content_job_key(TENANT, ref.task_id, item.message_id,
                                                   item.index)
    deadline = time.monotonic() + 20
    while not stack.clients.transcribe.list_transcription_jobs()["TranscriptionJobSummaries"]:
        assert time.monotonic() < deadline, "the Transcribe job was never started"
        time.sleep(0.05)
    # What Transcribe does when the job ends: the transcript in the bucket, then the event.
    stack.s3.put_object(Bucket=stack.settings.aws.bucket, Key=output,
                        Body=json.dumps(transcript_json(job_name)).encode())
    state_manager.set_transition("transcribe::transcriptionjob", {"progression": "immediate"})
    try:
        event = load_event("transcript_done", "job_completed")
        event["detail"]["TranscriptionJobName"] = job_name
        assert invoke("transcript_done", event)["outcome"] == "delivered"
    finally:
        state_manager.unset_transition("transcribe::transcriptionjob")
    execution = stack.wait_for_execution(ref.task_id)

    assert execution["status"] == "SUCCEEDED", execution
    assert entered_states(stack, ref) == ["Parse", "AwaitTranscript", "CollectContent",
                                          "Extract", "Dedupe", "Index"]
    task = stack.task(ref.task_id)
    (item,) = task.items
    assert (item.state, item.kind, item.seconds) == ("completed", "audio", 7.9)
    memories = stack.runtime.pipeline.memories.get_many(TENANT, task.memory_views.added)
    spoken = [m for m in memories if "quarterly report" in m.memory_value]
    assert any(s.endswith("#t=0.04,7.9") for m in spoken for s in m.sources)  # a passage
