"""The OS scheduler: the pipeline's own threads run at a lower priority, so when a request
and a pipeline step both want a core, the kernel gives it to the request. (What runs as
background work, which CPU-heavy adapters let requests overtake, is marked with
`engram.ports.background_work`.)"""

from __future__ import annotations

import os
import sys
import threading


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

