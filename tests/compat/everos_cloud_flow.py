"""Drive EverOS's cloud SDK (PyPI everos-cloud==1.0.0, the v2 API) against an Engram server.

Run with the test-only virtualenv (tests/compat/setup_everos_cloud_venv.sh makes it):

    .venv-everos-cloud/bin/python tests/compat/everos_cloud_flow.py \
        --base-url http://127.0.0.1:PORT --api-key KEY --other-key KEY2 --user USER \
        --notes notes.txt

The SDK is used unmodified, through its facade (`EverOS`) and its generated clients
(`client.memory`, `client.storage`): every v2 route (object/sign with the upload, add,
flush, search, get, edit, delete), each answer checked on top of the SDK's own models.
Success prints exactly one line "everos cloud flow ok"; a failure names the step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from everos_cloud import EverOS, EverOSAPIError
from everos_cloud.exceptions import ApiException
from everos_cloud.models import (
    AddInput,
    Content,
    Data,
    Data1,
    ExplicitInfoData,
    ExplicitInfoPatch,
    FlushInput,
    ImplicitTraitData,
    MessageItem,
)

TIMESTAMP_MS = 1766041646311


class FlowFailure(AssertionError):
    pass


_step = "start"


def at(step: str) -> None:
    global _step
    _step = step


def show(obj: Any) -> str:
    if hasattr(obj, "to_dict"):
        obj = obj.to_dict()
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return text if len(text) <= 3000 else text[:3000] + "...(cut)"


def check(condition: bool, what: str, got: Any = None) -> None:
    if not condition:
        raise FlowFailure(f"[{_step}] {what}" + (f"; got {show(got)}" if got is not None else ""))


def refused(call: Any, status: int, field: str) -> None:
    try:
        call()
    except (EverOSAPIError, ApiException) as exc:  # the facade's, the generated client's
        check(exc.status == status, f"expected HTTP {status}", exc.status)
        check(field in str(exc.body), f"the error should name {field!r}", exc.body)
        return
    raise FlowFailure(f"[{_step}] the request was accepted; expected HTTP {status}")


def run(args: argparse.Namespace) -> None:
    client = EverOS(api_key=args.api_key, host=args.base_url)
    other = EverOS(api_key=args.other_key, host=args.base_url)
    user, session = args.user, f"{args.user}-s1"

    at("object/sign + upload: the facade presigns, POSTs the file, returns its key")
    key = client.upload(args.notes, file_type="file")
    check(key.startswith("uploads/") and key.endswith("/notes.txt"), "an object key", key)
    signed = client.presign([{"file_id": "a", "file_name": "a.png", "file_type": "image"}])
    check(signed.object_list[0].object_signed_info.max_size == 10 * 1024 * 1024,
          "an image's limit is 10 MB", signed)

    at("async add: 202 queued, with its task")
    added = client.add(session, [
        {"sender_id": user, "sender_name": "Dana", "role": "user", "timestamp": TIMESTAMP_MS,
         "content": "I moved to Porto last spring and I teach piano."},
        {"sender_id": "assistant", "role": "assistant", "timestamp": TIMESTAMP_MS + 1,
         "content": "Porto is lovely. How many students do you have?"},
        {"sender_id": user, "sender_name": "Dana", "role": "user",
         "timestamp": TIMESTAMP_MS + 2, "content": [
             {"type": "text", "text": "Here are my notes."},
             {"type": "doc", "uri": key, "name": "notes.txt"}]}])
    check(added.status == "queued" and added.message_count == 3, "queued, 3 messages", added)
    check(bool((added.additional_properties or {}).get("task_id")), "the add's task", added)

    at("flush waits for the session's add")
    flushed = client.flush(session)
    check(flushed.status == "extracted", "flush should wait and answer extracted", flushed)
    check(client.flush(session).status == "no_extraction", "then nothing is pending")

    at("search by user")
    found = client.search("Where does Dana live?", user_id=user, top_k=5)
    episodes = found.episodes or []
    check(any("Porto" in e.episode for e in episodes), "an episode about Porto", found)
    check(all(e.user_id == user and e.session_id == session and e.score is not None
              for e in episodes), "episodes carry their owner, session and score", found)
    found = client.search("locker combination", user_id=user)
    check(any("2468" in e.episode for e in found.episodes or []),
          "the uploaded notes should be searchable", found)

    at("sync add through the generated client: 200 extracted")
    response = client.memory.add_memory_with_http_info(AddInput(
        session_id=session, async_mode=False, messages=[MessageItem(
            sender_id=user, role="user", timestamp=TIMESTAMP_MS + 3,
            content=Content("I play the cello on weekends."))]))
    check(response.status_code == 200 and response.data.data.status == "extracted",
          "a sync add answers 200 extracted", response.data)
    check(bool(response.data.request_id), "the envelope's request_id", response.data)

    at("get episodes, paged")
    page = client.get("episode", user_id=user, page=1, page_size=2, sort_order="asc")
    check(page.count == 2 and page.total_count >= 3 and len(page.episodes) == 2,
          "get should page the episodes", page)

    at("edit the profile: add, update, delete items")
    # The profile data goes in the SDK's own models: the facade turns a plain dict into
    # `data: null` (its anyOf model keeps no instance), which Engram refuses below.
    edited = client.edit(user, [
        {"action": "add", "type": "explicit_info", "data": Data(ExplicitInfoData(
            category="occupation", description="Dana teaches piano"))},
        {"action": "add", "type": "implicit_traits", "data": Data(ImplicitTraitData(
            trait="musical", description="plays several instruments"))}])
    check(edited.applied == 2 and edited.user_id == user and edited.version > 0,
          "both items applied", edited)
    item_id = edited.results[0].new_item_id
    check(bool(item_id), "an added item gets its id", edited)
    edited = client.edit(user, [
        {"action": "update", "type": "explicit_info", "item_id": item_id,
         "data": Data1(ExplicitInfoPatch(description="Dana teaches piano and cello"))}])
    check(edited.results[0].status == "applied", "update applied", edited)
    profile = client.get("profile", user_id=user)
    check(len(profile.profiles) == 1 and profile.profiles[0].user_id == user, "one profile",
          profile)
    explicit = profile.profiles[0].profile_data["explicit_info"]
    check(any(i["description"] == "Dana teaches piano and cello" for i in explicit),
          "the profile should hold the updated item", profile)
    found = client.search("music", user_id=user, include_profile=True)
    check(bool(found.profiles) and found.profiles[0].profile_data["implicit_traits"],
          "search with include_profile returns the profile", found)

    at("another tenant sees nothing and changes nothing")
    check(not (other.search("Porto", user_id=user).episodes or []), "no episodes", None)
    check(not (other.get("profile", user_id=user).profiles or []), "no profile", None)
    rejected = other.edit(user, [{"action": "delete", "type": "explicit_info",
                                  "item_id": item_id}])
    check(rejected.applied == 0 and rejected.results[0].status == "rejected",
          "another tenant's item id is not found", rejected)
    check(other.flush(session).status == "no_extraction", "another tenant's flush")

    at("agent memory: a trajectory becomes cases and skills")
    agent = f"{user}-bot"
    client.add(f"{session}-agent", async_mode=False, messages=[
        {"sender_id": user, "role": "user", "timestamp": TIMESTAMP_MS,
         "content": "Find a flight from SFO to JFK"},
        {"sender_id": agent, "role": "assistant", "timestamp": TIMESTAMP_MS + 1,
         "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {
             "name": "search_flights", "arguments": '{"from": "SFO", "to": "JFK"}'}}]},
        {"sender_id": "tool", "role": "tool", "timestamp": TIMESTAMP_MS + 2,
         "tool_call_id": "c1", "content": "UA 123 departs 9:05, $300"},
        {"sender_id": agent, "role": "assistant", "timestamp": TIMESTAMP_MS + 3,
         "content": "UA 123 at 9:05 costs $300."}])
    found = client.search("flight SFO JFK", agent_id=agent)
    check(any("search_flights" in c.approach for c in found.agent_cases or []),
          "an agent case", found)
    check(any(s.name == "search_flights" for s in found.agent_skills or []), "a skill", found)
    skills = client.get("agent_skill", agent_id=agent)
    check(bool(skills.agent_skills) and skills.agent_skills[0].agent_id == agent,
          "get agent_skill", skills)

    at("bad input: a 422 naming the field")
    refused(lambda: client.search("x", user_id=user, agent_id=agent), 422, "user_id")
    refused(lambda: client.get("profile", agent_id=agent), 422, "user_id")
    refused(lambda: client.edit(user, [{"action": "add", "type": "explicit_info", "data": Data(
        ExplicitInfoData(category="c", description=" "))}]), 422, "operations[0].data.description")
    refused(lambda: client.edit(user, [{"action": "add", "type": "explicit_info",
                                        "data": {"category": "c", "description": "d"}}]),
            422, "operations.0.add.data")
    refused(lambda: client.memory.flush_memory(FlushInput.model_construct(
        app_id="default", project_id="default", session_id="")), 422, "session_id")

    at("delete a session's memories, then the user's")
    deleted = client.delete(session_id=f"{session}-agent")
    check(deleted.filters == ["session_id"] and deleted.count >= 1, "session delete", deleted)
    check(not (client.search("flight", agent_id=agent).agent_cases or []),
          "the session's cases are gone", None)
    deleted = client.delete(user_id=user)
    check(deleted.filters == ["user_id"] and deleted.count >= 3, "user delete", deleted)
    check(not (client.search("Porto", user_id=user).episodes or []), "nothing left", None)
    check(not (client.get("profile", user_id=user).profiles or []), "no profile left", None)

    print("everos cloud flow ok")


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("--base-url", "--api-key", "--other-key", "--user", "--notes"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    start = time.monotonic()
    try:
        run(args)
    except FlowFailure as failure:
        print(f"FAILED {failure}", file=sys.stderr)
        return 1
    except Exception as exc:  # the SDK's own errors: name the step they happened in
        body = getattr(exc, "body", None)
        print(f"FAILED [{_step}] {type(exc).__name__}: {exc} {body or ''}", file=sys.stderr)
        raise
    print(f"({time.monotonic() - start:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
