"""A small Python client for Engram's /v1 API (used by the tests and the CLI)."""

from __future__ import annotations

import time
from typing import Any

import requests


class EngramClientError(RuntimeError):
    def __init__(self, status: int, code: int, message: str):
        super().__init__(f"HTTP {status} (code {code}): {message}")
        self.status, self.code, self.message = status, code, message


class EngramClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8000/v1", api_key: str = "",
                 timeout: float = 60):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers.update({"Authorization": f"Token {api_key}",
                                      "Content-Type": "application/json"})

    def post(self, route: str, body: dict[str, Any]) -> Any:
        """Any /v1 route: its envelope's `data`, or EngramClientError."""
        return self._post(route, body)

    def _post(self, route: str, body: dict[str, Any]) -> Any:
        response = self._session.post(f"{self.base_url}/{route}", json=body,
                                      timeout=self.timeout)
        try:
            envelope = response.json()
        except ValueError:
            raise EngramClientError(response.status_code, -1, response.text[:200]) from None
        if response.status_code != 200 or envelope.get("code") != 0:
            raise EngramClientError(response.status_code, envelope.get("code", -1),
                                    envelope.get("message", ""))
        return envelope["data"]

    def add_message(self, user_id: str, conversation_id: str, messages: list[dict[str, Any]],
                    **options: Any) -> dict[str, Any]:
        """options: async_mode, agent_id, app_id, tags, info, allow_public, ..."""
        return self._post("add/message", {"user_id": user_id, "conversation_id": conversation_id,
                                          "messages": messages, **options})

    def search(self, query: str, user_id: str, **options: Any) -> dict[str, Any]:
        return self._post("search/memory", {"query": query, "user_id": user_id, **options})

    def get_status(self, task_id: str) -> dict[str, Any]:
        return self._post("get/status", {"task_id": task_id})

    def wait(self, task_id: str, timeout: float = 120, interval: float = 0.1) -> dict[str, Any]:
        """Poll get/status until the task is completed or failed."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.get_status(task_id)
            if status["status"] in ("completed", "failed"):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} still {status['status']} after {timeout}s")
            time.sleep(interval)
