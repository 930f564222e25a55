"""The embedded stand-in for Step Functions: the same four steps, in order, on a small
thread pool. Tasks of one user run one at a time so dedupe sees the previous task's
memories; tasks of different users run side by side."""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from engram.adapters.cpu_priority import background_work, lower_thread_priority
from engram.models.domain import Task, TaskRef
from engram.services.pipeline import PipelineDeps, run_pipeline

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

    def start(self, ref: TaskRef, attempt: int = 1) -> None:
        self._pool.submit(self.run, ref)

    def run(self, ref: TaskRef) -> Task:
        with self._guard:
            lock = self._user_locks[(ref.tenant_id, ref.user_id)]
        with lock, background_work():  # also a sync add's, run in the request's thread
            return run_pipeline(self._deps, ref)

    def shutdown(self) -> None:
        """Finish what is running; tasks still queued are resumed on the next start."""
        self._pool.shutdown(wait=True, cancel_futures=True)
