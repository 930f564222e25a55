"""The one Powertools logger, tracer and metrics every Lambda handler uses.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (template.yaml sets both; "engram" and "Engram" otherwise,
e.g. under `sam local invoke` or in tests). The core logs with the standard
`logging` module; its `engram.*` loggers are given this logger's JSON formatter, so a
handler's and the services' lines look alike and carry the same correlation keys.
"""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME", "engram")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "Engram"), service=SERVICE)

logging.getLogger("engram")  # register the parent now: its children are made on import
copy_config_to_registered_loggers(source_logger=logger, include={"engram"})


def count(name: str, value: int = 1) -> None:
    """One business counter (TasksAccepted, InboxFilesRejected, ...) in the EMF output."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
