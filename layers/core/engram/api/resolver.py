"""The REST resolver, with each request's state kept to its own thread.

Powertools' APIGatewayRestResolver keeps the request being resolved in class attributes
of BaseRouter (`BaseRouter.current_event`, shared by every resolver in the process) and
its per-request `context` on the instance. In a Lambda one request runs at a time, but
`engram serve` resolves many at once: one request's routes then read another's event (its
body, its tenant). Here the event, Lambda context and request context live in a
ContextVar, the way Powertools' own HttpResolverLocal does for ASGI servers, so one
resolver serves concurrent requests, each seeing only its own."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent


@dataclass
class _RequestState:
    event: BaseProxyEvent | None = None
    lambda_context: Any = None
    context: dict = field(default_factory=dict)
    processed_stack_frames: list[str] = field(default_factory=list)


class RequestScopedRestResolver(APIGatewayRestResolver):
    def __init__(self, **kwargs: Any):
        # routers' context merged at start-up; each request starts from a copy
        self._startup = _RequestState()
        self._request: ContextVar[_RequestState | None] = ContextVar("engram_request",
                                                                     default=None)
        super().__init__(**kwargs)

    @property
    def _state(self) -> _RequestState:
        return self._request.get() or self._startup

    @property
    def current_event(self) -> BaseProxyEvent:  # type: ignore[override]
        return self._state.event  # type: ignore[return-value]

    @current_event.setter
    def current_event(self, value: BaseProxyEvent) -> None:
        self._state.event = value

    @property
    def lambda_context(self) -> Any:  # type: ignore[override]
        return self._state.lambda_context

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._state.lambda_context = value

    @property
    def context(self) -> dict:  # type: ignore[override]
        return self._state.context

    @context.setter
    def context(self, value: dict) -> None:
        self._state.context = value

    @property
    def processed_stack_frames(self) -> list[str]:  # type: ignore[override]
        return self._state.processed_stack_frames

    @processed_stack_frames.setter
    def processed_stack_frames(self, value: list[str]) -> None:
        self._state.processed_stack_frames = value

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        raw = event.raw_event if isinstance(event, BaseProxyEvent) else event
        state = _RequestState(event=self._to_proxy_event(raw), lambda_context=context,
                              context=dict(self._startup.context))
        token = self._request.set(state)
        try:
            return super().resolve(raw, context)
        finally:
            self._request.reset(token)
