"""AcceptOnce on Powertools idempotency: the same rule on both profiles, its records in
DynamoDB on AWS (DynamoDBPersistenceLayer) and in SQLite locally (SqliteIdempotencyLayer).

The record's key is (tenant, idempotency key); its payload hash is the request's
fingerprint, so the same key sent with another request is told apart from a replay."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from engram.errors import Conflict, Unprocessable
from engram.models.requests import AcceptResult

if TYPE_CHECKING:
    # Powertools' idempotency package (~0.1 s of imports: boto3, its parser models) is
    # imported by the first accept, not at a Lambda's cold start.
    from aws_lambda_powertools.utilities.idempotency import (
        BasePersistenceLayer,
        IdempotencyConfig,
    )

REPLAY_WINDOW_SECONDS = 24 * 3600


class AcceptClaim(BaseModel):
    tenant_id: str
    key: str
    fingerprint: str


def _accept(claim: AcceptClaim, accept: Callable[[], AcceptResult]) -> AcceptResult:
    return accept()


class FixedTimeLeft:
    """A Lambda context's one method Powertools reads, for a process with no deadline of
    its own (`engram serve`): an accept still in progress after this long is taken to
    have died, and its key may be claimed again."""

    def __init__(self, millis: int):
        self._millis = millis

    def get_remaining_time_in_millis(self) -> int:
        return self._millis


class PowertoolsAcceptOnce:
    """Implements AcceptOnce. One persistence layer per instance (Powertools configures
    a layer once, from the first config it sees), made on the first accept: a Lambda
    that never accepts an add never creates its client."""

    def __init__(self, make_store: Callable[[], BasePersistenceLayer],
                 expires_after_seconds: int = REPLAY_WINDOW_SECONDS):
        self._expires_after_seconds = expires_after_seconds
        self._config: IdempotencyConfig | None = None
        self._context: Any = None
        self._make_store = make_store
        self._store: BasePersistenceLayer | None = None
        self._run: Callable[..., AcceptResult] | None = None
        self._lock = threading.Lock()

    def _runner(self) -> Callable[..., AcceptResult]:
        with self._lock:
            if self._run is None:
                from aws_lambda_powertools.utilities.idempotency import (
                    IdempotencyConfig,
                    idempotent_function,
                )
                from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import (
                    PydanticSerializer,
                )

                config = IdempotencyConfig(
                    event_key_jmespath="[tenant_id, key]",
                    payload_validation_jmespath="fingerprint", raise_on_no_idempotency_key=True,
                    expires_after_seconds=self._expires_after_seconds)
                if self._context is not None:
                    config.register_lambda_context(self._context)
                self._store = self._make_store()
                self._run = idempotent_function(
                    _accept, data_keyword_argument="claim", persistence_store=self._store,
                    config=config, output_serializer=PydanticSerializer(AcceptResult))
                self._config = config
            return self._run

    def forget(self, tenant_id: str, key: str, fingerprint: str) -> None:
        if self._store is None or not self._store.configured:
            return  # nothing was recorded by this process's layer yet
        claim = AcceptClaim(tenant_id=tenant_id, key=key, fingerprint=fingerprint)
        self._store.delete_record(claim.model_dump(), RuntimeError("its task is gone"))

    def register_lambda_context(self, context: Any) -> None:
        """Lets an interrupted accept's claim expire with the invocation's time left."""
        self._context = context
        if self._config is not None:
            self._config.register_lambda_context(context)

    def run(self, tenant_id: str, key: str, fingerprint: str,
            accept: Callable[[], AcceptResult]) -> AcceptResult:
        claim = AcceptClaim(tenant_id=tenant_id, key=key, fingerprint=fingerprint)
        run = self._runner()
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        try:
            return run(claim=claim, accept=accept)
        except IdempotencyValidationError:
            raise Unprocessable(
                "Idempotency-Key: this key was used for a different request in the last "
                f"{self._expires_after_seconds // 3600} h; send a new key for a new "
                "request") from None
        except IdempotencyAlreadyInProgressError:
            raise Conflict("the same request (its Idempotency-Key, or its message ids and "
                           "content) is still being accepted; retry in a moment") from None
