"""parse → extract → dedupe → index: the ingestion workflow as four service functions.

Each step takes a TaskRef (a pointer), reads what the previous step wrote to the object
store and writes its own output there, so the same functions run in-process locally and
as Lambda tasks of a Step Functions state machine.

Erasing a user removes their task rows first. Every step checks, after its writes, that
its task still exists; if not, it removes what it wrote and stops (TaskErased), so a task
still running while its user is erased brings nothing back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydantic import BaseModel

from engram.errors import PermanentError, TaskErased
from engram.extraction.assistant import assistant_candidates
from engram.extraction.documents import add_locations, document_candidates
from engram.extraction.images import image_turns
from engram.models.content import FAILED_PREFIX
from engram.models.domain import MemoryStatus, Task, TaskRef, TaskStatus, TokenUsage, now_ms
from engram.models.pipeline import (
    ContentJob,
    ContentJobsRef,
    DedupePlan,
    ExtractedCandidates,
    IngestJob,
    ParsedMessages,
    content_key,
    request_key,
    work_key,
    work_prefix,
)
from engram.pipeline.content_reader import ContentReader, never, parse_items
from engram.pipeline.dedupe import plan_changes, unpacked
from engram.ports import (
    ConflictResolver,
    Embedder,
    Extractor,
    MemoryIndex,
    MemoryStore,
    ObjectStore,
    TaskEvents,
    TaskStore,
)

log = logging.getLogger(__name__)

MAX_DECISIONS_SHOWN = 500


@dataclass
class PipelineDeps:
    objects: ObjectStore
    tasks: TaskStore
    memories: MemoryStore
    index: MemoryIndex
    embedder: Embedder
    extractor: Extractor
    # None: the rule-based conflict resolution (pipeline/dedupe.py) decides alone.
    resolver: ConflictResolver | None = None
    # Reads images, documents and audio (OCR, URL fetcher, limits); None: such items fail
    # with "capability unavailable" and the rest of the message is processed.
    content: ContentReader | None = None
    # Errors the workflow should retry rather than report as an item's failure (AWS
    # throttling and timeouts on AWS; nothing locally).
    transient: Callable[[BaseException], bool] = field(default=never)
    # After a task completed: its user's profiles filled by the LLM (tenant, user);
    # None without an LLM (profiles are then filled when read, services/profiles.py).
    fill_profiles: Callable[[str, str], object] | None = None
    # After a task completed or failed: its events (webhooks, the event bus); never raises.
    events: TaskEvents | None = None


def _load(deps: PipelineDeps, key: str, model: type[BaseModel]):
    try:
        return model.model_validate_json(deps.objects.get_bytes(key))
    except KeyError:
        raise PermanentError(f"missing pipeline object {key}") from None


def _put(deps: PipelineDeps, key: str, value: BaseModel) -> None:
    deps.objects.put_bytes(key, value.model_dump_json().encode())


def _task(deps: PipelineDeps, ref: TaskRef) -> Task:
    task = deps.tasks.get(ref.tenant_id, ref.task_id)
    if task is None:
        raise TaskErased(f"task {ref.task_id} not found: it was erased")
    return task


def _enter(deps: PipelineDeps, ref: TaskRef, step: str) -> Task:
    task = _task(deps, ref)
    task.status, task.step = TaskStatus.running, step
    deps.tasks.save(task)
    return task


def discard(deps: PipelineDeps, ref: TaskRef, memory_ids: Sequence[str] = ()) -> None:
    """Remove what a task wrote after its user was erased: its step outputs and the
    memories it stored."""
    deps.objects.delete_prefix(work_prefix(ref.tenant_id, ref.task_id))
    if memory_ids:
        deps.index.remove(ref.tenant_id, memory_ids)
        deps.memories.erase(ref.tenant_id, memory_ids)


@contextmanager
def unless_erased(deps: PipelineDeps, ref: TaskRef,
                  memory_ids: Sequence[str] = ()) -> Iterator[None]:
    """Wraps a step's writes. When the task turns out to be gone (at the end, or when a
    write failed because of it), what the step wrote is discarded and TaskErased ends
    the run. One task read per step."""
    try:
        yield
    except TaskErased:
        discard(deps, ref, memory_ids)
        raise
    except Exception:
        if deps.tasks.get(ref.tenant_id, ref.task_id) is not None:
            raise
        discard(deps, ref, memory_ids)
        raise TaskErased(f"task {ref.task_id} was erased while it ran") from None
    if deps.tasks.get(ref.tenant_id, ref.task_id) is None:
        discard(deps, ref, memory_ids)
        raise TaskErased(f"task {ref.task_id} was erased while it ran")


def load_job(deps: PipelineDeps, task: Task) -> IngestJob:
    return _load(deps, request_key(task.tenant_id, task.user_id, task.task_id), IngestJob)


def parse(deps: PipelineDeps, ref: TaskRef) -> TaskRef:
    """Content → text blocks with provenance. Text messages pass through as they are;
    images, documents and audio are read item by item (see pipeline/content_reader.py).

    Items handed to asynchronous jobs (the AWS path: a PDF's scanned pages, audio) are
    left "processing": their part read so far is stored, and the returned ref lists them
    (`ContentJobsRef`) for the state machine to wait on; pipeline/content_jobs.py merges
    their results before extract."""
    task = _enter(deps, ref, "parse")
    job = load_job(deps, task)
    blocks, deferred, descriptions = [], [], {}
    with unless_erased(deps, ref):
        if job.items:
            reader = deps.content or ContentReader()
            parsed_items = parse_items(reader, deps.objects, deps.tasks, task, job.items,
                                       deps.transient)
            blocks, deferred = parsed_items.blocks, parsed_items.deferred
            descriptions = parsed_items.descriptions
            if not deferred:
                require_some_content(job, task)
        for item in deferred:
            _put(deps, content_key(ref.tenant_id, ref.task_id, item.message_id, item.index,
                                   "deferred.json"), item)
        parsed = image_turns(job.messages, blocks, task.items, descriptions)
        _put(deps, work_key(ref.tenant_id, ref.task_id, "parsed"),
             ParsedMessages(messages=parsed, blocks=blocks))
    if deferred:
        return ContentJobsRef(**ref.model_dump(), content_jobs=[
            ContentJob(message_id=d.message_id, index=d.index, engine=d.engine)
            for d in deferred])
    return ref


def require_some_content(job: IngestJob, task: Task) -> None:
    """A message of items only, every one failed: nothing to remember, the task fails."""
    if not any(m.text.strip() for m in job.messages) and \
            all(s.state == "failed" for s in task.items):
        reasons = "; ".join(f"item {s.index} of {s.message_id}: "
                            f"{(s.error or '').removeprefix(FAILED_PREFIX + ': ')}"
                            for s in task.items)
        raise PermanentError(f"{FAILED_PREFIX}: {reasons}")


def extract(deps: PipelineDeps, ref: TaskRef) -> TaskRef:
    task = _enter(deps, ref, "extract")
    parsed = _load(deps, work_key(ref.tenant_id, ref.task_id, "parsed"), ParsedMessages)
    job = load_job(deps, task)
    extraction = deps.extractor.extract(parsed.messages, job.tool_calls)
    calling = {c.message_id for c in job.tool_calls}  # those turns are tool memory already
    candidates = extraction.candidates + assistant_candidates(
        [m for m in parsed.messages if m.message_id not in calling])
    if task.items:
        candidates += document_candidates(task, job.messages, parsed.blocks)
        add_locations(candidates, parsed.blocks, task.items)
    out = ExtractedCandidates(extractor=deps.extractor.name, candidates=candidates)
    _hand_on(deps, ref, task, "candidates", out, extraction.usage, extraction.warnings)
    return ref


def dedupe(deps: PipelineDeps, ref: TaskRef) -> TaskRef:
    task = _enter(deps, ref, "dedupe")
    job = load_job(deps, task)
    extracted = _load(deps, work_key(ref.tenant_id, ref.task_id, "candidates"),
                      ExtractedCandidates)
    plan = plan_changes(job, extracted.candidates, deps.memories, deps.index, deps.embedder,
                        resolver=deps.resolver)
    _hand_on(deps, ref, task, "plan", plan, plan.usage, plan.warnings)
    return ref


def _hand_on(deps: PipelineDeps, ref: TaskRef, task: Task, name: str, output: BaseModel,
             usage: TokenUsage, warnings: list[str]) -> None:
    """A step's output for the next step, and what its LLM calls cost and warned on the
    task row (saved only when there is something to add), unless the task was erased."""
    with unless_erased(deps, ref):
        _put(deps, work_key(ref.tenant_id, ref.task_id, name), output)
        if usage.calls or warnings:
            task.usage += usage
            task.warnings += [f"{task.step}: {w}" for w in warnings]
            deps.tasks.save(task)


def index(deps: PipelineDeps, ref: TaskRef) -> TaskRef:
    """Apply the plan: store, index, retire the task's fast-path turns, complete the task."""
    task = _enter(deps, ref, "index")
    job = load_job(deps, task)
    plan = _load(deps, work_key(ref.tenant_id, ref.task_id, "plan"), DedupePlan)

    memories = [w.memory for w in plan.writes]
    with unless_erased(deps, ref, [m.id for m in memories] + job.working_ids):
        # In this order a search always finds either the fast-path turns or what replaced
        # them: the new memories are stored, then indexed, and only then are the turns retired.
        deps.memories.put_many(memories)
        fresh = [w for w in plan.writes if w.vector is not None and
                 w.memory.status == MemoryStatus.activated]
        if fresh:
            import numpy as np  # not at import: the API's get/status loads no numpy

            vectors = np.stack([unpacked(w.vector) for w in fresh])
            deps.index.upsert([w.memory for w in fresh], vectors)
        retired = deps.memories.get_many(ref.tenant_id, job.working_ids)
        for memory in retired:
            memory.status, memory.valid_to, memory.update_time = (
                MemoryStatus.archived, now_ms(), now_ms())
        deps.memories.put_many(retired)
        inactive = [m.id for m in memories if m.status != MemoryStatus.activated]
        deps.index.remove(ref.tenant_id, inactive + [m.id for m in retired])

        task.status, task.step = TaskStatus.completed, "index"
        views = task.memory_views
        views.added, views.updated, views.deleted, views.noop = (
            plan.added, plan.updated, plan.deleted, plan.noop)
        # A task row must stay small (DynamoDB items cap at 400 KB); the ids above list all.
        views.decisions = plan.decisions[:MAX_DECISIONS_SHOWN]
        if len(plan.decisions) > MAX_DECISIONS_SHOWN:
            task.warnings.append(f"index: {len(plan.decisions) - MAX_DECISIONS_SHOWN} more "
                                 "decisions not listed in memory_views")
        if deps.fill_profiles is not None and (plan.added or plan.updated or plan.deleted):
            # Before the task completes, so a client that saw it complete reads profiles
            # that know its memories. A profile left unfilled must not fail the task.
            try:
                deps.fill_profiles(ref.tenant_id, ref.user_id)
            except Exception:  # noqa: BLE001
                log.exception("profiles of task %s's user not filled", ref.task_id)
        deps.tasks.save(task)
    deps.objects.delete_prefix(work_prefix(ref.tenant_id, ref.task_id))
    if deps.events is not None:
        deps.events.task_done(task)
    return ref


STEPS: tuple[Callable[[PipelineDeps, TaskRef], TaskRef], ...] = (parse, extract, dedupe, index)


def mark_failed(deps: PipelineDeps, ref: TaskRef, error: Exception) -> None:
    """A failed task keeps its raw request, so it can be retried; the reason is shown.
    A task that was erased has nothing left to mark: what its steps wrote is removed."""
    try:
        task = _task(deps, ref)
        task.status = TaskStatus.failed
        task.error = f"{task.step or 'pipeline'}: {type(error).__name__}: {error}"
        deps.tasks.save(task)
        if deps.events is not None:
            deps.events.task_done(task)
    except TaskErased:
        log.info("task %s was erased; nothing to mark failed", ref.task_id)
        discard(deps, ref)


def run_pipeline(deps: PipelineDeps, ref: TaskRef) -> Task:
    """Run every step in order (the local stand-in for the state machine). Raises
    TaskErased when the task's user was erased before or while it ran."""
    try:
        for step in STEPS:
            out = step(deps, ref)
            if isinstance(out, ContentJobsRef) and out.content_jobs:
                raise PermanentError("items wait for asynchronous jobs, which only the "
                                     "state machine can wait for")
    except TaskErased:
        log.info("task %s stopped: its user's data was erased", ref.task_id)
        raise
    except Exception as exc:  # noqa: BLE001 - any failure must end in a failed task row
        log.exception("task %s failed", ref.task_id)
        mark_failed(deps, ref, exc)
    return _task(deps, ref)
