"""Drive mem0's platform client (PyPI mem0ai==2.2.1, `MemoryClient`) against an Engram
server, unmodified, through every method Engram serves:

    MEM0_TELEMETRY=False .venv-mem0/bin/python tests/compat/mem0_client_flow.py \
        --host http://127.0.0.1:PORT --api-key KEY --other-key KEY2 --user USER

ping (on creation), add (async, and sync), search with the filters DSL, get, get_all
(paged), update, history, feedback, batch_update, batch_delete, delete, delete_all,
users, delete_users, webhooks create / get / update / delete, and memory exports
create / get. Another tenant's key sees none of it. Success prints exactly
"mem0 client flow ok"; a failure raises FlowFailure naming the step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("MEM0_TELEMETRY", "False")

from mem0 import MemoryClient  # noqa: E402

TASK_TIMEOUT_S = 120.0


class FlowFailure(AssertionError):
    pass


_step = "start"


def at(step: str) -> None:
    global _step
    _step = step


def check(condition: bool, what: str) -> None:
    if not condition:
        raise FlowFailure(f"[{_step}] {what}")


def raises(call, status: int, what: str) -> str:
    try:
        call()
    except Exception as exc:  # mem0's exceptions carry the HTTP status
        code = getattr(exc, "status_code", None) or getattr(
            getattr(exc, "debug_info", None) or {}, "get", lambda *_: None)("status_code")
        check(code == status or str(status) in str(exc),
              f"{what}: expected HTTP {status}, got {type(exc).__name__}: {exc}")
        return str(exc)
    raise FlowFailure(f"[{_step}] {what}: no error")


def wait_for(client: MemoryClient, event_id: str) -> dict:
    deadline = time.monotonic() + TASK_TIMEOUT_S
    while time.monotonic() < deadline:
        status = client.client.get(f"/v1/event/{event_id}/").json()
        if status["status"] in ("SUCCEEDED", "FAILED"):
            return status
        time.sleep(0.2)
    raise FlowFailure(f"[{_step}] event {event_id} did not finish")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--other-key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--hook-url", required=True)
    args = parser.parse_args()
    user, agent = args.user, f"{args.user}-agent"

    at("ping")
    client = MemoryClient(api_key=args.api_key, host=args.host)  # calls /v1/ping/
    check(bool(client.project_id) and bool(client.org_id), "ping names org and project")
    other = MemoryClient(api_key=args.other_key, host=args.host)
    try:
        MemoryClient(api_key="not-a-key", host=args.host)
        raise FlowFailure("[ping] a wrong key was accepted")
    except ValueError:
        pass

    at("add async")
    queued = client.add([{"role": "user", "content": "I live in Lisbon and I work as a "
                                                     "marine biologist."}],
                        user_id=user, agent_id=agent, metadata={"topic": "profile"})
    check(queued.get("status") == "PENDING" and queued.get("event_id"), f"queued {queued}")
    done = wait_for(client, queued["event_id"])
    check(done["status"] == "SUCCEEDED", f"event {done}")

    at("add sync")
    added = client.add("My favourite food is grilled sardines.", user_id=user,
                       metadata={"topic": "food"}, async_mode=False)
    check(any("sardines" in r["memory"] for r in added["results"]), f"sync add {added}")

    at("search")
    found = client.search("Where does the user live?", filters={"user_id": user}, top_k=5)
    check(any("Lisbon" in r["memory"] for r in found["results"]), f"search {found}")
    lisbon = next(r for r in found["results"] if "Lisbon" in r["memory"])
    check(lisbon["user_id"] == user and lisbon["metadata"] == {"topic": "profile"},
          f"entities and metadata {lisbon}")
    food = client.search("food", filters={"AND": [{"user_id": user},
                                                  {"metadata": {"topic": "food"}}]})
    check(food["results"] and all(r["metadata"]["topic"] == "food" for r in food["results"]),
          f"metadata filter {food}")
    notfood = client.search("food", filters={"AND": [{"user_id": user}, {"NOT": [
        {"metadata": {"topic": {"in": ["food"]}}}]}]})
    check(all(r["metadata"]["topic"] != "food" for r in notfood["results"]),
          f"NOT filter {notfood}")
    ored = client.search("lives", filters={"AND": [{"user_id": user}, {"OR": [
        {"agent_id": agent}, {"created_at": {"gte": "2000-01-01"}}]}]})
    check(ored["results"], "OR filter")
    icont = client.search("lives", filters={"AND": [{"user_id": user}, {
        "metadata": {"topic": {"icontains": "PROF"}}}]})
    check(icont["results"] and all(r["metadata"]["topic"] == "profile"
                                   for r in icont["results"]), f"icontains {icont}")
    raises(lambda: client.search("x", filters={"colour": "red", "user_id": user}), 422,
           "an unknown filter field")
    raises(lambda: client.search("x", filters={"metadata": {"a": 1}}), 422,
           "a filter without an entity")
    check(other.search("Lisbon", filters={"user_id": user})["results"] == [],
          "another tenant finds nothing")
    check(client.search("Lisbon", filters={"user_id": f"{user}-other"})["results"] == [],
          "another user finds nothing")
    check(client.get_all(filters={"user_id": f"{user}-other"})["count"] == 0,
          "another user lists nothing")

    at("get_all")
    page = client.get_all(filters={"user_id": user}, page=1, page_size=1)
    check(page["count"] >= 2 and len(page["results"]) == 1 and page["next"], f"page {page}")
    page2 = client.get_all(filters={"user_id": user}, page=2, page_size=1)
    check(page2["results"][0]["id"] != page["results"][0]["id"], "page 2 differs")

    at("get")
    memory_id = lisbon["id"]
    got = client.get(memory_id)
    check(got["id"] == memory_id and "Lisbon" in got["memory"], f"get {got}")
    raises(lambda: other.get(memory_id), 404, "another tenant's memory")

    at("update + history")
    updated = client.update(memory_id, text="I live in Porto and I work as a marine "
                                            "biologist.")
    check("Porto" in updated["memory"], f"update {updated}")
    history = client.history(memory_id)
    check([h["event"] for h in history] == ["ADD", "UPDATE"], f"history {history}")
    check("Lisbon" in history[1]["old_memory"] and "Porto" in history[1]["new_memory"],
          f"history values {history}")
    raises(lambda: client.update(memory_id, text="x", expiration_date="2030-01-01"), 422,
           "expiration_date is named")

    at("feedback")
    fb = client.feedback(memory_id, feedback="POSITIVE", feedback_reason="accurate")
    check(fb["feedback"] == "POSITIVE", f"feedback {fb}")

    at("batch")
    ids = [r["id"] for r in client.get_all(filters={"user_id": user})["results"]]
    out = client.batch_update([{"memory_id": ids[0], "metadata": {"topic": "batched"}}])
    check("1" in out["message"], f"batch_update {out}")
    check(client.get(ids[0])["metadata"] == {"topic": "batched"}, "batched metadata")
    raises(lambda: client.batch_delete([{"memory_id": "no-such-memory"}]), 404,
           "batch_delete of an unknown id")

    at("users")
    users = client.users()
    names = {(e["type"], e["name"]) for e in users["results"]}
    check(("user", user) in names and ("agent", agent) in names, f"users {users}")
    check(all(e["name"] != user for e in other.users()["results"]), "other tenant's users")

    at("webhooks")
    project = client.project_id
    hook = client.create_webhook(url=args.hook_url, name="flow", project_id=project,
                                 event_types=["memory_add", "memory_delete"])
    check(hook["secret"] and hook["event_types"] == ["memory_add", "memory_delete"],
          f"create_webhook {hook}")
    hooks = client.get_webhooks(project_id=project)
    check([h["webhook_id"] for h in hooks] == [hook["webhook_id"]], f"get_webhooks {hooks}")
    changed = client.update_webhook(hook["webhook_id"], name="renamed",
                                    event_types=["memory_update"])
    check(changed["name"] == "renamed" and changed["event_types"] == ["memory_update"],
          f"update_webhook {changed}")
    raises(lambda: other.get_webhooks(project_id=project), 404, "another tenant's project")
    raises(lambda: other.delete_webhook(hook["webhook_id"]), 404, "another tenant's hook")
    raises(lambda: client.create_webhook(url="http://169.254.169.254/x", name="meta",
                                         project_id=project, event_types=["memory_add"]),
           422, "a metadata address")
    raises(lambda: client.create_webhook(url=args.hook_url, name="cat", project_id=project,
                                         event_types=["memory_categorize"]),
           422, "memory_categorize is named")
    check("deleted" in client.delete_webhook(hook["webhook_id"])["message"], "delete_webhook")

    at("memory exports")
    schema = json.dumps({"title": "Profile", "type": "object",
                         "properties": {"city": {"type": "string"}}})
    created = client.create_memory_export(schema=schema, filters={"AND": [{"user_id": user}]})
    check(bool(created["id"]) and "received" in created["message"], f"export {created}")
    export = client.get_memory_export(memory_export_id=created["id"])
    current = {r["id"] for r in client.get_all(filters={"user_id": user})["results"]}
    check({m["id"] for m in export["memories"]} == current and export["user_id"] == user,
          f"export holds the user's current memories {export}")
    moved = next(m for m in export["memories"] if m["id"] == memory_id)
    check("Porto" in moved["memory"] and "Lisbon" in moved["history"][0]["memory"],
          f"the updated memory with its history {moved}")
    check(export["schema"] == json.loads(schema), "the schema comes back with the export")
    check(client.get_memory_export(filters={"user_id": user})["id"] == created["id"],
          "the latest export of the user")
    raises(lambda: other.get_memory_export(memory_export_id=created["id"]), 404,
           "another tenant's export")
    raises(lambda: client.create_memory_export(schema=schema), 422, "an export names a user")

    at("delete")
    check("deleted" in client.delete(ids[-1])["message"], "delete")
    raises(lambda: client.get(ids[-1]), 404, "a deleted memory")
    check(client.history(ids[-1])[-1]["event"] == "DELETE", "history ends DELETE")
    remaining = client.get_all(filters={"user_id": user})["results"]
    if remaining:
        out = client.batch_delete([{"memory_id": remaining[0]["id"]}])
        check("1" in out["message"], f"batch_delete {out}")

    at("delete_all")
    client.add("I have a cat named Mochi.", user_id=user, run_id="run-1", async_mode=False)
    check(client.get_all(filters={"AND": [{"user_id": user}, {"run_id": "run-1"}]})["count"],
          "run memory listed")
    client.delete_all(user_id=user, run_id="run-1")
    check(client.get_all(filters={"AND": [{"user_id": user}, {"run_id": "run-1"}]})["count"]
          == 0, "delete_all by run")

    at("delete_users")
    client.delete_users(user_id=user)
    check(client.get_all(filters={"user_id": user})["count"] == 0, "user erased")
    check(all(e["name"] != user for e in client.users()["results"]), "user gone")
    raises(lambda: client.delete_users(user_id=user), 404, "deleting it again")
    client.delete_users(agent_id=agent)

    at("unsupported")
    raises(lambda: client.add("x", user_id=user, infer=False), 422, "infer=false is named")
    raises(lambda: client.add("x", user_id=user, custom_instructions="be brief"), 422,
           "custom_instructions is named")
    raises(lambda: client.get_summary(), 404, "get_summary is not a route")

    print("mem0 client flow ok")


if __name__ == "__main__":
    try:
        main()
    except FlowFailure as failure:
        print(f"FAILED {failure}", file=sys.stderr)
        sys.exit(1)
