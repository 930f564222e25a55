"""A local HTTP server speaking the OpenAI wire protocol for embeddings (POST
/v1/embeddings) and vision chat completions (POST /v1/chat/completions), so the
unmodified `openai` client is what the tests drive. Replies can be scripted."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

DATA_URL = re.compile(r"^data:(image/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/=]+)$")


class OpenAIEmbeddingsServer:
    def __init__(self, dimension: int = 8):
        self.dimension = dimension
        self.requests: list[dict] = []
        self.scripted: list[tuple[int, dict]] = []  # (status, body) replies served first
        self.reverse_order = False  # answer with data in reverse, as the protocol allows
        # Chat completions: what the vision model "sees", the model it must be asked for
        # (None: any), a status every chat request fails with, and a delay before replying.
        self.description = "A photo of a red bicycle leaning on a wall."
        self.chat_model: str | None = None
        self.chat_failure: int | None = None
        self.chat_delay = 0.0
        self.images: list[tuple[str, bytes]] = []  # (MIME type, bytes) of images described
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body,
                                        "auth": self.headers.get("Authorization")})
                status, reply = server.reply(self.path, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def vector(self, text: str) -> list[float]:
        seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
        return np.random.default_rng(seed).normal(size=self.dimension).round(6).tolist()

    def reply(self, path: str, body: dict) -> tuple[int, dict]:
        if self.scripted:
            return self.scripted.pop(0)
        if path == "/v1/chat/completions":
            return self.chat(body)
        if path != "/v1/embeddings":
            return 404, {"error": {"message": f"no route {path}", "type": "invalid_request"}}
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": self.vector(t)}
                for i, t in enumerate(inputs)]
        if self.reverse_order:
            data.reverse()
        return 200, {"object": "list", "data": data, "model": body["model"],
                     "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}}

    def chat(self, body: dict) -> tuple[int, dict]:
        """A vision model's answer, after checking the request is what one expects: the
        model, one user message whose content has a text part and an image_url part
        carrying the image as a base64 data URL, and a small max_tokens."""
        if self.chat_delay:
            time.sleep(self.chat_delay)
        if self.chat_failure:
            return self.chat_failure, error(f"scripted failure {self.chat_failure}")
        if self.chat_model is not None and body.get("model") != self.chat_model:
            return 404, error(f"model {body.get('model')!r} not found")
        problem = self._vision_request_problem(body)
        if problem:
            return 400, error(problem)
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
            "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": self.description}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 12, "total_tokens": 112}}

    def _vision_request_problem(self, body: dict) -> str:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages must be a non-empty list"
        parts = messages[-1].get("content")
        if messages[-1].get("role") != "user" or not isinstance(parts, list):
            return "the last message must be the user's, with a list of content parts"
        texts = [p for p in parts if p.get("type") == "text" and p.get("text", "").strip()]
        images = [p for p in parts if p.get("type") == "image_url"]
        if not texts or len(images) != 1:
            return "expected a text part and one image_url part"
        match = DATA_URL.match(images[0].get("image_url", {}).get("url", ""))
        if not match:
            return "image_url.url must be a data:image/...;base64,... URL"
        try:
            self.images.append((match[1], base64.b64decode(match[2], validate=True)))
        except binascii.Error:
            return "the data URL is not valid base64"
        if not isinstance(body.get("max_tokens"), int) or not 0 < body["max_tokens"] <= 300:
            return "max_tokens must be set and small"
        return ""

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def error(message: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error"}}
