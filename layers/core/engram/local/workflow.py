"""The embedded stand-in for Step Functions: the same four steps, in order, on a small
thread pool. Tasks of one user run one at a time and in the order they were started, so
dedupe sees the previous task's memories (an async add gives what a sync add gives);
tasks of different users run side by side."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor

from engram.adapters.cpu_priority import lower_thread_priority
from engram.errors import TaskErased
from engram.models.domain import Task, TaskRef
from engram.pipeline.steps import PipelineDeps, run_pipeline
from engram.ports import background_work

log = logging.getLogger(__name__)

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
        # Per user, their started tasks in order; the first is queued on the pool or running.
        self._waiting: dict[tuple[str, str], deque[TaskRef]] = {}

    def start(self, ref: TaskRef, attempt: int = 1) -> None:
        """Queue a task, unless it is queued or running already (a retried accept and the
        resume at start may both ask for it). A user's tasks go to the pool one at a time:
        given to it at once, a worker would wait on the user's lock for the task before,
        and the next free worker could take a later one first."""
        user = (ref.tenant_id, ref.user_id)
        with self._guard:
            if (ref.tenant_id, ref.task_id) in self._started:
                return
            self._started.add((ref.tenant_id, ref.task_id))
            waiting = self._waiting.setdefault(user, deque())
            waiting.append(ref)
            if len(waiting) > 1:
                return  # queued behind the user's earlier task
        self._pool.submit(self._run_next, user)

    def _run_next(self, user: tuple[str, str]) -> None:
        """The user's next task; the one after goes to the back of the pool's queue, so
        other users' tasks are not held up by one user's many."""
        with self._guard:
            ref = self._waiting[user][0]
        try:
            self.run(ref)
        except TaskErased:
            pass  # logged by run_pipeline; the user's next tasks find themselves erased too
        except Exception:  # noqa: BLE001 - the user's next tasks must still run
            log.exception("task %s stopped", ref.task_id)
        finally:
            with self._guard:
                self._started.discard((ref.tenant_id, ref.task_id))
                waiting = self._waiting[user]
                waiting.popleft()
                more = bool(waiting)
                if not more:
                    del self._waiting[user]
        if more:
            try:
                self._pool.submit(self._run_next, user)
            except RuntimeError:  # shutting down: the rest is resumed on the next start
                log.info("pipeline stopped before %s's next task", user[1])

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
