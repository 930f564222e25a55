"""Sending an import through the API: batches in order, a progress bar (turns, turns/s,
ETA) on the terminal, transient failures retried. Stopped and run again, it sends the
same batches: the API answers those it has already accepted with their first task."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from engram.client import EngramClient, EngramClientError
from engram.imports.sources import AddBatch, RecordBatch

RETRY_STATUSES = (409, 429, 502, 503, 504)  # 409: the same add still being accepted
ATTEMPTS = 6


class Rate(ProgressColumn):
    """Turns (or records) per second, over the last few updates."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} {self.unit}/s" if speed else f"- {self.unit}/s",
                    style="progress.data.speed")


@dataclass
class ImportReport:
    turns: int = 0  # messages sent in adds
    adds: int = 0
    conversations: set[tuple[str, str]] = field(default_factory=set)
    written: int = 0  # export records stored
    skipped: int = 0  # export records already stored as exported
    task_ids: list[str] = field(default_factory=list)


def run_import(client: EngramClient, batches: Sequence[AddBatch | RecordBatch], *,
               async_mode: bool = True, console: Console | None = None) -> ImportReport:
    console = console or Console(stderr=True)
    report = ImportReport()
    records = any(isinstance(b, RecordBatch) for b in batches)
    unit = "records" if records else "turns"
    progress = Progress(TextColumn("[bold]importing"), BarColumn(), MofNCompleteColumn(),
                        TextColumn(unit), Rate(unit), TextColumn("elapsed"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=console, refresh_per_second=8)
    with progress:
        bar = progress.add_task("import", total=sum(b.size for b in batches))
        for batch in batches:
            if isinstance(batch, RecordBatch):
                body = {"records": batch.records}
                if batch.user_id:
                    body["user_id"] = batch.user_id
                done = _retrying(lambda b=body: client.post("import/memory", b))
                report.written += len(done["written"])
                report.skipped += len(done["skipped"])
            else:
                answer = _retrying(lambda b=batch: client.add_message(
                    b.user_id, b.conversation_id, b.messages, async_mode=async_mode))
                report.turns += batch.size
                report.adds += 1
                report.conversations.add((batch.user_id, batch.conversation_id))
                report.task_ids.append(answer["task_id"])
            progress.advance(bar, batch.size)
    return report


def wait_for_tasks(client: EngramClient, task_ids: Sequence[str],
                   console: Console | None = None) -> dict[str, int]:
    """Poll until every task has completed or failed: how many ended each way."""
    console = console or Console(stderr=True)
    ended = {"completed": 0, "failed": 0}
    unique = list(dict.fromkeys(task_ids))
    progress = Progress(TextColumn("[bold]processing"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("tasks"), TimeElapsedColumn(), console=console)
    with progress:
        bar = progress.add_task("tasks", total=len(unique))
        for task_id in unique:
            status = _retrying(lambda t=task_id: client.wait(t, timeout=3600, interval=0.2))
            ended[status["status"]] = ended.get(status["status"], 0) + 1
            progress.advance(bar)
    return ended


def _retrying(call):
    delay = 0.5
    for attempt in range(ATTEMPTS):
        try:
            return call()
        except EngramClientError as exc:
            if exc.status not in RETRY_STATUSES or attempt == ATTEMPTS - 1:
                raise
        except OSError:  # connection refused or reset (requests' errors are OSErrors)
            if attempt == ATTEMPTS - 1:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 10)
    raise AssertionError("unreachable")
