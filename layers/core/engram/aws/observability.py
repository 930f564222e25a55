"""The one Powertools logger, tracer and metrics every Lambda handler uses.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (template.yaml sets both; "engram" and "Engram" otherwise,
e.g. under `sam local invoke` or in tests). The core logs with the standard
`logging` module; its `engram.*` loggers are given this logger's JSON formatter, so a
handler's and the services' lines look alike and carry the same correlation keys.

The tracer is loaded after the first invocation has answered (LazyTracer): the X-Ray
SDK and its botocore patch cost ~0.07 s of CPU, a quarter of the API function's budget.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME", "engram")
# Only the AWS SDK's calls get subsegments (Powertools would patch every library X-Ray
# knows, importing each: httpx, sqlite3, ... ~0.1 s more); OpenSearch's show as time in
# the handler's subsegment.
TRACED_MODULES = ("botocore",)


def tracing_enabled() -> bool:
    """As Powertools decides: in Lambda (LAMBDA_TASK_ROOT), not under SAM local, not
    turned off by POWERTOOLS_TRACE_DISABLED."""
    disabled = os.getenv("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("1", "true", "yes",
                                                                          "on", "y")
    return (bool(os.getenv("LAMBDA_TASK_ROOT")) and not os.getenv("AWS_SAM_LOCAL")
            and not disabled)


class LazyTracer:
    """Powertools' Tracer, made in a background thread that the first invocation starts
    once it has answered: the X-Ray SDK's import (~0.07 s of CPU) would otherwise share
    the interpreter with the cold start's own work (the GIL), on a function that may
    have well under one vCPU. The first invocation is not traced (Lambda's own segments
    cover it, Tracing: Active); later ones are from the first that finds the tracer
    ready (the thread runs while the environment waits for, or serves, the next event).
    With tracing off (outside Lambda) the X-Ray SDK is never imported."""

    def __init__(self, service: str, enabled: bool | None = None):
        self._service = service
        self._tracer: Any = None
        self.ready = threading.Event()
        self._enabled = tracing_enabled() if enabled is None else enabled
        self._started = threading.Lock()
        if not self._enabled:
            self.ready.set()

    def start(self) -> None:
        """Load the tracer in the background (once; nothing with tracing off)."""
        if self._enabled and self._started.acquire(blocking=False):
            threading.Thread(target=self._load, name="tracer-load", daemon=True).start()

    def load_now(self) -> None:
        """Load the tracer in this thread (SnapStart's priming, before the snapshot: no
        thread may be left running into it); nothing with tracing off or once started."""
        if self._enabled and self._started.acquire(blocking=False):
            self._load()

    def _load(self) -> None:
        try:
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer(service=self._service, auto_patch=False)
            self._tracer.patch(list(TRACED_MODULES))
        except Exception:  # noqa: BLE001 - tracing must never take a request down
            logging.getLogger("engram.tracing").exception("tracer not loaded")
        finally:
            self.ready.set()

    @property
    def loaded(self) -> Any:
        """The Powertools Tracer once loaded (None before, and with tracing off)."""
        return self._tracer

    def capture_lambda_handler(self, handler: Callable[..., Any] | None = None, *,
                               capture_response: bool = True,
                               capture_error: bool = True) -> Any:
        if handler is None:
            return functools.partial(self.capture_lambda_handler,
                                     capture_response=capture_response,
                                     capture_error=capture_error)
        traced: Callable[..., Any] | None = None

        @functools.wraps(handler)
        def decorate(event: Any, context: Any, **kwargs: Any) -> Any:
            nonlocal traced
            if self._tracer is None:
                try:
                    return handler(event, context, **kwargs)
                finally:
                    self.start()
            if traced is None:
                traced = self._tracer.capture_lambda_handler(
                    handler, capture_response=capture_response, capture_error=capture_error)
            return traced(event, context, **kwargs)

        return decorate


logger = Logger(service=SERVICE)
tracer = LazyTracer(SERVICE)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "Engram"), service=SERVICE)

logging.getLogger("engram")  # register the parent now: its children are made on import
copy_config_to_registered_loggers(source_logger=logger, include={"engram"})


def count(name: str, value: int = 1) -> None:
    """One business counter (TasksAccepted, InboxFilesRejected, ...) in the EMF output."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
