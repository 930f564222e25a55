"""A LanguageModel that answers from a script, for unit tests of the services that use
one (the wire protocol itself is tested against tests/fakes/openai_chat.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from engram.models.domain import TokenUsage
from engram.ports import ChatReply

Reply = str | dict | BaseException | Callable[[Sequence[dict[str, str]]], str | dict]


class ScriptedModel:
    """Each call takes the next reply: a string (returned as is), a dict (as JSON), an
    exception (raised) or a function of the messages. `calls` records what was asked."""

    model = "scripted"

    def __init__(self, *replies: Reply, prompt_tokens: int = 100, completion_tokens: int = 20):
        self.replies = list(replies)
        self.calls: list[tuple[list[dict[str, str]], str, dict]] = []
        self.usage = TokenUsage(prompt_tokens=prompt_tokens,
                                completion_tokens=completion_tokens, calls=1)

    def complete_json(self, messages: Sequence[dict[str, str]], schema_name: str,
                      schema: dict) -> ChatReply:
        self.calls.append((list(messages), schema_name, schema))
        if not self.replies:
            raise AssertionError(f"unscripted LLM call #{len(self.calls)} ({schema_name})")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            reply = reply(messages)
        text = reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)
        return ChatReply(text, self.usage)
