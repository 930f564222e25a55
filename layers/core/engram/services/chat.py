"""chat: answer a user's query with an LLM, their memories (found by the same search as
search/memory) in the prompt, the answer streamed as the model writes it; the exchange
can be added as messages afterwards like any add. Without a chat model configured, a 503
that names the setting."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from engram.errors import (
    BadGateway,
    BadRequest,
    LlmUnavailable,
    PermanentError,
    ServiceUnavailable,
)
from engram.models.domain import Role, now_ms
from engram.models.requests import AcceptResult, AddSpec, MessageDraft
from engram.ports import ChatModel
from engram.services.ingest import IngestService

NO_MODEL = ("chat needs an LLM, and none is configured: set ENGRAM_LLM_MODEL (with "
            "ENGRAM_LLM_BASE_URL and ENGRAM_LLM_API_KEY for an OpenAI-compatible endpoint "
            "other than OpenAI's) for engram serve, or the LlmModel parameter of the SAM "
            "template on AWS")
DEFAULT_SYSTEM_PROMPT = ("You are a helpful assistant with a memory of the user. Use what "
                         "you remember when it helps answer; do not mention memories that "
                         "do not.")


@dataclass
class ChatContext:
    """What the answer may draw on, most relevant first."""

    facts: list[str] = field(default_factory=list)
    preferences: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)


def prompt(query: str, context: ChatContext, system_prompt: str | None = None,
           now: int | None = None) -> list[dict[str, str]]:
    """The chat messages for the model: the system prompt with what is remembered and the
    date, then the user's query."""
    parts = [system_prompt or DEFAULT_SYSTEM_PROMPT]
    today = datetime.fromtimestamp((now or now_ms()) / 1000, UTC).strftime("%Y-%m-%d")
    parts.append(f"Today is {today} (UTC).")
    for title, lines in (("What you know about the user's profile", context.profile),
                         ("What you remember about the user, most relevant first",
                          context.facts),
                         ("The user's preferences", context.preferences)):
        if lines:
            parts.append(f"{title}:\n" + "\n".join(f"- {line}" for line in lines))
    return [{"role": "system", "content": "\n\n".join(parts)},
            {"role": "user", "content": query}]


def _classified(pieces: Iterator[str]) -> Iterator[str]:
    """The model's errors as API errors: not answering is a 503, a refusal a 502."""
    try:
        yield from pieces
    except LlmUnavailable as exc:
        raise ServiceUnavailable(f"the LLM did not answer: {exc.message}") from None
    except PermanentError as exc:
        raise BadGateway(exc.message) from None


@dataclass
class ChatService:
    model: ChatModel | None
    ingest: IngestService

    def available(self) -> ChatModel:
        if self.model is None:
            raise BadRequest(NO_MODEL)
        return self.model

    def answer(self, messages: Sequence[dict[str, str]], *, max_tokens: int,
               temperature: float | None, top_p: float | None) -> Iterator[str]:
        """The answer's pieces. The first is awaited here, so that a model that is down
        or refuses is an error before anything is sent; a failure after it ends the
        iteration with the error."""
        model = self.available()
        pieces = _classified(model.stream_text(messages, max_tokens=max_tokens,
                                               temperature=temperature, top_p=top_p))
        first = next(pieces, None)
        return itertools.chain([] if first is None else [first], pieces)

    def record(self, tenant_id: str, spec: AddSpec, query: str, answer: str) -> AcceptResult:
        """The exchange, added to the conversation as any add (its task extracts it)."""
        return self.ingest.accept(tenant_id, spec, [
            MessageDraft(role=Role.user, text=query),
            MessageDraft(role=Role.assistant, text=answer)])
