"""Streamed response bodies (chat's Server-Sent Events) through the REST resolver, which
only knows whole bodies.

A server that can stream opens a slot around `resolve` (`stream_slot`); a route with a
stream to send offers it (`offer_stream`) and answers with an empty body, and the server
sends the stream's chunks as they come. Where no slot is open (API Gateway REST on
Lambda, which returns one response body, or a test calling the resolver directly) the
offer is refused and the route joins the whole stream into its body: the same events,
all at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class StreamSlot:
    chunks: Iterator[str] | None = None


_slot: ContextVar[StreamSlot | None] = ContextVar("engram_stream_slot", default=None)


@contextmanager
def stream_slot() -> Iterator[StreamSlot]:
    slot = StreamSlot()
    token = _slot.set(slot)
    try:
        yield slot
    finally:
        _slot.reset(token)


def offer_stream(chunks: Iterator[str]) -> bool:
    """True when the server will send `chunks` itself; False: send them in the body."""
    slot = _slot.get()
    if slot is None:
        return False
    slot.chunks = chunks
    return True
