"""Lambda SnapStart (template parameter SnapStart=PublishedVersions): Lambda runs a
function's init once, when a version is published, snapshots the microVM, and starts
each cold environment from that snapshot. Whatever init loaded is then free, so under
SnapStart the API and the authorizer prime, before the snapshot, what their first
requests would otherwise load on demand (coldstart.py, observability.py):

- the runtime: settings, every AWS client, the services and, for the API, the routes and
  the OpenAPI document (which builds every route's validators);
- every pydantic model still unbuilt (coldstart.py defers them to first use);
- the embedding model, with one pass through it (EmbeddingProvider=onnx);
- the modules requests import on first use (`api_modules`);
- the tracer, which otherwise loads after the first response;
- then one garbage collection, and the survivors frozen out of later ones.

Priming makes no AWS call: a snapshot must hold neither connections nor one moment's
answers. (Making a client may read the function's credentials from Lambda's local
endpoint: under SnapStart they are refreshable, and botocore renews them once expired.)
After a restore `random` is reseeded, since every environment restored from one snapshot
would otherwise draw the same numbers (uuid4, `secrets` and the API keys read the
operating system's entropy and are unaffected).

An ordinary cold start (AWS_LAMBDA_INITIALIZATION_TYPE on-demand, or outside Lambda)
registers nothing and primes nothing: priming would only lengthen it.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import pkgutil
import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from engram.aws.coldstart import resume_collection

log = logging.getLogger(__name__)
Handler = TypeVar("Handler", bound=Callable[..., Any])

# What requests import on first use (the import tests keep them out of an ordinary cold
# start): every module of the packages the routes run (their rules, the dialects' routes,
# the pipeline of a sync add), and the libraries a search or an add loads.
PRIMED_PACKAGES = ("engram.api", "engram.services", "engram.retrieval", "engram.extraction",
                   "engram.pipeline", "engram.parsing", "engram.models")
FIRST_USE_MODULES = (
    "numpy",
    "engram.adapters.opensearch_index",
    "engram.aws.steps",
    "aws_lambda_powertools.utilities.idempotency",
)


def api_modules() -> list[str]:
    """The modules an API request may import on first use, for priming."""
    names = list(FIRST_USE_MODULES)
    for package in PRIMED_PACKAGES:
        path = importlib.import_module(package).__path__
        names += [info.name for info in pkgutil.walk_packages(path, f"{package}.")]
    return names


def snapshot_ahead() -> bool:
    """This init is the one Lambda snapshots (SnapStart), not a cold start's."""
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"


def primed_by(prime: Callable[[], None]) -> Callable[[Handler], Handler]:
    """Decorates a function's handler, unchanged: under SnapStart, `prime` runs before the
    snapshot and `reseed` after each restore (snapshot_restore_py, which Lambda's Python
    runtimes include); otherwise nothing is registered."""

    def register(handler: Handler) -> Handler:
        if snapshot_ahead():
            from snapshot_restore_py import register_after_restore, register_before_snapshot

            register_before_snapshot(prime)
            register_after_restore(reseed)
        return handler

    return register


def reseed() -> None:
    """A restored environment draws its own random numbers, not the snapshot's."""
    random.seed()


def build_deferred_models() -> int:
    """Builds every pydantic model not built yet (defined but deferred: coldstart.py);
    returns how many were built. One whose types cannot be resolved yet is left to build
    on first use, as without SnapStart."""
    built, seen, pending = 0, set(), [BaseModel]
    while pending:
        for model in pending.pop().__subclasses__():
            if model in seen:
                continue
            seen.add(model)
            pending.append(model)
            if not model.__pydantic_complete__ and model.model_rebuild(raise_errors=False):
                built += 1
    return built


def finish_priming(modules: Sequence[str] = ()) -> None:
    """What both functions prime after their own objects: `modules`, the models, the
    tracer, and a collection."""
    from engram.aws.observability import tracer

    for module in modules:
        importlib.import_module(module)
    built = build_deferred_models()
    tracer.load_now()
    gc.collect()
    resume_collection()
    log.info("primed for the snapshot", extra={"models_built": built})


def prime_api() -> None:
    from engram.aws.runtime import aws_runtime, create_clients

    runtime = aws_runtime()
    create_clients(runtime.clients)
    runtime.api.get_openapi_json_schema()  # every route's validators
    warm_up = getattr(runtime.ports.embedder, "warm_up", None)
    if warm_up is not None:  # ONNX: load the model and run it once; no remote call
        warm_up()
    finish_priming(api_modules())


def prime_authorizer() -> None:
    from engram.aws.runtime import api_key_service

    api_key_service()
    finish_priming()
