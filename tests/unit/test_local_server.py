"""engram serve's scheduling without sockets: the worker pool's lanes (adds wait behind
searches and run one at a time, a long add does not hold the lane) and the lower OS
priority of the pipeline's threads."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from engram.adapters.cpu_priority import lower_thread_priority
from engram.local.server import LaneDispatcher, is_ingest
from engram.local.workflow import PIPELINE_NICENESS, InProcessWorkflow
from engram.ports import background_work, is_background


class FakeTask:
    """What waitress hands the dispatcher: a channel whose first request is next."""

    def __init__(self, name: str, path: str, log: list, hold: threading.Event | None = None,
                 method: str = "POST"):
        self.name, self.log, self.hold = name, log, hold
        self.requests = [SimpleNamespace(command=method, path=path, error=None)]
        self.done = threading.Event()

    def service(self) -> None:
        self.log.append(("start", self.name, time.monotonic()))
        if self.hold is not None:
            assert self.hold.wait(10)
        self.log.append(("end", self.name, time.monotonic()))
        self.done.set()

    def cancel(self) -> None:
        self.log.append(("cancel", self.name, time.monotonic()))


def started(log: list) -> list[str]:
    return [name for what, name, _ in log if what == "start"]


@pytest.fixture
def pool():
    made: list[LaneDispatcher] = []

    def make(threads: int, **kw) -> LaneDispatcher:
        dispatcher = LaneDispatcher(**kw)
        dispatcher.set_thread_count(threads)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.shutdown(timeout=5)


def test_which_requests_are_ingestion():
    assert is_ingest("POST", "/v1/add/message") and is_ingest("POST", "/api/v1/memories/")
    assert not is_ingest("POST", "/v1/search/memory")
    assert not is_ingest("GET", "/v1/add/message")  # not an add: the resolver's 405
    assert not is_ingest("POST", "/api/v1/memories/search")


def test_searches_go_before_queued_adds(pool):
    log: list = []
    gate = threading.Event()
    dispatcher = pool(1)
    blocker = FakeTask("blocker", "/v1/get/memory", log, gate)
    dispatcher.add_task(blocker)
    tasks = [FakeTask(name, path, log) for name, path in (
        ("add1", "/v1/add/message"), ("search1", "/v1/search/memory"),
        ("add2", "/api/v1/memories"), ("search2", "/v1/search/memory"))]
    for task in tasks:
        dispatcher.add_task(task)
    gate.set()
    assert all(t.done.wait(10) for t in tasks)
    assert started(log) == ["blocker", "search1", "search2", "add1", "add2"]


def test_one_add_runs_at_a_time_while_searches_run_beside_it(pool):
    log: list = []
    gate = threading.Event()
    dispatcher = pool(4, hold=30)
    first = FakeTask("add1", "/v1/add/message", log, gate)
    second = FakeTask("add2", "/v1/add/message", log)
    search = FakeTask("search", "/v1/search/memory", log)
    for task in (first, second, search):
        dispatcher.add_task(task)
    assert search.done.wait(10)  # a free worker takes the search at once
    time.sleep(0.3)
    assert not second.done.is_set()  # three idle workers, yet the second add waits
    gate.set()
    assert second.done.wait(10)
    assert started(log)[-1] == "add2"


def test_a_long_add_stops_holding_the_lane_after_hold_seconds(pool):
    log: list = []
    gate = threading.Event()
    dispatcher = pool(2, hold=0.3)
    long = FakeTask("long", "/v1/add/message", log, gate)
    short = FakeTask("short", "/v1/add/message", log)
    dispatcher.add_task(long)
    dispatcher.add_task(short)
    assert short.done.wait(5) and not long.done.is_set()
    began = {name: at for what, name, at in log if what == "start"}
    assert began["short"] - began["long"] >= 0.25
    gate.set()
    assert long.done.wait(5)


def test_shutdown_cancels_adds_still_queued(pool):
    log: list = []
    gate = threading.Event()
    dispatcher = pool(1)
    dispatcher.add_task(FakeTask("running", "/v1/search/memory", log, gate))
    dispatcher.add_task(FakeTask("queued-add", "/v1/add/message", log))
    threading.Timer(0.2, gate.set).start()
    dispatcher.shutdown(timeout=5)
    assert ("cancel", "queued-add") in [(w, n) for w, n, _ in log]


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="per-thread nice values are Linux's")


def nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@linux_only
def test_lowering_a_threads_priority_leaves_the_others_alone():
    main_before = nice_of_this_thread()
    seen: dict = {}

    def worker() -> None:
        before = nice_of_this_thread()
        seen["lowered"] = lower_thread_priority(3)
        seen["delta"] = nice_of_this_thread() - before
        child = threading.Thread(target=lambda: seen.update(child=nice_of_this_thread()))
        child.start()
        child.join()
        seen["mine"] = nice_of_this_thread()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["lowered"] and seen["delta"] == 3
    assert seen["child"] == seen["mine"]  # threads it starts (an embed's passes) inherit it
    assert nice_of_this_thread() == main_before


@linux_only
def test_pipeline_threads_run_at_a_lower_priority_and_as_background_work():
    workflow = InProcessWorkflow(deps=None, workers=1)  # type: ignore[arg-type]
    try:
        nice, background = workflow._pool.submit(
            lambda: (nice_of_this_thread(), is_background())).result(10)
    finally:
        workflow.shutdown()
    assert nice >= min(19, nice_of_this_thread() + PIPELINE_NICENESS)
    assert not background  # background_work() is set per task run, not per thread
    with background_work():
        assert is_background()
    assert not is_background()


def test_concurrent_requests_each_see_their_own_event():
    """Powertools keeps the event being resolved on a class attribute shared by every
    resolver in the process; two requests resolved at once must still each read their
    own body and tenant (request A is held inside its route until B has started)."""
    from aws_lambda_powertools.event_handler.api_gateway import Router

    from engram.api.auth import tenant_of
    from engram.api.resolver import RequestScopedRestResolver
    from engram.local.server import LambdaContext, proxy_event

    b_started = threading.Event()

    def factory() -> RequestScopedRestResolver:
        app = RequestScopedRestResolver()
        router = Router()

        @router.post("/echo")
        def echo() -> dict:
            body = router.current_event.json_body
            if body["who"] == "a":
                assert b_started.wait(10)
                time.sleep(0.05)  # B is inside resolve() now
            return {"who": router.current_event.json_body["who"], "tenant": tenant_of(router)}

        app.include_router(router)
        return app

    app = factory()  # one resolver, as `engram serve` runs it
    answers: dict = {}

    def call(who: str, tenant: str) -> None:
        event = proxy_event("POST", "/echo", {"Content-Type": "application/json"},
                            json.dumps({"who": who}), tenant, "127.0.0.1")
        if who == "b":
            b_started.set()
        answers[who] = json.loads(app.resolve(event, LambdaContext())["body"])

    a = threading.Thread(target=call, args=("a", "tenant-a"))
    a.start()
    time.sleep(0.1)  # A is waiting inside its route
    b = threading.Thread(target=call, args=("b", "tenant-b"))
    b.start()
    a.join(10)
    b.join(10)
    assert answers == {"a": {"who": "a", "tenant": "tenant-a"},
                       "b": {"who": "b", "tenant": "tenant-b"}}
