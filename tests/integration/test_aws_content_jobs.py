"""The content-job functions in-process under moto (S3, SNS → SQS, Textract, Transcribe,
DynamoDB): start_content_job records the task token and starts the job, ocr_done and
transcript_done read the results and answer the token, collect_content merges them.
Redelivery, late notices, refusals and a deployment without Transcribe included; the
same waits run inside the state machine in test_state_machine.py."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from moto.moto_api import state_manager
from moto.textract.models import TextractBackend
from tests import fixtures_docs as docs
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.fakes.embedder import HashingEmbedder
from tests.integration.aws_stack import (
    BUCKET,
    JOB_PREFIX,
    TENANT,
    HeldWorkflow,
    MotoStack,
    handler_module,
    invoke,
    load_event,
    moto_stack,
)
from tests.integration.test_parsing_textract import textract_blocks
from tests.integration.test_transcribe_media import transcript_json

from engram.api.memos.models import AddMessageRequest
from engram.api.memos.translate import accept_args
from engram.aws.runtime import AwsRuntime, build_aws_runtime
from engram.models.pipeline import (
    ContentJobRecord,
    ParsedMessages,
    content_job_key,
    content_key,
    job_record_key,
    work_key,
)
from engram.pipeline.steps import PipelineDeps

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

SCAN_PAGES = [["Cover letter from Acme Corp."], ["Invoice 4711", "Total due 250 EUR"]]


class RecordingCallbacks:
    """Stands in for Step Functions' SendTaskSuccess/Failure; `spent` tokens are no
    longer waited on (timed out or answered), as Step Functions reports them."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.spent: set[str] = set()

    def succeed(self, token: str, output: dict) -> bool:
        self.calls.append(("success", token, output))
        return self._answer(token)

    def fail(self, token: str, error: str, cause: str) -> bool:
        self.calls.append(("failure", token, error, cause))
        return self._answer(token)

    def _answer(self, token: str) -> bool:
        fresh = token not in self.spent
        self.spent.add(token)
        return fresh


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    monkeypatch.setattr(TextractBackend, "BLOCKS", textract_blocks(SCAN_PAGES))
    with moto_stack(monkeypatch) as stack:
        yield stack


@pytest.fixture
def callbacks(stack) -> RecordingCallbacks:
    recording = RecordingCallbacks()
    stack.runtime.content_jobs.callbacks = recording
    return recording


def add_file(stack: MotoStack, user: str, name: str, data: bytes, text: str = "") -> dict:
    """An add with one file part, accepted (not started); its ref as the state machine
    passes it."""
    held = HeldWorkflow()
    ingest = dataclasses.replace(stack.runtime.services.ingest, workflow=held)
    content = [{"type": "text", "text": text}] if text else []
    content.append({"type": "file", "file": {"file_data": base64.b64encode(data).decode(),
                                             "file_name": name}})
    ingest.accept(TENANT, *accept_args(AddMessageRequest(
        user_id=user, conversation_id="c1", messages=[{"role": "user", "content": content}])))
    (ref,) = held.refs
    return ref.model_dump()


def parse(ref: dict) -> tuple[dict, dict]:
    """The parse step: its output, and the one job it lists."""
    out = invoke("parse", ref)
    (job,) = out["content_jobs"]
    return out, job


def record(stack: MotoStack, ref: dict, job: dict) -> ContentJobRecord:
    key = content_job_key(ref["tenant_id"], ref["task_id"], job["message_id"], job["index"])
    body = stack.s3.get_object(Bucket=BUCKET, Key=job_record_key(key))["Body"].read()
    return ContentJobRecord.model_validate_json(body)


def blocks_of(stack: MotoStack, ref: dict) -> ParsedMessages:
    body = stack.s3.get_object(Bucket=BUCKET,
                               Key=work_key(TENANT, ref["task_id"], "parsed"))["Body"].read()
    return ParsedMessages.model_validate_json(body)


def test_the_token_is_stored_before_the_job_starts_and_a_notice_answers_it_once(
        stack, callbacks):
    ref = add_file(stack, "u-ocr", "scan.pdf", docs.pdf_scanned())
    parsed_ref, job = parse(ref)
    assert job["engine"] == "ocr"
    started = invoke("start_content_job", {**ref, "job": job, "task_token": "tok-1"})
    stored = record(stack, ref, job)
    assert (stored.task_token, stored.job_id, stored.delivered) == ("tok-1", started["job_id"],
                                                                    False)
    notices = stack.ocr_notices()
    notice = json.loads(json.loads(notices["Records"][0]["body"])["Message"])
    assert notice["JobId"] == started["job_id"]

    assert invoke("ocr_done", notices) == {"batchItemFailures": []}
    assert invoke("ocr_done", notices) == {"batchItemFailures": []}  # SQS redelivered it

    message_id, index = job["message_id"], job["index"]
    assert callbacks.calls == [("success", "tok-1", {"message_id": message_id, "index": index,
                                                     "blocks": 1})]
    assert record(stack, ref, job).delivered
    result = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=content_key(
        TENANT, ref["task_id"], message_id, index, "result.json"))["Body"].read())
    # Only the page without a text layer is taken from the OCR job.
    assert [(b["page"], b["text"]) for b in result["blocks"]] == [
        (2, "Invoice 4711\nTotal due 250 EUR")]


def test_collect_merges_pages_in_order_and_is_idempotent(stack, callbacks):
    ref = add_file(stack, "u-merge", "scan.pdf", docs.pdf_scanned(), text="The invoice.")
    parsed_ref, job = parse(ref)
    invoke("start_content_job", {**ref, "job": job, "task_token": "tok"})
    invoke("ocr_done", stack.ocr_notices())
    collect_input = {**parsed_ref, "content_results": [{**ref, "job": job, "outcome": {}}]}

    assert invoke("collect_content", collect_input) == ref
    first = blocks_of(stack, ref)
    assert invoke("collect_content", collect_input) == ref  # a retried step
    again = blocks_of(stack, ref)

    assert [(b.page, b.text) for b in again.blocks] == [
        (1, "Cover letter from Acme Corp."), (2, "Invoice 4711\nTotal due 250 EUR")]
    assert again.blocks == first.blocks
    (item,) = stack.task(ref["task_id"]).items
    assert (item.state, item.pages, item.blocks) == ("completed", 2, 2)
    # Collected: the job's record (and its token) are gone, a late notice finds nothing.
    with pytest.raises(stack.s3.exceptions.NoSuchKey):
        record(stack, ref, job)
    assert stack.runtime.content_jobs.ocr_finished("late-job", "") == "unknown"


def test_a_wait_that_timed_out_fails_a_scan_only_item_with_the_reason(stack):
    scan_only = docs.pdf([docs.scanned_page(["Total due 250 EUR"])])
    ref = add_file(stack, "u-timeout", "scan.pdf", scan_only, text="Pay by Friday.")
    parsed_ref, job = parse(ref)
    (item,) = stack.task(ref["task_id"]).items
    assert (item.state, item.pages) == ("processing", 1)
    timed_out = {**ref, "job": job, "error": {"Error": "States.Timeout"}}

    assert invoke("collect_content", {**parsed_ref, "content_results": [timed_out]}) == ref

    (item,) = stack.task(ref["task_id"]).items
    assert item.state == "failed"
    assert item.error == ("Processing Failed: OCR (Amazon Textract) did not finish in the "
                          "time allowed")
    for step in ("extract", "dedupe", "index"):  # the rest of the message is processed
        assert invoke(step, ref) == ref
    task = stack.task(ref["task_id"])
    assert task.status == "completed" and task.memory_views.added


def test_audio_transcript_gives_timed_blocks_and_a_repeated_event_is_harmless(
        stack, callbacks):
    ref = add_file(stack, "u-audio", "standup.mp3", b"ID3\x04" + b"\x00" * 2048)
    parsed_ref, job = parse(ref)
    assert job["engine"] == "transcription"
    (item,) = stack.task(ref["task_id"]).items
    assert (item.state, item.kind) == ("processing", "audio")
    started = invoke("start_content_job", {**ref, "job": job, "task_token": "tok-a"})
    key = content_job_key(TENANT, ref["task_id"], job["message_id"], job["index"])
    assert started["job_id"] == f"{JOB_PREFIX}-{key}"
    described = stack.clients.transcribe.get_transcription_job(
        TranscriptionJobName=started["job_id"])["TranscriptionJob"]
    upload_key = item.uri
    assert described["Media"]["MediaFileUri"] == f"s3://{BUCKET}/{upload_key}"
    output = record(stack, ref, job).output_key
    assert output == content_key(TENANT, ref["task_id"], job["message_id"], job["index"],
                                 "transcript.json")
    stack.s3.put_object(Bucket=BUCKET, Key=output,
                        Body=json.dumps(transcript_json(started["job_id"])).encode())
    event = load_event("transcript_done", "job_completed")
    event["detail"]["TranscriptionJobName"] = started["job_id"]
    state_manager.set_transition("transcribe::transcriptionjob", {"progression": "immediate"})
    try:
        assert invoke("transcript_done", event)["outcome"] == "delivered"
        assert invoke("transcript_done", event)["outcome"] == "duplicate"
    finally:
        state_manager.unset_transition("transcribe::transcriptionjob")
    assert [c[0] for c in callbacks.calls] == ["success"]

    done = {**ref, "job": job, "outcome": callbacks.calls[0][2]}
    invoke("collect_content", {**parsed_ref, "content_results": [done]})
    (block,) = blocks_of(stack, ref).blocks
    assert (block.start_s, block.end_s, block.kind) == (0.04, 7.9, "audio")
    assert block.text.startswith("Hello, team. The quarterly report is due Friday.")
    (item,) = stack.task(ref["task_id"]).items
    assert (item.state, item.seconds) == ("completed", 7.9)


def test_a_retried_start_of_a_finished_transcription_answers_the_new_token(stack, callbacks):
    ref = add_file(stack, "u-retry", "memo.wav", docs_wav())
    _, job = parse(ref)
    started = invoke("start_content_job", {**ref, "job": job, "task_token": "tok-old"})
    stack.s3.put_object(Bucket=BUCKET, Key=record(stack, ref, job).output_key,
                        Body=json.dumps(transcript_json(started["job_id"])).encode())
    state_manager.set_transition("transcribe::transcriptionjob", {"progression": "immediate"})
    try:
        # The first attempt's notice was lost with its token; the retry (a new token)
        # finds the job finished and answers at once.
        invoke("start_content_job", {**ref, "job": job, "task_token": "tok-new"})
    finally:
        state_manager.unset_transition("transcribe::transcriptionjob")
    assert [(c[0], c[1]) for c in callbacks.calls] == [("success", "tok-new")]
    assert len(stack.clients.transcribe.list_transcription_jobs()[
        "TranscriptionJobSummaries"]) == 1


def test_a_failed_transcription_answers_with_failure(stack, callbacks):
    ref = add_file(stack, "u-fail", "memo.wav", docs_wav())
    _, job = parse(ref)
    started = invoke("start_content_job", {**ref, "job": job, "task_token": "tok"})
    jobs = stack.runtime.content_jobs
    jobs.transcription = FailedTranscribe(jobs.transcription, "The media file is corrupt.")
    event = load_event("transcript_done", "job_failed")
    event["detail"]["TranscriptionJobName"] = started["job_id"]

    assert invoke("transcript_done", event)["outcome"] == "delivered"
    assert callbacks.calls == [("failure", "tok", "ContentJobFailed",
                                "transcription failed: The media file is corrupt.")]


def test_a_refused_start_fails_the_item_with_the_reason(stack):
    ref = add_file(stack, "u-mov", "clip.mov", b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 64,
                   text="A clip from the party.")
    parsed_ref, job = parse(ref)
    with pytest.raises(Exception, match="cannot read .mov files") as raised:
        invoke("start_content_job", {**ref, "job": job, "task_token": "tok"})
    # What the Map's Catch records for that error, handed to collect:
    caught = {"Error": type(raised.value).__name__, "Cause": json.dumps(
        {"errorType": type(raised.value).__name__, "errorMessage": str(raised.value)})}
    invoke("collect_content", {**parsed_ref, "content_results": [
        {**ref, "job": job, "error": caught}]})
    (item,) = stack.task(ref["task_id"]).items
    assert item.state == "failed"
    assert item.error.startswith("Processing Failed: Amazon Transcribe cannot read .mov files")


def test_notices_of_unknown_jobs_are_consumed(stack):
    assert invoke("ocr_done", load_event("ocr_done", "textract_succeeded")) == {
        "batchItemFailures": []}
    assert invoke("transcript_done", load_event("transcript_done", "job_completed"))[
        "outcome"] == "unknown"


def runtime_with(stack: MotoStack, **aws: str) -> AwsRuntime:
    """The stack's runtime, built again with other AWS settings."""
    settings = stack.settings.model_copy(update={
        "aws": stack.settings.aws.model_copy(update=aws)})
    return build_aws_runtime(settings, embedder=HashingEmbedder(), clients=stack.clients)


def parse_task(ref: dict, deps: PipelineDeps) -> dict:
    """The parse function's seam, called with a runtime of the test's own."""
    return handler_module("parse").parse_task(ref, deps)


def test_with_transcription_disabled_audio_is_capability_unavailable(stack):
    runtime = runtime_with(stack, transcription="disabled")
    ref = add_file(stack, "u-off", "memo.wav", docs_wav(), text="Listen to this.")

    assert parse_task(ref, runtime.pipeline) == ref  # nothing to wait for
    (item,) = stack.task(ref["task_id"]).items
    assert item.state == "failed"
    assert item.error == ("Processing Failed: audio transcription unavailable: Amazon "
                          "Transcribe is disabled for this deployment (template parameter "
                          "SpeechTranscription)")
    assert runtime.content_jobs.transcription is None


def test_without_the_ocr_topic_scanned_pages_are_read_in_the_parse_step(stack):
    runtime = runtime_with(stack, ocr_topic_arn="")
    ref = add_file(stack, "u-sync", "scan.pdf", docs.pdf_scanned())

    assert parse_task(ref, runtime.pipeline) == ref  # DetectDocumentText per scanned page instead
    (item,) = stack.task(ref["task_id"]).items
    assert (item.state, item.pages) == ("completed", 2)


def test_the_sample_events_parse_and_drive_the_start_function(stack, callbacks):
    event = load_event("start_content_job", "ocr_job")
    with pytest.raises(Exception, match="missing pipeline object"):
        invoke("start_content_job", event)  # no such task in this stack: a permanent error


class FailedTranscribe:
    """Transcribe reporting a failed job (moto's jobs always complete)."""

    def __init__(self, inner, reason: str):
        self._inner, self._reason = inner, reason

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def status(self, job_name: str):
        from engram.ports import JobState

        return JobState("FAILED", self._reason)


def docs_wav() -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(b"\x00\x00" * 16_000)
    return out.getvalue()
