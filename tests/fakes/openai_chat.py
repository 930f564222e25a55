"""A local HTTP server speaking OpenAI's chat-completions wire protocol (POST
/v1/chat/completions, and its `stream: true` Server-Sent Events), answering from a
script. No LLM can run in the tests, yet the real `openai` client (its retries, timeouts,
error classes) must be what the LLM adapter is tested through; this gives it a server to
talk to. Requests are checked as the real API checks them, so a malformed one gets the
same 400 and error body."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Responder = Callable[[dict], str | dict]
SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # the real API's rule for json_schema.name
ROLES = {"system", "developer", "user", "assistant", "tool"}
ERRORS = {  # status → (message, type, code), worded as OpenAI words them
    401: ("Incorrect API key provided: {key}.", "invalid_request_error", "invalid_api_key"),
    404: ("The model does not exist or you do not have access to it.",
          "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
}


class ScriptedChatServer:
    """Each request takes the next scripted step: `reply`, `fail` or `stall`. With the
    script empty, `responder(body)` answers; with neither, the request fails with 500 so
    an unscripted call shows up in the test."""

    def __init__(self, responder: Responder | None = None):
        self.responder = responder
        self.requests: list[dict] = []  # {"path", "headers" (lower-case names), "body"}
        self._script: deque[tuple[str, object]] = deque()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body, headers = server._answer(self.path, dict(self.headers), raw)
                asked = server.requests[-1]["body"] if server.requests else None
                if status == 200 and isinstance(asked, dict) and asked.get("stream"):
                    self._stream(body)
                    return
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up on a stalled request

            def _stream(self, completion: dict) -> None:
                """`stream: true`: the reply as chat.completion.chunk events, a few words
                each, then `data: [DONE]` (the connection closes after it, HTTP/1.0)."""
                content = completion["choices"][0]["message"]["content"]
                words = re.findall(r"\S+\s*", content) or [content]
                pieces = ["".join(words[i:i + 3])
                          for i in range(0, len(words), 3)]
                base = {"id": completion["id"], "object": "chat.completion.chunk",
                        "created": completion["created"], "model": completion["model"]}
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for i, piece in enumerate(pieces):
                        delta = {"role": "assistant", "content": piece} if i == 0 \
                            else {"content": piece}
                        chunk = {**base, "choices": [{"index": 0, "delta": delta,
                                                      "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        if server.stream_delay:
                            time.sleep(server.stream_delay)
                    done = {**base, "choices": [{"index": 0, "delta": {},
                                                 "finish_reason": "stop"}]}
                    self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
                except OSError:
                    pass  # the client went away

            def log_message(self, *args) -> None:
                pass

        self.stream_delay = 0.0  # seconds between streamed chunks
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: close() waits one poll for the loop to stop.
        threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def reply(self, content: str | dict) -> None:
        self._script.append(("reply", content))

    def fail(self, status: int, times: int = 1) -> None:
        self._script.extend([("fail", status)] * times)

    def stall(self, seconds: float) -> None:
        self._script.append(("stall", seconds))

    def _answer(self, path: str, headers: dict, raw: bytes) -> tuple[int, dict, dict]:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        headers = {name.lower(): value for name, value in headers.items()}
        self.requests.append({"path": path, "headers": headers, "body": body})
        if path not in ("/v1/chat/completions", "/chat/completions"):
            return 404, error(f"Invalid URL (POST {path})", code="unknown_url"), {}
        problem = request_problem(body)
        if problem:
            return 400, error(problem[1], param=problem[0]), {}
        with self._lock:
            step = self._script.popleft() if self._script else None
        if step is None:
            if self.responder is None:
                return 500, error("ScriptedChatServer: the script is empty", "server_error"), {}
            step = ("reply", self.responder(body))
        kind, value = step
        if kind == "stall":
            self._closed.wait(value)  # close() cuts a stall short
            return 500, error("stalled request", "server_error"), {}
        if kind == "fail":
            return value, status_error(value, headers.get("authorization", "")), (
                # The client ignores a zero delay (it backs off ~0.5 s instead): 1 ms it
                # honours, so a retry comes at once.
                {"Retry-After": "0", "retry-after-ms": "1"} if value == 429 or value >= 500
                else {})
        content = value if isinstance(value, str) else json.dumps(value)
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
            "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": content}}],
            "usage": usage(body["messages"], content)}, {}

    def close(self) -> None:
        self._closed.set()
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> ScriptedChatServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request_problem(body: object) -> tuple[str | None, str] | None:
    """(param, message) of what the real API would refuse with 400, or None."""
    if not isinstance(body, dict):
        return None, "We could not parse the JSON body of your request."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model", "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages", "'messages' must be a non-empty array"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"messages[{i}].role", f"messages[{i}] needs a role among {sorted(ROLES)}"
        if not isinstance(message.get("content"), str | list | None):
            return f"messages[{i}].content", f"messages[{i}].content must be a string"
    form = body.get("response_format")
    if form is not None and form != {"type": "json_object"}:
        spec = form.get("json_schema") if isinstance(form, dict) else None
        if not isinstance(form, dict) or form.get("type") != "json_schema" \
                or not isinstance(spec, dict):
            return "response_format", "response_format must be json_object or json_schema"
        if not isinstance(spec.get("name"), str) or not SCHEMA_NAME.match(spec["name"]):
            return "response_format.json_schema.name", "name must match ^[a-zA-Z0-9_-]{1,64}$"
        if not isinstance(spec.get("schema"), dict):
            return "response_format.json_schema.schema", "schema must be a JSON schema object"
    return None


def usage(messages: list[dict], reply: str) -> dict:
    """Tokens counted as whitespace-separated words: deterministic, close enough."""
    def words(content: object) -> int:
        if isinstance(content, list):
            return sum(words(part.get("text")) for part in content if isinstance(part, dict))
        return len(content.split()) if isinstance(content, str) else 0

    prompt, completion = sum(words(m.get("content")) for m in messages), words(reply)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def status_error(status: int, authorization: str) -> dict:
    message, kind, code = ERRORS.get(status, (
        "The server had an error while processing your request." if status >= 500
        else f"Scripted failure {status}.",
        "server_error" if status >= 500 else "invalid_request_error", None))
    key = authorization.removeprefix("Bearer ")
    return error(message.format(key=f"{key[:3]}***{key[-4:]}"), kind, code=code)


def error(message: str, kind: str = "invalid_request_error", param: str | None = None,
          code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def closed_port_url() -> str:
    """A base URL where nothing listens: a port the OS just handed out, closed again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
