"""Drive MemOS's official Python client (PyPI memoryos==2.0.33) against an Engram server.

Run with the test-only virtualenv (tests/compat/setup_venv.sh makes it):

    .venv-compat/bin/python tests/compat/memos_client_flow.py \
        --base-url http://127.0.0.1:PORT/v1 --api-key KEY --user USER

The client validates every response with its own pydantic models, so a shape that MemOS's
client cannot parse fails here; on top of that every step checks that the content is
right. Any failure raises FlowFailure naming the step and the response it got; success
prints exactly one line "memos client flow ok". Runs on the standard library plus the
client (no pytest in .venv-compat).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from typing import Any

CONVERSATION_ID = "0610"
# The quick start of MemOS's "Add Message" page (shared/seeds/memos-add-message.en.md).
QUICK_START_MESSAGES = [
    {"role": "user", "content": "I'm planning a trip to Guangzhou during the summer vacation. "
                                "What chain hotels are available for accommodation?"},
    {"role": "assistant", "content": "You can consider [7 Days Inn, JI Hotel, Hilton], etc."},
    {"role": "user", "content": "I choose 7 Days Inn"},
    {"role": "assistant", "content": "Okay, ask me if you have any other questions."},
]
HOTEL_QUERY = "Which hotel did I choose in Guangzhou?"
UPDATED_CONTENT = "The user chose JI Hotel for the summer trip to Guangzhou"
FEEDBACK = "Actually I switched to Hilton, not 7 Days Inn."
AGENT_FACT = "My SQL examples run on PostgreSQL 16 at the Lisbon help desk."
AGENT_QUERY = "Which database do the SQL examples run on?"
TASK_TIMEOUT_S = 60.0
PAGE_SIZE = 50  # the client refuses size > 50


class FlowFailure(AssertionError):
    pass


_current_step = "start"


def at(step: str) -> str:
    """Name the step under way, so that an exception the client raises names it too."""
    global _current_step
    _current_step = step
    return step


def _isolate_memos_import() -> None:
    """`import memos` configures logging to $MEMOS_BASE_PATH/.memos/logs (default: the
    cwd), loads .env files found above its install dir, may ship logs to
    CUSTOM_LOGGER_URL and poll Nacos. None of that belongs in a test: point it at a
    scratch dir and switch the rest off before the import."""
    scratch = tempfile.mkdtemp(prefix="memos-client-flow-")
    atexit.register(shutil.rmtree, scratch, True)
    os.environ["MEMOS_BASE_PATH"] = scratch
    os.environ["PYTHON_DOTENV_DISABLED"] = "1"
    for name in ("CUSTOM_LOGGER_URL", "NACOS_SERVER_ADDR", "NACOS_ENABLE_WATCH",
                 "MEMOS_BASE_URL", "MEMOS_API_KEY", "MEMOS_IS_GLOBAL"):
        os.environ.pop(name, None)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def show(obj: Any) -> str:
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json", by_alias=True)
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return text if len(text) <= 4000 else text[:4000] + "...(cut)"


def check(condition: Any, step: str, what: str, response: Any = None) -> None:
    if not condition:
        detail = f"\n  response: {show(response)}" if response is not None else ""
        raise FlowFailure(f"[{step}] {what}{detail}")


def fields(item: Any) -> dict[str, Any]:
    """A MemoryDetail (pydantic, extra='allow') or a plain dict, as a dict."""
    return item.model_dump() if hasattr(item, "model_dump") else dict(item)


def ok_envelope(resp: Any, step: str) -> None:
    check(resp is not None, step, "the client returned None")
    code = resp["code"] if isinstance(resp, dict) else resp.code
    check(code == 0, step, f"expected code 0, got {code!r}", resp)


def added_ids(views: Any) -> list[str]:
    """Memory ids listed under any "added" key of memory_views, at any depth (MemOS
    reports added/updated/deleted, possibly per memory type)."""
    found: list[str] = []

    def walk(node: Any, under_added: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, under_added or key == "added")
        elif isinstance(node, list):
            for value in node:
                walk(value, under_added)
        elif under_added and isinstance(node, str):
            found.append(node)

    walk(views, False)
    return found


def wait_completed(client: Any, task_id: str, step: str) -> Any:
    deadline = time.monotonic() + TASK_TIMEOUT_S
    last = None
    while time.monotonic() < deadline:
        last = client.get_task_status(task_id)
        ok_envelope(last, step)
        check(last.data.task_id == task_id, step,
              f"get_task_status answered for task {last.data.task_id!r}, asked {task_id!r}", last)
        if last.data.status == "completed":
            return last
        check(last.data.status != "failed", step, f"task {task_id} failed", last)
        time.sleep(0.25)
    raise FlowFailure(f"[{step}] task {task_id} not completed after {TASK_TIMEOUT_S:.0f} s; "
                      f"last status: {show(last)}")


def listed_memories(client: Any, user: str, step: str) -> dict[str, dict]:
    """Every memory get_memory lists for the user (all pages of facts, plus the
    preference and tool lists), by id."""
    by_id: dict[str, dict] = {}
    page = 1
    while True:
        resp = client.get_memory(user_id=user, page=page, size=PAGE_SIZE)
        ok_envelope(resp, step)
        data = resp.data
        extra: Iterable[Any] = []
        if page == 1:
            extra = [*(data.preference_detail_list or []), *(data.tool_memory_detail_list or [])]
        for item in [*data.memory_detail_list, *extra]:
            d = fields(item)
            check(d.get("id"), step, "a listed memory has no id", resp)
            by_id[d["id"]] = d
        if not data.memory_detail_list or not data.pages or page >= data.pages or page >= 100:
            return by_id
        page += 1


def search(client: Any, user: str, step: str) -> list[dict]:
    resp = client.search_memory(query=HOTEL_QUERY, user_id=user,
                                conversation_id=CONVERSATION_ID)
    ok_envelope(resp, step)
    return [fields(m) for m in resp.memories]


def run(base_url: str, api_key: str, user: str) -> None:
    _isolate_memos_import()
    from memos.api.client import MemOSClient  # noqa: PLC0415 (after the env is set)

    client = MemOSClient(api_key=api_key, base_url=base_url)

    # 1. add/message, async
    step = at("add_message")
    add = client.add_message(messages=QUICK_START_MESSAGES, user_id=user,
                             conversation_id=CONVERSATION_ID, async_mode=True)
    ok_envelope(add, step)
    check(add.success is True, step, "data.success is not true", add)
    check(add.task_id, step, "no task_id", add)
    check(add.status and add.status != "failed", step, f"bad status {add.status!r}", add)

    # 2. get/status until completed, with the ids it added
    step = at("get_task_status(add)")
    status = wait_completed(client, add.task_id, step)
    views = status.data.memory_views
    check(isinstance(views, dict), step, "memory_views is not a dict", status)
    new_ids = added_ids(views)
    check(new_ids, step, "memory_views lists no added memory id", status)

    # 3. search/memory: the choice is found first
    step = at("search_memory")
    hits = search(client, user, step)
    check(hits, step, "no memories found")
    top = hits[0]
    check("7 days inn" in str(top.get("memory_value", "")).lower(), step,
          "the first memory's memory_value does not mention '7 Days Inn'", hits)
    check(top.get("id"), step, "the first memory has no id", hits)
    target_id = top["id"]

    # 4. get/memory: listed, total >= 1, and every id the task reported as added is there
    step = at("get_memory")
    page1 = client.get_memory(user_id=user, page=1, size=10)
    ok_envelope(page1, step)
    check(page1.memories, step, "no memories listed", page1)
    check(page1.data.total is not None and page1.data.total >= 1, step,
          f"total is {page1.data.total!r}, expected >= 1", page1)
    listed = listed_memories(client, user, step)
    missing = [i for i in new_ids if i not in listed]
    check(not missing, step, f"ids reported added by get_task_status are not listed: {missing}",
          {"memory_views": views, "listed_ids": sorted(listed)})

    # 5. update/memory, then search shows the new content on the same memory
    step = at("update_memory")
    upd = client.update_memory(memory_id=target_id, content=UPDATED_CONTENT)
    check(isinstance(upd, dict), step, f"expected a dict, got {type(upd).__name__}", upd)
    ok_envelope(upd, step)
    step = at("search_memory(after update)")
    hits = search(client, user, step)
    same = [h for h in hits if h.get("id") == target_id]
    check(same, step, f"the updated memory {target_id} is not found", hits)
    check(same[0].get("memory_value") == UPDATED_CONTENT, step,
          f"memory {target_id} does not show the new content", same[0])

    # 5b. get/memory/{id}: the edited memory with its history (the first version kept)
    step = at("get_memory_by_id")
    one = client.get_memory_by_id(target_id)
    check(isinstance(one, dict) and one.get("code") == 0, step, "not an ok envelope", one)
    data = one.get("data") or {}
    check(data.get("id") == target_id and data.get("memory_value") == UPDATED_CONTENT, step,
          "not the edited memory", one)
    check(any("7 days inn" in str(v.get("memory_value", "")).lower()
              for v in data.get("history") or []), step,
          "the first version (7 Days Inn) is not in the memory's history", one)

    # 6. add/feedback, polled to completed
    step = at("add_feedback")
    fb = client.add_feedback(user_id=user, conversation_id=CONVERSATION_ID,
                             feedback_content=FEEDBACK)
    ok_envelope(fb, step)
    check(fb.success is True, step, "data.success is not true", fb)
    check(fb.task_id, step, "no task_id", fb)
    step = at("get_task_status(feedback)")
    fb_status = wait_completed(client, fb.task_id, step)
    check(isinstance(fb_status.data.memory_views, dict), step, "memory_views is not a dict",
          fb_status)
    check(target_id in fb_status.data.memory_views.get("updated", []), step,
          "feedback did not correct the hotel memory", fb_status)
    hits = search(client, user, step)
    # The trip itself ("planning a trip to Guangzhou") may come as close to the question as
    # the choice; what must not happen is a stale hotel choice above the corrected one.
    naming = [h for h in hits if any(word in h.get("memory_value", "")
                                     for word in ("Inn", "Hotel", "Hilton"))]
    check(naming and "Hilton" in naming[0].get("memory_value", ""), step,
          "search after feedback does not put the corrected (Hilton) memory before every "
          "other memory naming a hotel", hits)

    # 7. delete/memory by id: gone from get_memory and from search. Feedback may have
    # retired the edited memory, so delete it if it is still listed, else another one.
    step = at("delete_memory(memory_ids)")
    listed = listed_memories(client, user, step)
    check(listed, step, "nothing left to delete after feedback")
    victim = target_id if target_id in listed else next(iter(listed))
    deleted = client.delete_memory(memory_ids=[victim])
    ok_envelope(deleted, step)
    check(deleted.success is True, step, "data.success is not true", deleted)
    listed = listed_memories(client, user, step)
    check(victim not in listed, step, f"memory {victim} is still listed by get_memory",
          sorted(listed))
    hits = search(client, user, step)
    check(all(h.get("id") != victim for h in hits), step,
          f"memory {victim} is still returned by search_memory", hits)

    # 8. delete/memory by user: nothing left
    step = at("delete_memory(user_id)")
    wiped = client.delete_memory(user_id=user)
    ok_envelope(wiped, step)
    check(wiped.success is True, step, "data.success is not true", wiped)
    after = client.get_memory(user_id=user, page=1, size=10)
    ok_envelope(after, step)
    check(not after.memories and not (after.data.preference_detail_list or [])
          and not (after.data.tool_memory_detail_list or []), step,
          "get_memory still lists memories", after)
    check(not after.data.total, step, f"total is {after.data.total!r}, expected 0", after)
    check(not search(client, user, step), step, "search_memory still finds memories")

    # 9. an agent's own memories: add, search and list with agent_id alone; the user's
    # search never shows them, and delete by agent_id takes them out
    agent = f"{user}-agent"
    step = at("add_message(agent_id)")
    added = client.add_message(messages=[{"role": "user", "content": AGENT_FACT}],
                               agent_id=agent, conversation_id="agent-0", async_mode=False)
    ok_envelope(added, step)
    step = at("search_memory(agent_id)")
    found = client.search_memory(query=AGENT_QUERY, agent_id=agent, conversation_id="agent-0")
    ok_envelope(found, step)
    agent_hits = [fields(m) for m in found.data.memory_detail_list]
    check(any("postgresql" in h.get("memory_value", "").lower() for h in agent_hits), step,
          "the agent's memory is not found by agent_id", found)
    step = at("get_memory(agent_id)")
    listing = client.get_memory(agent_id=agent, page=1, size=10)
    ok_envelope(listing, step)
    check(listing.data.total and listing.data.total >= 1, step, "nothing listed", listing)
    step = at("search_memory(user_id) after the agent's add")
    client.add_message(messages=QUICK_START_MESSAGES[:1], user_id=user,
                       conversation_id=CONVERSATION_ID, async_mode=False)
    user_found = client.search_memory(query=AGENT_QUERY, user_id=user)
    check(not any("postgresql" in fields(m).get("memory_value", "").lower()
                  for m in user_found.data.memory_detail_list), step,
          "the user's search shows the agent's memory", user_found)
    step = at("delete_memory(agent_id)")
    gone = client.delete_memory(agent_id=agent)
    ok_envelope(gone, step)
    again = client.search_memory(query=AGENT_QUERY, agent_id=agent)
    check(not again.data.memory_detail_list, step, "the agent's memory is still found", again)
    client.delete_memory(user_id=user)

    print("memos client flow ok", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--user", required=True, help="a user id no other test uses")
    args = parser.parse_args(argv)
    try:
        run(args.base_url.rstrip("/"), args.api_key, args.user)
    except FlowFailure:
        raise
    except Exception as exc:
        raise FlowFailure(f"[{_current_step}] {describe(exc)}") from exc
    return 0


def describe(exc: Exception) -> str:
    """The client retries 3 times, then re-raises requests' HTTPError (which does not
    carry the body in its message) or pydantic's ValidationError: say what came back."""
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "status_code"):
        request = response.request
        return (f"HTTP {response.status_code} from {request.method} {response.url}\n"
                f"  request body: {str(request.body or '')[:2000]}\n"
                f"  response body: {response.text[:4000]}")
    if type(exc).__name__ == "ValidationError":
        return f"MemOS's client could not parse the server's response: {exc}"
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())
