"""A local HTTP server speaking the OpenAI embeddings wire protocol (POST /v1/embeddings),
so the unmodified `openai` client is what the tests drive. Replies can be scripted."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


class OpenAIEmbeddingsServer:
    def __init__(self, dimension: int = 8):
        self.dimension = dimension
        self.requests: list[dict] = []
        self.scripted: list[tuple[int, dict]] = []  # (status, body) replies served first
        self.reverse_order = False  # answer with data in reverse, as the protocol allows
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
        if path != "/v1/embeddings":
            return 404, {"error": {"message": f"no route {path}", "type": "invalid_request"}}
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": self.vector(t)}
                for i, t in enumerate(inputs)]
        if self.reverse_order:
            data.reverse()
        return 200, {"object": "list", "data": data, "model": body["model"],
                     "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}}

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
