"""The embedded stand-in for Step Functions: the same four steps, in order, on a small
thread pool. Tasks of one user run one at a time so dedupe sees the previous task's
memories; tasks of different users run side by side."""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from engram.models.domain import Task, TaskRef
from engram.services.pipeline import PipelineDeps, run_pipeline


class InProcessWorkflow:
    def __init__(self, deps: PipelineDeps, workers: int):
        self._deps = deps
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipeline")
        self._guard = threading.Lock()
        self._user_locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)

    def start(self, ref: TaskRef, attempt: int = 1) -> None:
        self._pool.submit(self.run, ref)

    def run(self, ref: TaskRef) -> Task:
        with self.hold(ref.tenant_id, ref.user_id):
            return run_pipeline(self._deps, ref)

    def hold(self, tenant_id: str, user_id: str) -> threading.Lock:
        """The user's lock: while it is held no task of theirs runs (erasure holds it)."""
        with self._guard:
            return self._user_locks[(tenant_id, user_id)]

    def shutdown(self) -> None:
        """Finish what is running; tasks still queued are resumed on the next start."""
        self._pool.shutdown(wait=True, cancel_futures=True)
