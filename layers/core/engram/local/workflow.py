"""The embedded stand-in for Step Functions: the same four steps, in order, on a small
thread pool. Tasks of one user run one at a time so dedupe sees the previous task's
memories; tasks of different users run side by side."""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from engram.adapters.cpu_priority import lower_thread_priority
from engram.models.domain import Task, TaskRef
from engram.pipeline.steps import PipelineDeps, run_pipeline
from engram.ports import background_work

# The pipeline's threads give way to requests when both want a core (Linux nice values).
# Under bench/load.py (8 clients, 30 % adds) +5 took search p95 from ~40 to ~37 ms and
# requests from ~115 to ~128/s for ~12 % fewer tasks done meanwhile; +10 cost ingest more
# and searches gained nothing more.
PIPELINE_NICENESS = 5


class InProcessWorkflow:
    def __init__(self, deps: PipelineDeps, workers: int, niceness: int = PIPELINE_NICENESS):
        self._deps = deps
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipeline",
                                        initializer=lower_thread_priority,
                                        initargs=(niceness,))
        self._guard = threading.Lock()
        self._user_locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._started: set[tuple[str, str]] = set()  # (tenant, task id) queued or running

    def start(self, ref: TaskRef, attempt: int = 1) -> None:
        """Queue a task, unless it is queued or running already (a retried accept and the
        resume at start may both ask for it)."""
        key = (ref.tenant_id, ref.task_id)
        with self._guard:
            if key in self._started:
                return
            self._started.add(key)
        self._pool.submit(self._run_started, ref, key)

    def _run_started(self, ref: TaskRef, key: tuple[str, str]) -> Task:
        try:
            return self.run(ref)
        finally:
            with self._guard:
                self._started.discard(key)

    def run(self, ref: TaskRef) -> Task:
        with self.hold(ref.tenant_id, ref.user_id), background_work():  # a sync add's too
            return run_pipeline(self._deps, ref)

    def hold(self, tenant_id: str, user_id: str) -> threading.Lock:
        """The user's lock: while it is held no task of theirs runs (erasure holds it)."""
        with self._guard:
            return self._user_locks[(tenant_id, user_id)]

    def shutdown(self) -> None:
        """Finish what is running; tasks still queued are resumed on the next start."""
        self._pool.shutdown(wait=True, cancel_futures=True)
