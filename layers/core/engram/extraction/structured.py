"""Ask an LLM for JSON that a pydantic model validates: the model's JSON schema goes with
the request, the reply is validated, an invalid reply is sent back once with the error to
repair, and a second invalid reply raises InvalidReply (the caller falls back)."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from engram.errors import EngramError
from engram.models.domain import TokenUsage
from engram.ports import LanguageModel

M = TypeVar("M", bound=BaseModel)

REPAIR = ("That reply does not follow the JSON schema: {error}\n"
          "Answer again with only the corrected JSON object.")
ERROR_CHARS = 600  # enough of pydantic's message to say what is wrong


class InvalidReply(EngramError):
    """The reply did not validate, even after one repair. `usage` counts both calls."""

    def __init__(self, message: str, usage: TokenUsage):
        super().__init__(message)
        self.usage = usage


def ask(llm: LanguageModel, system: str, user: str, schema: type[M]) -> tuple[M, TokenUsage]:
    """The validated reply and the tokens spent on it (LlmUnavailable passes through)."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    json_schema = schema.model_json_schema()
    usage = TokenUsage()
    error = ""
    for attempt in range(2):
        reply = llm.complete_json(messages, schema.__name__, json_schema)
        usage += reply.usage
        try:
            return schema.model_validate_json(_unfenced(reply.text)), usage
        except ValidationError as exc:
            error = _short(exc)
        if attempt == 0:
            messages += [{"role": "assistant", "content": reply.text},
                         {"role": "user", "content": REPAIR.format(error=error)}]
    raise InvalidReply(f"the LLM reply was not valid {schema.__name__} JSON after a repair "
                       f"({error})", usage)


def _unfenced(text: str) -> str:
    """Some servers wrap JSON in a ```json fence even when asked for JSON only."""
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text


def _short(exc: ValidationError) -> str:
    return " ".join(str(exc).split())[:ERROR_CHARS]
