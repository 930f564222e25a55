"""Where the MCP tools send their calls: the MemOS (/v1) operations, taking and returning
the /v1 request and response models, so the tools hold no logic of their own.

- `InProcessMemos`: the /v1 routes' translator over the services, for one tenant (the
  tools served at `/mcp` by `engram serve`, the tenant resolved from the API key).
- `HttpMemos`: the same operations as HTTP calls to a running Engram's /v1 API (`engram
  mcp`, a desktop agent's stdio server, pointed at `engram serve` or at the AWS API).

Both raise `BackendError` with the API's status and message on a refusal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import requests
from pydantic import BaseModel, ValidationError

from engram.api.memos.models import (
    AddMessageData,
    AddMessageRequest,
    DeleteMemoryData,
    DeleteMemoryRequest,
    GetMemoryData,
    GetMemoryRequest,
    MemoryDetail,
    SearchData,
    SearchRequest,
    TaskStatusData,
    UpdateMemoryData,
    UpdateMemoryRequest,
)
from engram.api.memos.translate import MemosTranslator
from engram.errors import EngramError

T = TypeVar("T", bound=BaseModel)


class BackendError(Exception):
    """A call the API refused (or could not be made): its HTTP status and message."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{message} (HTTP {status})")
        self.status, self.message = status, message


class MemosBackend(Protocol):
    def add_message(self, req: AddMessageRequest) -> AddMessageData: ...

    def search(self, req: SearchRequest) -> SearchData: ...

    def get_memory(self, req: GetMemoryRequest) -> GetMemoryData: ...

    def get_memory_by_id(self, memory_id: str) -> MemoryDetail: ...

    def update_memory(self, req: UpdateMemoryRequest) -> UpdateMemoryData: ...

    def delete_memory(self, req: DeleteMemoryRequest) -> DeleteMemoryData: ...

    def task_status(self, task_id: str) -> TaskStatusData: ...


@dataclass
class InProcessMemos:
    """The translator the /v1 routes call, for the tenant the API key resolved to."""

    memos: MemosTranslator
    tenant_id: str

    def _call(self, method: Any, *args: Any) -> Any:
        try:
            return method(self.tenant_id, *args)
        except EngramError as error:
            raise BackendError(error.status_code, error.message) from None

    def add_message(self, req: AddMessageRequest) -> AddMessageData:
        return self._call(self.memos.add_message, req)

    def search(self, req: SearchRequest) -> SearchData:
        return self._call(self.memos.search, req)

    def get_memory(self, req: GetMemoryRequest) -> GetMemoryData:
        return self._call(self.memos.get_memory, req)

    def get_memory_by_id(self, memory_id: str) -> MemoryDetail:
        return self._call(self.memos.get_memory_by_id, memory_id)

    def update_memory(self, req: UpdateMemoryRequest) -> UpdateMemoryData:
        return self._call(self.memos.update_memory, req)

    def delete_memory(self, req: DeleteMemoryRequest) -> DeleteMemoryData:
        return self._call(self.memos.delete_memory, req)

    def task_status(self, task_id: str) -> TaskStatusData:
        return self._call(self.memos.task_status, task_id)


class HttpMemos:
    """The /v1 API of a running Engram (`base_url` ends in /v1), with an API key."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 120):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers.update({"Authorization": f"Token {api_key}"})

    def _send(self, method: str, route: str, model: type[T],
              body: BaseModel | None = None) -> T:
        try:
            response = self._session.request(
                method, f"{self.base_url}/{route}", timeout=self.timeout,
                json=body.model_dump(mode="json", exclude_none=True) if body else None)
        except requests.RequestException as error:
            raise BackendError(503, f"cannot reach Engram at {self.base_url}: {error}") \
                from None
        try:
            envelope = response.json()
        except ValueError:
            raise BackendError(response.status_code, response.text[:300] or "no body") \
                from None
        if response.status_code != 200 or not isinstance(envelope, dict) \
                or envelope.get("code") != 0:
            message = envelope.get("message") if isinstance(envelope, dict) else None
            raise BackendError(response.status_code, str(message or response.text[:300]))
        try:
            return model.model_validate(envelope.get("data"))
        except ValidationError as error:
            raise BackendError(502, f"unexpected answer from {route}: {error}") from None

    def add_message(self, req: AddMessageRequest) -> AddMessageData:
        return self._send("POST", "add/message", AddMessageData, req)

    def search(self, req: SearchRequest) -> SearchData:
        return self._send("POST", "search/memory", SearchData, req)

    def get_memory(self, req: GetMemoryRequest) -> GetMemoryData:
        return self._send("POST", "get/memory", GetMemoryData, req)

    def get_memory_by_id(self, memory_id: str) -> MemoryDetail:
        return self._send("GET", f"get/memory/{quote(memory_id, safe='')}", MemoryDetail)

    def update_memory(self, req: UpdateMemoryRequest) -> UpdateMemoryData:
        return self._send("POST", "update/memory", UpdateMemoryData, req)

    def delete_memory(self, req: DeleteMemoryRequest) -> DeleteMemoryData:
        return self._send("POST", "delete/memory", DeleteMemoryData, req)

    def task_status(self, task_id: str) -> TaskStatusData:
        return self._send("GET", f"get/status?task_id={quote(task_id, safe='')}",
                          TaskStatusData)
