"""The MCP tools over a recording backend, through the SDK's in-process client: what
request each tool builds (the user default, files by path or URL) and how refusals come
back (tool errors naming the field or the API's message)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from engram.api.memos.models import (
    AddMessageData,
    AddMessageRequest,
    DeleteMemoryData,
    SearchData,
    SearchRequest,
)
from engram.mcp import tools
from engram.mcp.backends import BackendError
from engram.mcp.tools import build_mcp


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def add_message(self, req: AddMessageRequest) -> AddMessageData:
        self.calls.append(("add_message", req))
        return AddMessageData(task_id="t1", status="waiting", message_ids=["m1"])

    def search(self, req: SearchRequest) -> SearchData:
        self.calls.append(("search", req))
        return SearchData(memory_detail_list=[], preference_detail_list=[],
                          tool_memory_detail_list=[], preference_note="")

    def delete_memory(self, req: Any) -> DeleteMemoryData:
        raise BackendError(404, "memory x not found")


def run(local_files: bool, tool: str, **arguments: Any) -> tuple[Recorder, Any]:
    backend = Recorder()
    server = build_mcp(lambda _ctx: backend, lambda _ctx: "the-default",
                       local_files=local_files)

    async def go() -> Any:
        async with Client(server) as client:
            return await client.call_tool(tool, arguments)

    return backend, anyio.run(go)


def test_a_call_without_user_id_uses_the_connection_default() -> None:
    backend, result = run(True, "search_memories", query="where do I live?")
    assert not result.is_error
    (_, req), = backend.calls
    assert req.user_id == "the-default" and req.memory_limit_number == 6
    backend, _ = run(True, "add_memory", text="I like tea", user_id="u2", wait=True)
    (_, req), = backend.calls
    assert req.user_id == "u2" and req.async_mode is False
    assert req.messages[0].role == "user" and req.messages[0].content == "I like tea"


def test_a_local_file_is_sent_base64_and_an_image_as_a_data_url(tmp_path: Path) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("# Plans\nVisit Kyoto in April")
    backend, result = run(True, "add_file", source=str(doc), note="my plans")
    assert not result.is_error
    (_, req), = backend.calls
    text, part = req.messages[0].content
    assert text == {"type": "text", "text": "my plans"}
    assert part["file"]["file_name"] == "notes.md"
    assert base64.b64decode(part["file"]["file_data"]) == doc.read_bytes()
    image = tmp_path / "receipt.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    backend, _ = run(True, "add_file", source=str(image))
    (_, req), = backend.calls
    assert req.messages[0].content[0]["image_url"]["url"].startswith("data:image/png;base64,")


def test_urls_are_passed_on_for_the_server_to_fetch() -> None:
    backend, _ = run(False, "add_file", source="https://example.com/docs/report.pdf?x=1")
    (_, req), = backend.calls
    assert req.messages[0].content[0]["file"] == {
        "file_data": "https://example.com/docs/report.pdf?x=1", "file_name": "report.pdf"}
    backend, _ = run(False, "add_file", source="https://example.com/cat.jpg")
    (_, req), = backend.calls
    assert req.messages[0].content[0]["image_url"]["url"] == "https://example.com/cat.jpg"


def test_paths_are_refused_over_http_and_checked_over_stdio(tmp_path: Path,
                                                            monkeypatch) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("hello")
    backend, result = run(False, "add_file", source=str(doc))
    assert result.is_error and "http(s) URL" in result.content[0].text and not backend.calls
    backend, result = run(True, "add_file", source=str(tmp_path / "nope.txt"))
    assert result.is_error and "no file at" in result.content[0].text
    monkeypatch.setattr(tools, "MAX_LOCAL_FILE_BYTES", 3)
    backend, result = run(True, "add_file", source=str(doc))
    assert result.is_error and "the limit for a local file is 3 bytes" in result.content[0].text


@pytest.mark.parametrize("arguments, expected", [
    ({"text": "x", "user_id": "bad\nid"}, "user_id"),  # the /v1 identifier rule
    ({"text": "x", "tags": ["a"] * 51}, "tags"),
])
def test_invalid_arguments_are_tool_errors_naming_the_field(arguments: dict,
                                                             expected: str) -> None:
    backend, result = run(True, "add_memory", **arguments)
    assert result.is_error and expected in result.content[0].text and not backend.calls


def test_an_api_refusal_is_a_tool_error_with_its_message() -> None:
    _, result = run(True, "delete_memories", memory_ids=["x"])
    assert result.is_error
    assert "memory x not found (HTTP 404)" in result.content[0].text
