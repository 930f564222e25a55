"""Engram's MCP server driven by the official `mcp` SDK's client, against a real
`engram serve`: over streamable HTTP at /mcp (both the 2026-07-28 single-exchange
protocol and the older initialize handshake that desktop agents speak), and over stdio
by spawning `engram mcp` pointed at the server's /v1 API."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import requests
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from tests.conftest import ROOT, EngramServer

pytestmark = pytest.mark.slow

TOOLS = {"add_memory", "add_file", "search_memories", "list_memories", "get_memory",
         "update_memory", "delete_memories", "task_status"}


def user() -> str:
    return f"mcp-{uuid.uuid4().hex[:10]}"


def http_client(server: EngramServer, key: str, mode: str = "auto",
                headers: dict[str, str] | None = None) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}", **(headers or {})})
    return Client(streamable_http_client(f"{server.root_url}/mcp", http_client=http),
                  mode=mode)


def stdio_client(server: EngramServer, key: str, user_id: str) -> Client:
    return Client(StdioServerParameters(
        command=sys.executable,
        args=["-m", "engram.cli", "mcp", "--url", server.base_url, "--api-key", key,
              "--user-id", user_id],
        env={"PYTHONPATH": str(ROOT / "layers" / "core")}, cwd=str(ROOT)))


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {result.content}"
    return result.structured_content


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} should have failed: {result.structured_content}"
    return result.content[0].text


async def wait_task(client: Client, task_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = await call(client, "task_status", task_id=task_id)
        if status["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return status
        await anyio.sleep(0.2)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_http_lists_the_tools_adds_then_finds_a_memory(engram_server: EngramServer,
                                                        mode: str) -> None:
    who = user()

    async def flow() -> None:
        async with http_client(engram_server, engram_server.api_key, mode) as client:
            listed = (await client.list_tools()).tools
            assert {t.name for t in listed} == TOOLS
            for tool in listed:  # written for a model to choose: each says what it does
                assert tool.description and len(tool.description) > 80, tool.name
            added = await call(client, "add_memory", user_id=who, wait=True,
                               text="I moved to Porto last year and I work as a violin maker")
            assert added["status"] == "completed" and added["memory_views"]["added"]
            found = await call(client, "search_memories", user_id=who,
                               query="What is my job?")
            texts = [m["memory"] for m in found["memories"]] + \
                [p["preference"] for p in found["preferences"]]
            assert any("violin maker" in t for t in texts), found
            listed_page = await call(client, "list_memories", user_id=who)
            assert listed_page["total"] >= 1
            memory_id = added["memory_views"]["added"][0]
            record = await call(client, "get_memory", memory_id=memory_id)
            assert "violin" in record["memory"] and record["status"] == "activated"

    anyio.run(flow)
    # the same memory through the REST API: one store behind both
    data = engram_server.post("search/memory", {"user_id": who, "query": "violin"}).json()
    values = [m["memory_value"] for m in data["data"]["memory_detail_list"]] + \
        [p["preference"] for p in data["data"]["preference_detail_list"]]
    assert any("violin maker" in v for v in values)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-key"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"}])
def test_http_refuses_a_missing_or_wrong_key(engram_server: EngramServer,
                                             headers: dict[str, str]) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = requests.post(f"{engram_server.root_url}/mcp", json=body, timeout=10,
                             headers={"Accept": "application/json, text/event-stream",
                                      **headers})
    assert response.status_code == 401
    assert response.json()["code"] == 401  # the REST API's envelope

    async def sdk_client(mode: str) -> None:
        async with http_client(engram_server, "not-a-key", mode):
            pass

    for mode in ("auto", "legacy"):  # the SDK's client gets no further than its handshake
        with pytest.raises(ExceptionGroup) as refusal:
            anyio.run(sdk_client, mode)
        assert refusal.group_contains(MCPError)


def test_a_key_of_another_tenant_does_not_see_the_memory(engram_server: EngramServer) -> None:
    who = user()

    async def flow() -> None:
        async with http_client(engram_server, engram_server.api_key) as client:
            added = await call(client, "add_memory", user_id=who, wait=True,
                               text="My locker code is 4417 and I keep it secret")
            memory_id = added["memory_views"]["added"][0]
        async with http_client(engram_server, engram_server.other_key) as other:
            found = await call(other, "search_memories", user_id=who, query="locker code")
            assert found["memories"] == [] and found["preferences"] == []
            assert (await call(other, "list_memories", user_id=who))["total"] == 0
            assert "not found" in await refused(other, "get_memory", memory_id=memory_id)
            assert "404" in await refused(other, "update_memory", memory_id=memory_id,
                                          content="hijacked")
            gone = await other.call_tool("delete_memories", {"memory_ids": [memory_id]})
            assert gone.is_error or gone.structured_content["deleted"] == 0
            assert "404" in await refused(other, "task_status", task_id=added["task_id"])
        async with http_client(engram_server, engram_server.api_key) as client:
            record = await call(client, "get_memory", memory_id=memory_id)
            assert "4417" in record["memory"] and record["status"] == "activated"

    anyio.run(flow)


def test_http_default_user_comes_from_the_connection_header(engram_server: EngramServer) -> None:
    who = user()

    async def flow() -> None:
        async with http_client(engram_server, engram_server.api_key,
                               headers={"X-Engram-User-Id": who}) as client:
            await call(client, "add_memory", wait=True, text="I am allergic to peanuts")
            found = await call(client, "search_memories", query="What am I allergic to?")
            assert any("peanut" in m["memory"] for m in found["memories"]) or \
                any("peanut" in p["preference"] for p in found["preferences"])

    anyio.run(flow)
    data = engram_server.post("get/memory", {"user_id": who}).json()["data"]
    assert data["total"] >= 1  # stored under the header's user


def test_http_add_file_takes_urls_only_and_refuses_private_ones(
        engram_server: EngramServer) -> None:
    async def flow() -> None:
        async with http_client(engram_server, engram_server.api_key) as client:
            message = await refused(client, "add_file", user_id=user(), source="/etc/hostname")
            assert "http(s) URL" in message
            message = await refused(client, "add_file", user_id=user(),
                                    source="http://127.0.0.1:9/report.pdf")
            assert "422" in message and "127.0.0.1" in message

    anyio.run(flow)


def test_stdio_lists_the_tools_adds_then_finds_a_memory_and_a_local_file(
        engram_server: EngramServer, tmp_path: Path) -> None:
    who = user()
    notes = tmp_path / "trip-notes.txt"
    notes.write_text("Packing list for the Kyoto trip: the blue umbrella and a rail pass.\n"
                     "I booked the Hotel Sakura in Kyoto for the first week of April.\n")

    async def flow() -> None:
        async with stdio_client(engram_server, engram_server.api_key, who) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            # no user_id: the server's --user-id
            added = await call(client, "add_memory", wait=True,
                               text="My sister Ana lives in Montreal")
            assert added["status"] == "completed"
            found = await call(client, "search_memories", query="Where does Ana live?")
            assert any("Montreal" in m["memory"] for m in found["memories"]), found
            memory_id = added["memory_views"]["added"][0]
            updated = await call(client, "update_memory", memory_id=memory_id,
                                 content="My sister Ana lives in Quebec City")
            assert "Quebec" in updated["memory"]
            assert any("Montreal" in v["memory"] for v in updated["history"])

            task = await call(client, "add_file", source=str(notes), note="my trip notes")
            status = await wait_task(client, task["task_id"])
            assert status["status"] == "completed", status
            assert status["items"][0]["name"] == "trip-notes.txt"
            found = await call(client, "search_memories", query="Which hotel in Kyoto?")
            assert any("Sakura" in m["memory"] for m in found["memories"]), found

            assert "no file" in await refused(client, "add_file",
                                              source=str(tmp_path / "missing.pdf"))
            deleted = await call(client, "delete_memories", memory_ids=[memory_id])
            assert deleted["deleted"] == 1
            found = await call(client, "search_memories", query="Where does Ana live?")
            assert all(m["id"] != memory_id for m in found["memories"])

    anyio.run(flow)
    # everything went to the user named by --user-id, through the /v1 API
    data = engram_server.post("get/memory", {"user_id": who, "size": 50}).json()["data"]
    assert any("Sakura" in m["memory_value"] for m in data["memory_detail_list"])


def test_stdio_tenant_partition(engram_server: EngramServer) -> None:
    who = user()

    async def flow() -> None:
        async with stdio_client(engram_server, engram_server.api_key, who) as client:
            await call(client, "add_memory", wait=True, text="My bike is a red Cannondale")
        async with stdio_client(engram_server, engram_server.other_key, who) as other:
            found = await call(other, "search_memories", query="What bike do I have?")
            assert found["memories"] == [] and found["preferences"] == []

    anyio.run(flow)


def test_stdio_with_a_wrong_key_answers_tool_errors(engram_server: EngramServer) -> None:
    async def flow() -> None:
        async with stdio_client(engram_server, "not-a-key", user()) as client:
            message = await refused(client, "search_memories", query="anything")
            assert "401" in message and "invalid API key" in message

    anyio.run(flow)


def test_http_offers_no_sse_stream_and_answers_bad_messages_in_json_rpc(
        engram_server: EngramServer) -> None:
    """A GET (a standalone SSE stream) is the spec's 405, never a stream held open on a
    worker; a malformed message is the SDK's JSON-RPC error, never a 5xx."""
    headers = {"Authorization": f"Bearer {engram_server.api_key}",
               "Accept": "application/json, text/event-stream"}
    url = f"{engram_server.root_url}/mcp"
    response = requests.get(url, headers=headers, timeout=10)
    assert response.status_code == 405 and response.headers["Allow"] == "POST, DELETE"
    assert "no SSE stream" in response.json()["error"]["message"]
    response = requests.post(url, data="{nope", timeout=10,
                             headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == -32700
    response = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                        "params": {"name": "nope", "arguments": {}}},
                             headers=headers, timeout=10)
    assert response.status_code == 200 and response.json()["result"]["isError"] is True
