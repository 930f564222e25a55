"""Background work yields the CPU to requests. The ingest pipeline marks what it runs as
background (`background_work()`); CPU-heavy adapters (the embedder) let foreground work,
a search's query, go first; and the pipeline's own threads run at a lower OS priority, so
when a request and a pipeline step both want a core, the kernel gives it to the request."""

from __future__ import annotations

import contextvars
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_background = contextvars.ContextVar("engram_background_work", default=False)


def is_background() -> bool:
    return _background.get()


@contextmanager
def background_work() -> Iterator[None]:
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


def lower_thread_priority(niceness: int) -> bool:
    """Raise the calling thread's nice value by `niceness` (threads it starts inherit it).
    Linux only: there a nice value belongs to the thread; elsewhere setpriority would
    lower the whole process, requests included, so nothing is done. True if lowered."""
    if not sys.platform.startswith("linux") or niceness <= 0:
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
    except OSError:
        return False
    return True

