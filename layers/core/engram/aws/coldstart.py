"""Imported first by the latency-sensitive functions (API, authorizer), before any model
is defined or library imported:

- pydantic models are built on first use instead of at import (`defer_build`), so a
  cold start builds the validators of the models its request uses, not of all ~300 the
  routes, events and Powertools define. Validation is unchanged: a deferred model builds
  itself the first time it validates, serialises or gives its schema.
- the garbage collector is paused until the first invocation has answered
  (`after_first_response`): a cold start makes ~200,000 objects that live as long as the
  process, and the collections they set off scanned them over and over (~80 ms of CPU
  for a status request, bench/coldstart.py). Reference counting still frees all but
  cyclic garbage at once (a few hundred to a few thousand objects a cold start leaves,
  kept); then the survivors are frozen out of later collections (`gc.freeze`) and
  collection resumes.
- pydantic's plugin discovery is off (PYDANTIC_DISABLE_PLUGINS): Engram uses no plugin,
  and looking for them reads every installed package's entry points at the first build.
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

BaseModel.model_config["defer_build"] = True
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")  # read at the first build
gc.disable()


def resume_collection() -> None:
    """The cold start is over: what it made stays out of later collections."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def after_first_response(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps a handler (outermost): collection resumes once its first invocation has
    answered, whatever the answer."""

    @functools.wraps(handler)
    def handle(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            resume_collection()

    return handle
