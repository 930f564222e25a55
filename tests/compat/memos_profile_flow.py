"""Drive the rest of MemOS's official Python client (PyPI memoryos==2.0.33) against an
Engram server: bind_profile_template, edit_profile, delete_profile (and the profiles
search_memory / get_memory carry), extract_memory, rerank and chat (whole and streamed).

Run with the test-only virtualenv (tests/compat/setup_venv.sh makes it), against a
server whose LLM is the scripted chat-completions endpoint of
tests/integration/test_memos_client_more.py:

    .venv-compat/bin/python tests/compat/memos_profile_flow.py \
        --base-url http://127.0.0.1:PORT/v1 --api-key KEY --other-api-key KEY2 --user USER

Templates are made with a plain POST to add/profile_template (MemOS's route; the client
has no method for it). Every other step goes through the client, whose own models parse
what they can; each step checks the content on top. Success prints exactly one line
"memos profile flow ok".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import memos_client_flow as first_flow
from memos_client_flow import (  # the same helpers as the first flow
    FlowFailure,
    _isolate_memos_import,
    at,
    check,
    describe,
    fields,
    ok_envelope,
    show,
    wait_completed,
)

CONVERSATION_ID = "profile-0610"
TEMPLATE = {"Basic Info": {"Name": {"value": "", "algorithm_updatable": True},
                           "City": {"value": "", "algorithm_updatable": True},
                           "Occupation": {"value": "", "algorithm_updatable": True}},
            "Service Preferences": {"Contact time": {"value": "Weekday daytime",
                                                     "algorithm_updatable": True}},
            "Interests": {"Favourite sport": {"value": "", "algorithm_updatable": True}}}
ABOUT_ME = [{"role": "user", "content": "My name is Alice Chen."},
            {"role": "assistant", "content": "Nice to meet you, Alice."},
            {"role": "user", "content": "I live in Berlin."},
            {"role": "user", "content": "I work as a nurse at the city hospital."},
            {"role": "user", "content": "I play badminton every Sunday."}]
DOCUMENTS = ["The user likes badminton", "The user is a backend developer in Hangzhou",
             "The user prefers short replies", "The user has a business trip to Beijing"]


def field(profile: dict, *path: str) -> dict:
    found = [f for f in profile.get("fields", []) if f.get("path") == list(path)]
    if not found:
        raise FlowFailure(f"the profile has no field {'/'.join(path)}: {show(profile)}")
    return found[0]


def http_status(call: Any) -> int | None:
    """The HTTP status the client's call failed with (it retries, then re-raises), or
    None when it succeeded."""
    try:
        call()
    except Exception as exc:  # requests' HTTPError, after the client's retries
        response = getattr(exc, "response", None)
        return getattr(response, "status_code", -1)
    return None


def run(base_url: str, api_key: str, other_key: str, user: str) -> None:
    _isolate_memos_import()
    import requests  # noqa: PLC0415 (the client's own dependency)
    from memos.api.client import MemOSClient  # noqa: PLC0415 (after the env is set)

    client = MemOSClient(api_key=api_key, base_url=base_url)
    other_tenant = MemOSClient(api_key=other_key, base_url=base_url)
    stranger = f"{user}-stranger"

    # 0. a template (MemOS's add/profile_template route; not a client method)
    step = at("add/profile_template")
    made = requests.post(f"{base_url}/add/profile_template", timeout=30,
                         headers=client.headers,
                         data=json.dumps({"name": "Customer profile", "metadata": TEMPLATE}))
    check(made.status_code == 200, step, f"HTTP {made.status_code}", made.text)
    template_id = made.json()["data"]["profile_template_id"]

    # 1. bind_profile_template; another tenant cannot bind it (404)
    step = at("bind_profile_template")
    bound = client.bind_profile_template(
        bind_list=[{"user_id": user, "profile_template_id": template_id}])
    check(isinstance(bound, dict), step, "expected a dict", bound)
    ok_envelope(bound, step)
    check(bound["data"]["success"] is True, step, "data.success is not true", bound)
    status = http_status(lambda: other_tenant.bind_profile_template(
        bind_list=[{"user_id": user, "profile_template_id": template_id}]))
    check(status == 404, step, f"another tenant binding the template got {status}, not 404")

    # 2. memories fill the profile: search_memory and get_memory carry it
    step = at("add_message")
    add = client.add_message(messages=ABOUT_ME, user_id=user,
                             conversation_id=CONVERSATION_ID, async_mode=True)
    ok_envelope(add, step)
    wait_completed(client, add.task_id, at("get_task_status(add)"))
    step = at("search_memory(profile)")
    found = client.search_memory(query="Where does the user live?", user_id=user,
                                 conversation_id=CONVERSATION_ID)
    ok_envelope(found, step)
    profiles = [fields(p) for p in found.data.profile_detail_list or []]
    check(len(profiles) == 1, step, "expected one profile in profile_detail_list", found)
    profile = profiles[0]
    check(profile.get("profile_template_id") == template_id, step, "wrong template", profile)
    check(field(profile, "Basic Info", "Name")["value"] == "Alice Chen", step,
          "Name is not filled from the memories", profile)
    check(field(profile, "Basic Info", "City")["value"] == "Berlin", step,
          "City is not filled from the memories", profile)
    check(field(profile, "Basic Info", "Occupation")["value"] == "nurse", step,
          "Occupation is not filled from the memories", profile)
    # a field no name-based rule reads: filled by the server's LLM after the add's task
    sport = field(profile, "Interests", "Favourite sport")
    check(sport["value"] == "badminton" and sport["source"] == "memory"
          and sport.get("memory_id"), step, "the LLM did not fill Favourite sport", profile)
    listed = client.get_memory(user_id=user, page=1, size=10)
    ok_envelope(listed, step)
    check([fields(p).get("id") for p in listed.data.profile_detail_list or []]
          == [profile["id"]], step, "get_memory does not carry the profile", listed)
    step = at("search_memory(another user)")
    other = client.search_memory(query="Where does the user live?", user_id=stranger)
    ok_envelope(other, step)
    check(not other.data.profile_detail_list, step, "another user sees a profile", other)

    # 3. edit_profile: a locked value wins over the memories; remove_fields drops one
    step = at("edit_profile")
    edited = client.edit_profile(
        profile_template_id=template_id, user_id=user,
        metadata={"Basic Info": {"City": {"value": "Shanghai", "algorithm_updatable": False}}},
        remove_fields=["Service Preferences.Contact time"])
    ok_envelope(edited, step)
    check(edited["data"]["success"] is True, step, "data.success is not true", edited)
    found = client.search_memory(query="Where does the user live?", user_id=user)
    profile = fields(found.data.profile_detail_list[0])
    check(field(profile, "Basic Info", "City")["value"] == "Shanghai", step,
          "the edited City does not show", profile)
    check("Service Preferences" not in profile.get("metadata", {}), step,
          "the removed field is still there", profile)
    status = http_status(lambda: client.edit_profile(
        profile_template_id=template_id, user_id=stranger,
        metadata={"Basic Info": {"Name": {"value": "x"}}}))
    check(status == 404, step, f"editing another user's (unbound) profile got {status}")

    # 4. delete_profile: gone; deleting it again, or another tenant's, is a 404
    step = at("delete_profile")
    status = http_status(lambda: other_tenant.delete_profile(
        profile_template_id=template_id, user_id=user))
    check(status == 404, step, f"another tenant deleting the profile got {status}")
    deleted = client.delete_profile(profile_template_id=template_id, user_id=user)
    ok_envelope(deleted, step)
    found = client.search_memory(query="Where does the user live?", user_id=user)
    check(not found.data.profile_detail_list, step, "the deleted profile still shows", found)
    status = http_status(lambda: client.delete_profile(profile_template_id=template_id,
                                                       user_id=user))
    check(status == 404, step, f"deleting it again got {status}, not 404")

    # 5. extract_memory: candidates back, nothing stored
    step = at("extract_memory")
    before = client.get_memory(user_id=user, page=1, size=50).data.total
    extracted = client.extract_memory(messages=[
        {"role": "user", "content": "My name is Bob Li and I live in Hangzhou."},
        {"role": "user", "content": "I prefer short answers."}],
        extraction_types=["memory", "preference"])
    ok_envelope(extracted, step)
    data = extracted["data"]
    values = " ".join(m["memory_value"] for m in data["memory_detail_list"])
    check("Bob Li" in values and "Hangzhou" in values, step, "facts not extracted", data)
    check(any("short answers" in p["preference"] for p in data["preference_detail_list"]),
          step, "preference not extracted", data)
    check(client.get_memory(user_id=user, page=1, size=50).data.total == before, step,
          "extract_memory stored something")

    # 6. rerank: indices and scores, best first
    step = at("rerank")
    ranked = client.rerank(query="What sport does the user like?", documents=DOCUMENTS,
                           model="memos-reranker-0.6b", top_n=3)
    check(isinstance(ranked, dict) and ranked.get("code") == 0, step, "bad answer", ranked)
    results = ranked["results"]
    check(len(results) == 3 and results[0]["index"] == 0, step,
          "the badminton document is not first", ranked)
    scores = [r["relevance_score"] for r in results]
    check(scores == sorted(scores, reverse=True), step, "scores not in order", ranked)

    # 7. chat: the answer uses the user's memories; the exchange is added as messages
    step = at("chat")
    answer = client.chat(user_id=user, conversation_id=CONVERSATION_ID,
                         query="Which city do I live in?", add_message_on_answer=True)
    ok_envelope(answer, step)
    check("Berlin" in answer.response, step, "the answer does not use the memories", answer)
    messages = client.get_message(user_id=user, conversation_id=CONVERSATION_ID)
    contents = [fields(m).get("content") for m in messages.messages]
    check("Which city do I live in?" in contents and answer.response in contents, step,
          "the exchange was not added as messages", messages)

    # 8. chat, streamed: SSE text pieces, then end
    step = at("chat(stream)")
    events = [json.loads(data) for data in client.chat(
        user_id=user, conversation_id=CONVERSATION_ID, query="Which city do I live in?",
        stream=True, add_message_on_answer=False)]
    texts = [e["data"] for e in events if e.get("type") == "text"]
    check(len(texts) > 1 and "Berlin" in "".join(texts), step, "no streamed answer", events)
    check(events[-1] == {"type": "end"}, step, "the stream does not end with end", events)

    # 9. delete_memory(user_id) erases the user's profiles with everything else
    step = at("delete_memory(user_id)")
    client.bind_profile_template(bind_list=[{"user_id": user,
                                             "profile_template_id": template_id}])
    wiped = client.delete_memory(user_id=user)
    ok_envelope(wiped, step)
    found = client.search_memory(query="Where does the user live?", user_id=user)
    check(not found.data.profile_detail_list, step, "a profile survived erasure", found)
    status = http_status(lambda: client.edit_profile(
        profile_template_id=template_id, user_id=user,
        metadata={"Basic Info": {"Name": {"value": "x"}}}))
    check(status == 404, step, f"editing the erased profile got {status}, not 404")

    print("memos profile flow ok", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--other-api-key", required=True, help="a key of another tenant")
    parser.add_argument("--user", required=True, help="a user id no other test uses")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        run(args.base_url.rstrip("/"), args.api_key, args.other_api_key, args.user)
    except FlowFailure:
        raise
    except Exception as exc:
        raise FlowFailure(f"[{first_flow._current_step}] {describe(exc)}") from exc
    finally:
        print(f"took {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
