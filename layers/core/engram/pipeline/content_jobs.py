"""Items read by asynchronous jobs, waited for by a workflow callback (the AWS path):
a PDF with pages without a text layer is OCRed as one job (Textract), audio and video
are transcribed (Transcribe).

    parse        reads what it can (a PDF's text layer), stores a DeferredItem per job,
                 leaves the item "processing" and lists the jobs (pipeline/steps.py)
    start        one per job, with the workflow's task token: records the token under
                 the job's business key *before* starting the job, then starts it
    *_finished   the job's completion notice: reads the result, stores it beside the
                 task's step outputs, answers the token (success, or failure with why)
    collect      after every wait ended (answered, timed out, refused): merges results
                 into the parse output and sets each item's final status — the only
                 writer of the task row on this path, so concurrent jobs never race

Redelivery is harmless everywhere: a job's key is derived from (task, item), so a
retried start finds the same job; a repeated notice rewrites the same result and its
answer to a spent token is ignored; collect rebuilds the item's blocks from scratch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from engram.errors import (
    CapabilityUnavailable,
    ParseError,
    PermanentError,
    RetryableError,
    TaskErased,
)
from engram.models.content import FAILED_PREFIX
from engram.models.domain import TaskRef
from engram.models.parsed import ParseResult
from engram.models.pipeline import (
    CaughtStepError,
    ContentJob,
    ContentJobOutcome,
    ContentJobRecord,
    ContentJobResult,
    DeferredItem,
    ParsedMessages,
    content_job_key,
    content_key,
    job_alias_key,
    job_record_key,
    work_key,
)
from engram.pipeline.content_reader import block_refs
from engram.pipeline.steps import (
    PipelineDeps,
    _enter,
    _load,
    _put,
    load_job,
    require_some_content,
    unless_erased,
)
from engram.ports import ObjectStore, OcrJobs, TaskCallbacks, TranscriptionJobs

log = logging.getLogger(__name__)

JOB_FAILED = "ContentJobFailed"  # the error a failed job's token is answered with
ENGINE_NAMES = {"ocr": "OCR (Amazon Textract)",
                "transcription": "transcription (Amazon Transcribe)"}
OCR_DONE = ("SUCCEEDED", "PARTIAL_SUCCESS", "FAILED")
TRANSCRIPTION_DONE = ("COMPLETED", "FAILED")
# Errors whose message is the reason itself (the item's own problem, said for the user).
ITEM_ERRORS = {JOB_FAILED, "ParseError", "LimitExceeded", "CapabilityUnavailable"}


@dataclass
class ContentJobs:
    objects: ObjectStore
    callbacks: TaskCallbacks
    ocr: OcrJobs | None = None
    transcription: TranscriptionJobs | None = None
    job_prefix: str = "engram"  # Transcribe job names: unique per account and Region

    # --- start ---------------------------------------------------------------------------

    def start(self, ref: TaskRef, job: ContentJob, task_token: str) -> ContentJobRecord:
        deferred = self._deferred(ref.tenant_id, ref.task_id, job)
        key = content_job_key(ref.tenant_id, ref.task_id, job.message_id, job.index)
        previous = self._record(key)
        record = ContentJobRecord(
            job_key=key, tenant_id=ref.tenant_id, task_id=ref.task_id, user_id=ref.user_id,
            message_id=job.message_id, index=job.index, engine=job.engine,
            task_token=task_token, job_id=previous.job_id if previous else "",
            output_key=content_key(ref.tenant_id, ref.task_id, job.message_id, job.index,
                                   "transcript.json"))
        self._save(record)  # before the job starts: its notice must find the token
        if job.engine == "ocr":
            record.job_id = self._ocr().start(deferred.key, job_tag=key, request_token=key)
            self.objects.put_bytes(job_alias_key("ocr", record.job_id), key.encode())
            restarted = bool(previous and previous.job_id == record.job_id)
        else:
            name = self.job_name(key)
            started = self._transcription().start(
                deferred.key, job_name=name, output_key=record.output_key,
                media_format=deferred.media_format)
            record.job_id, restarted = name, not started
        self._save(record)
        # A retried start (a new token) of a job that already finished: its notice went to
        # the old token, so answer the new one now.
        if restarted and self._finished(record):
            self._deliver(record, deferred)
        return record

    def job_name(self, job_key: str) -> str:
        return f"{self.job_prefix}-{job_key}"

    # --- completion notices -------------------------------------------------------------

    def ocr_finished(self, job_id: str, job_tag: str = "") -> str:
        """Textract's notice (SNS): JobTag is the job key; the JobId alias is the fallback
        for a notice without one."""
        key = job_tag
        if not key:
            try:
                key = self.objects.get_bytes(job_alias_key("ocr", job_id)).decode()
            except KeyError:
                key = ""
        return self._finished_notice(key, job_id)

    def transcription_finished(self, job_name: str) -> str:
        prefix = f"{self.job_prefix}-"
        if not job_name.startswith(prefix):
            log.info("transcription job %s is not one of ours", job_name)
            return "unknown"
        return self._finished_notice(job_name.removeprefix(prefix), job_name)

    def _finished_notice(self, key: str, job_id: str) -> str:
        record = self._record(key) if key else None
        if record is None:  # collected already (a late duplicate), or not ours
            log.info("no waiting item for job %s", job_id)
            return "unknown"
        if record.job_id and record.job_id != job_id:
            log.info("notice of job %s, but the item waits for %s", job_id, record.job_id)
            return "stale"
        if record.delivered:
            log.info("job %s was delivered already (a redelivered notice)", job_id)
            return "duplicate"
        record.job_id = record.job_id or job_id
        self._deliver(record, self._deferred(record.tenant_id, record.task_id, record))
        return "delivered"

    def _finished(self, record: ContentJobRecord) -> bool:
        if record.engine == "ocr":
            return self._ocr().status(record.job_id) in OCR_DONE
        return self._transcription().status(record.job_id).state in TRANSCRIPTION_DONE

    def _deliver(self, record: ContentJobRecord, deferred: DeferredItem) -> None:
        """The job's result (or why there is none) stored for collect; the token answered."""
        result = (self._ocr_result(record, deferred) if record.engine == "ocr"
                  else self._transcription_result(record, deferred))
        self.objects.put_bytes(
            content_key(record.tenant_id, record.task_id, record.message_id, record.index,
                        "result.json"), result.model_dump_json().encode())
        if result.error:
            answered = self.callbacks.fail(record.task_token, JOB_FAILED, result.error)
        else:
            answered = self.callbacks.succeed(record.task_token, {
                "message_id": record.message_id, "index": record.index,
                "blocks": len(result.blocks)})
        if not answered:
            log.info("job %s: the workflow no longer waits (timed out or answered)",
                     record.job_id)
        record.delivered = True
        self._save(record)

    def _ocr_result(self, record: ContentJobRecord, deferred: DeferredItem) -> ContentJobResult:
        try:
            parsed = self._ocr().result(record.job_id)
        except ParseError as exc:
            return ContentJobResult(error=str(exc))
        # The job read the whole document; its blocks replace only the pages without text.
        wanted = set(deferred.ocr_pages)
        parsed.blocks = [b for b in parsed.blocks if b.page in wanted]
        blocks = block_refs(deferred.item_type, deferred.kind, deferred.name, deferred.location,
                            deferred.message_id, deferred.index, parsed)
        warnings = list(parsed.warnings)
        if not blocks:
            warnings.append(f"OCR found no text on {_pages(deferred.ocr_pages)}")
        return ContentJobResult(blocks=blocks, pages=deferred.pages or parsed.pages,
                                warnings=warnings)

    def _transcription_result(self, record: ContentJobRecord,
                              deferred: DeferredItem) -> ContentJobResult:
        engine = self._transcription()
        state = engine.status(record.job_id)
        if state.state not in TRANSCRIPTION_DONE:  # a notice ahead of the job's own status
            raise RetryableError(f"transcription job {record.job_id} is {state.state}")
        if state.state == "FAILED":
            return ContentJobResult(error=f"transcription failed: "
                                          f"{state.reason or 'no reason given'}")
        try:
            transcript = engine.parse_transcript(self.objects.get_bytes(record.output_key))
        except KeyError:
            return ContentJobResult(error="the transcript is missing from the bucket")
        except ParseError as exc:
            return ContentJobResult(error=str(exc))
        parsed = ParseResult(kind=deferred.kind, blocks=transcript.blocks,
                             seconds=round(transcript.seconds, 3))
        blocks = block_refs(deferred.item_type, deferred.kind, deferred.name, deferred.location,
                            deferred.message_id, deferred.index, parsed)
        warnings = [] if blocks else [f"no speech was recognised in the {deferred.kind}"]
        return ContentJobResult(blocks=blocks, seconds=parsed.seconds, warnings=warnings)

    # --- records ------------------------------------------------------------------------

    def _ocr(self) -> OcrJobs:
        if self.ocr is None:
            raise CapabilityUnavailable("asynchronous OCR is not configured here")
        return self.ocr

    def _transcription(self) -> TranscriptionJobs:
        if self.transcription is None:
            raise CapabilityUnavailable("transcription is turned off for this deployment")
        return self.transcription

    def _record(self, key: str) -> ContentJobRecord | None:
        try:
            return ContentJobRecord.model_validate_json(
                self.objects.get_bytes(job_record_key(key)))
        except KeyError:
            return None

    def _save(self, record: ContentJobRecord) -> None:
        self.objects.put_bytes(job_record_key(record.job_key),
                               record.model_dump_json().encode())

    def _deferred(self, tenant_id: str, task_id: str,
                  job: ContentJob | ContentJobRecord) -> DeferredItem:
        return load_deferred(self.objects, tenant_id, task_id, job.message_id, job.index)


def load_deferred(objects: ObjectStore, tenant_id: str, task_id: str, message_id: str,
                  index: int) -> DeferredItem:
    key = content_key(tenant_id, task_id, message_id, index, "deferred.json")
    try:
        return DeferredItem.model_validate_json(objects.get_bytes(key))
    except KeyError:
        raise PermanentError(f"missing pipeline object {key}") from None


# --- collect (a pipeline step) ---------------------------------------------------------------

def collect(deps: PipelineDeps, ref: TaskRef, outcomes: list[ContentJobOutcome]) -> TaskRef:
    """Every job's result merged into the parse output; each item completed (with its
    pages or seconds) or failed with the reason — a job that never finished included."""
    task = _enter(deps, ref, "parse")
    job = load_job(deps, task)
    parsed_key = work_key(ref.tenant_id, ref.task_id, "parsed")
    parsed = _load(deps, parsed_key, ParsedMessages)
    statuses = {(s.message_id, s.index): s for s in task.items}
    for outcome in outcomes:
        item = (outcome.job.message_id, outcome.job.index)
        deferred = load_deferred(deps.objects, ref.tenant_id, ref.task_id, *item)
        result = _stored_result(deps.objects, ref, outcome.job)
        reason = (result.error if result is not None
                  else caught_reason(outcome.job.engine, outcome.error))
        blocks = list(deferred.blocks) + ([] if reason else list(result.blocks))
        blocks.sort(key=lambda b: (b.page or 0, b.start_s or 0.0))
        parsed.blocks = [b for b in parsed.blocks if (b.message_id, b.index) != item] + blocks
        status = statuses[item]
        status.kind, status.blocks, status.error = deferred.kind, len(blocks), None
        status.warnings = list(deferred.warnings)
        if reason and not blocks:
            status.state, status.error = "failed", f"{FAILED_PREFIX}: {reason}"
            continue
        status.state, status.pages = "completed", deferred.pages
        if reason:  # the text layer was read; the scanned pages were not
            status.warnings.append(f"{_pages(deferred.ocr_pages)} not read: {reason}")
        else:
            status.warnings += result.warnings
            status.seconds = result.seconds
    try:
        with unless_erased(deps, ref):
            deps.tasks.save(task)
            require_some_content(job, task)
            _put(deps, parsed_key, parsed)
    except TaskErased:
        _forget_jobs(deps.objects, ref, outcomes)
        raise
    _forget_jobs(deps.objects, ref, outcomes)
    return TaskRef(tenant_id=ref.tenant_id, task_id=ref.task_id, user_id=ref.user_id)


def caught_reason(engine: str, error: CaughtStepError | None) -> str:
    what = ENGINE_NAMES.get(engine, engine)
    if error is None:
        return f"{what} left no result"
    if error.Error in ("States.Timeout", "States.HeartbeatTimeout"):
        return f"{what} did not finish in the time allowed"
    message = error.message or error.Error
    return message if error.Error in ITEM_ERRORS else f"{what}: {error.Error}: {message}"


def _stored_result(objects: ObjectStore, ref: TaskRef, job: ContentJob) -> ContentJobResult | None:
    key = content_key(ref.tenant_id, ref.task_id, job.message_id, job.index, "result.json")
    try:
        return ContentJobResult.model_validate_json(objects.get_bytes(key))
    except KeyError:
        return None


def _forget_jobs(objects: ObjectStore, ref: TaskRef, outcomes: list[ContentJobOutcome]) -> None:
    for outcome in outcomes:
        forget_job(objects, ref.tenant_id, ref.task_id, outcome.job.message_id,
                   outcome.job.index)


def forget_job(objects: ObjectStore, tenant_id: str, task_id: str, message_id: str,
               index: int) -> list[str]:
    """An item's job record (and Textract's JobId alias) removed, once collected or when
    the task's user is erased: a late notice then finds nothing to answer. The keys
    removed."""
    key = content_job_key(tenant_id, task_id, message_id, index)
    try:
        record = ContentJobRecord.model_validate_json(objects.get_bytes(job_record_key(key)))
    except KeyError:
        return []
    removed = []
    if record.engine == "ocr" and record.job_id:
        removed += objects.delete_prefix(job_alias_key("ocr", record.job_id))
    return removed + objects.delete_prefix(job_record_key(key))


def _pages(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:20])
    more = f" and {len(numbers) - 20} more" if len(numbers) > 20 else ""
    return f"page{'s' if len(numbers) != 1 else ''} {shown}{more}"
