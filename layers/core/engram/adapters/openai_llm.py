"""LanguageModel port on an OpenAI-compatible `/chat/completions` endpoint, through the
`openai` client. The same wire protocol is spoken by OpenAI, Bedrock gateways and
Bedrock's own OpenAI-compatible endpoint, vLLM and Ollama, so only the base URL, key and
model name change between them.

Retries are the client's: it backs off on 408/409/429/5xx, timeouts and connection errors
(honouring Retry-After) up to `max_retries` times, each attempt bounded by `timeout`.
What still fails afterwards is classified here: the endpoint being unavailable is
retryable (LlmUnavailable), a refused request is permanent (PermanentError)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import openai

from engram.errors import LlmUnavailable, PermanentError
from engram.models.domain import TokenUsage
from engram.ports import ChatReply

JSON_OBJECT_INSTRUCTION = "Reply with one JSON object following this JSON schema: {schema}"
RETRYABLE_STATUSES = {408, 409, 429}  # and every 5xx: the endpoint may answer later
AUTH_STATUSES = {401, 403}
SERVER_MESSAGE_CHARS = 160  # enough to say what was refused; error bodies can echo input
KEY_LIKE = re.compile(r"\b(?:sk|key)-\S+")  # masked keys, as OpenAI's 401 message shows


def llm_client(base_url: str | None, api_key: str, timeout: float, max_retries: int) -> Any:
    """The client a chat model uses: `timeout` seconds per attempt, `max_retries` retries
    with the client's backoff. No key (a private endpoint without auth) sends a
    placeholder: the client insists on one."""
    return openai.OpenAI(base_url=base_url or None, api_key=api_key or "none",
                         timeout=timeout, max_retries=max_retries)


class OpenAIChatModel:
    """`json_mode`: "json_schema" sends the schema as the response_format (OpenAI, vLLM,
    Ollama); "json_object" is for servers without json_schema support: it asks for any
    JSON object and puts the schema in the system message instead."""

    def __init__(self, client: Any, model: str,
                 json_mode: Literal["json_schema", "json_object"] = "json_schema",
                 max_tokens: int = 4096):
        self._client = client
        self.model = model
        self.json_mode = json_mode
        self.max_tokens = max_tokens

    def complete_json(self, messages: Sequence[dict[str, str]], schema_name: str,
                      schema: dict) -> ChatReply:
        if self.json_mode == "json_schema":
            # strict False: pydantic schemas with defaults are not strict-mode schemas, and
            # vLLM/Ollama accept it; the caller validates the reply anyway.
            response_format: dict = {"type": "json_schema", "json_schema": {
                "name": schema_name, "schema": schema, "strict": False}}
        else:
            response_format = {"type": "json_object"}
            messages = _with_schema_instruction(messages, schema)
        with self._errors():
            response = self._client.chat.completions.create(
                model=self.model, messages=list(messages), temperature=0,
                max_tokens=self.max_tokens, response_format=response_format)
        choices = response.choices or []
        text = (choices[0].message.content or "") if choices else ""
        usage = response.usage
        return ChatReply(text, TokenUsage(
            prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
            completion_tokens=(usage.completion_tokens or 0) if usage else 0, calls=1))

    def stream_text(self, messages: Sequence[dict[str, str]], *, max_tokens: int,
                    temperature: float | None, top_p: float | None) -> Iterator[str]:
        """A plain-text answer (chat), streamed: each content delta as it arrives."""
        sampling = {name: value for name, value in
                    (("temperature", temperature), ("top_p", top_p)) if value is not None}
        with self._errors():
            stream = self._client.chat.completions.create(
                model=self.model, messages=list(messages), max_tokens=max_tokens,
                stream=True, **sampling)
            for chunk in stream:
                choices = chunk.choices or []
                delta = choices[0].delta if choices else None
                if delta is not None and delta.content:
                    yield delta.content

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The client's failures classified: unavailable (retryable) or refused."""
        try:
            yield
        except openai.APITimeoutError as exc:  # before APIConnectionError: a subclass of it
            raise LlmUnavailable(f"the LLM endpoint timed out ({self._timeout()} s)") from exc
        except openai.APIConnectionError as exc:
            raise LlmUnavailable("the LLM endpoint could not be reached") from exc
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from exc
        except openai.APIError as exc:
            raise LlmUnavailable(f"the LLM endpoint failed: {type(exc).__name__}") from exc

    def _status_error(self, exc: openai.APIStatusError) -> Exception:
        status = exc.status_code
        if status in RETRYABLE_STATUSES or status >= 500:
            return LlmUnavailable(f"the LLM endpoint answered HTTP {status}")
        if status in AUTH_STATUSES:
            # An auth error's message is about the key (OpenAI's quotes part of it).
            detail = "check the API key"
        else:
            detail = self._server_message(exc)
        return PermanentError(f"the LLM endpoint refused the request: HTTP {status}"
                              + (f" ({detail})" if detail else ""))

    def _server_message(self, exc: openai.APIStatusError) -> str:
        body = exc.body
        message = body.get("message") if isinstance(body, dict) else body
        if not isinstance(message, str):
            return ""
        key = getattr(self._client, "api_key", "") or ""
        if len(key) >= 8:
            message = message.replace(key, "[key]")
        message = KEY_LIKE.sub("[key]", " ".join(message.split()))
        if len(message) > SERVER_MESSAGE_CHARS:
            message = message[:SERVER_MESSAGE_CHARS].rstrip() + "…"
        return message

    def _timeout(self) -> str:
        timeout = getattr(self._client, "timeout", None)
        seconds = getattr(timeout, "read", timeout)  # a float, or an httpx Timeout
        return f"{seconds:g}" if isinstance(seconds, int | float) else "?"


def _with_schema_instruction(messages: Sequence[dict[str, str]],
                             schema: dict) -> list[dict[str, str]]:
    """The messages with the schema appended to the first system message (one is put
    first when there is none). The caller's list is left as it was."""
    instruction = JSON_OBJECT_INSTRUCTION.format(schema=json.dumps(schema, ensure_ascii=False))
    out = [dict(m) for m in messages]
    for message in out:
        if message.get("role") == "system":
            message["content"] = f"{message.get('content') or ''}\n\n{instruction}".lstrip()
            return out
    return [{"role": "system", "content": instruction}, *out]
