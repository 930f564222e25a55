"""Drive EverOS's MCP server (PyPI everos-mcp==0.1.1, speaking the v2 API) against an Engram
server, through an MCP client (the `mcp` package).

Run with the test-only virtualenv (tests/compat/setup_everos_mcp_venv.sh makes it):

    .venv-everos-mcp/bin/python tests/compat/everos_mcp_flow.py \
        --base-url http://127.0.0.1:PORT --api-key KEY --user USER \
        --server .venv-everos-mcp/bin/everos-mcp

The server is started as its README says for a local client: the `everos-mcp` command
on stdio, configured by EVEROS_API_KEY, EVEROS_BASE_URL (Engram's address) and
EVEROS_USER_ID. The client lists its tools, adds a memory and finds it again, browses,
records and recalls an agent trajectory, and forgets the session. Success prints exactly
one line "everos mcp flow ok"; a failure names the step.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

TOOLS = {"search_memory", "add_memory", "get_profile", "list_memories", "forget_session",
         "record_trajectory", "recall_agent_experience"}


class FlowFailure(AssertionError):
    pass


_step = "start"


def at(step: str) -> None:
    global _step
    _step = step


def check(condition: bool, what: str, got: Any = None) -> None:
    if not condition:
        raise FlowFailure(f"[{_step}] {what}" + (f"; got {got!r}"[:3000] if got is not None
                                                   else ""))


async def call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> str:
    result = await session.call_tool(tool, arguments)
    text = "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
    check(not result.isError, f"{tool} should not fail", text)
    return text


async def run(args: argparse.Namespace) -> None:
    params = StdioServerParameters(command=args.server, args=[], env={
        "EVEROS_API_KEY": args.api_key, "EVEROS_BASE_URL": args.base_url,
        "EVEROS_USER_ID": args.user})
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        at("initialize and list the tools")
        await session.initialize()
        tools = await session.list_tools()
        names = {t.name for t in tools.tools}
        check(TOOLS <= names, "the server should offer its seven tools", sorted(names))

        at("add a memory and wait for its extraction")
        text = await call(session, "add_memory", {
            "user_message": "I keep my road bike in the garage on Elm Street.",
            "assistant_message": "Noted: the road bike lives in the Elm Street garage.",
            "wait": True})
        check("Stored and extracted" in text, "the add should be extracted", text)

        at("find it again")
        text = await call(session, "search_memory", {"query": "road bike garage"})
        check("Elm Street" in text and "BEGIN STORED MEMORY" in text,
              "search_memory should find the memory", text)
        text = await call(session, "list_memories", {"page_size": 10})
        check("Elm Street" in text and "total, page 1" in text, "list_memories", text)
        text = await call(session, "get_profile", {})
        check("profile" in text.lower(), "get_profile should answer", text)

        at("record a trajectory and recall it")
        text = await call(session, "record_trajectory", {"messages": [
            {"role": "user", "content": "Find a flight from SFO to JFK"},
            {"role": "assistant", "content": "Searching.", "tool_calls": [
                {"id": "c1", "name": "search_flights",
                 "arguments": '{"from": "SFO", "to": "JFK"}'}]},
            {"role": "tool", "tool_call_id": "c1", "content": "UA 123 departs 9:05, $300"},
            {"role": "assistant", "content": "UA 123 at 9:05 costs $300."}]})
        check("Trajectory record" in text, "record_trajectory should accept it", text)
        deadline = time.monotonic() + 60
        while True:  # it records in the background
            text = await call(session, "recall_agent_experience", {"task": "flight SFO JFK"})
            if "search_flights" in text or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        check("search_flights" in text, "the trajectory should be recalled", text)

        at("forget the session")
        text = await call(session, "forget_session", {})
        check(text.startswith("Deleted ") and "Deleted 0 " not in text,
              "forget_session should delete what the session stored", text)
        text = await call(session, "search_memory", {"query": "road bike garage"})
        check("Elm Street" not in text, "nothing of the session should be found", text)
    print("everos mcp flow ok")


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("--base-url", "--api-key", "--user", "--server"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    try:
        asyncio.run(run(args))
    except FlowFailure as failure:
        print(f"FAILED {failure}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"FAILED [{_step}] {type(exc).__name__}: {exc}", file=sys.stderr)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
