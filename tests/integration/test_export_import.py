"""engram export / engram import against a real `engram serve`, through the CLI as a user
runs it: export → erase the user → import restores the same memories (values, history,
sources); a ChatGPT export imports with a progress bar on a terminal; an import killed
half-way and run again adds nothing twice; another tenant's key exports nothing of
this tenant."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import ROOT, EngramServer

pytestmark = pytest.mark.slow
FIXTURE = ROOT / "tests" / "fixtures" / "chatgpt_conversations.json"


def cli_env(server: EngramServer, key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env.update(PYTHONPATH=f"{ROOT / 'layers' / 'core'}:{ROOT}", ENGRAM_URL=server.base_url,
               ENGRAM_API_KEY=key or server.api_key)
    return env


def engram(server: EngramServer, *args: str, key: str | None = None,
           check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "engram.cli", *args], cwd=ROOT,
                          env=cli_env(server, key), capture_output=True, text=True,
                          timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def under_terminal(server: EngramServer, *args: str) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal (as in a shell): its exit code and all it drew."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, with the pty as its terminal
        env = cli_env(server)
        env.update(TERM="xterm-256color", COLUMNS="120")
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "engram.cli", *args], env)
    out = bytearray()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out.extend(chunk)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def export_records(server: EngramServer, user: str, key: str | None = None) -> list[dict]:
    records, cursor = [], None
    while True:
        body = {"user_id": user, "limit": 2, **({"cursor": cursor} if cursor else {})}
        data = server.post("export/memory", body, key=key).json()["data"]
        records += data["records"]
        cursor = data.get("next_cursor")
        if not cursor:
            return records


def add_sync(server: EngramServer, user: str, conversation: str, *turns: tuple[str, str]):
    response = server.post("add/message", {
        "user_id": user, "conversation_id": conversation, "async_mode": False,
        "info": {"source": "crm"},
        "messages": [{"role": "user", "content": text, "message_id": mid,
                      "chat_time": "2024-06-01T10:00:00Z"} for mid, text in turns]})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_export_erase_import_restores_the_same_memories(engram_server, tmp_path):
    user = "export-user-1"
    add_sync(engram_server, user, "c1", ("m1", "I live in Lisbon and I work as a nurse."),
             ("m2", "My daughter Maya plays the violin."))
    add_sync(engram_server, user, "c2", ("m3", "I am allergic to peanuts."))
    before = export_records(engram_server, user)
    assert len(before) >= 3
    # an edit gives one memory a history: its earlier value and the window it held in
    edited = before[0]
    response = engram_server.post("update/memory", {
        "memory_id": edited["id"], "content": edited["memory_value"] + " (confirmed)"})
    assert response.status_code == 200, response.text
    before = export_records(engram_server, user)
    with_history = [r for r in before if r["history"]]
    assert len(with_history) == 1 and with_history[0]["history"][0]["change"] == "edit"

    out = tmp_path / "export.jsonl"
    done = engram(engram_server, "export", "--user", user, "--out", str(out),
                  "--page-size", "2")
    assert f"exported {len(before)} memories" in done.stderr
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "engram-export" and header["version"] == 1
    assert header["user_id"] == user
    assert [json.loads(line) for line in lines[1:]] == before

    erased = engram_server.post("delete/memory", {"user_id": user}).json()["data"]
    assert erased["receipt"]["memories"] >= len(before)
    assert export_records(engram_server, user) == []

    done = engram(engram_server, "import", str(out))
    assert f"restored {len(before)} memories (0 already there)" in done.stderr
    after = export_records(engram_server, user)
    assert after == before  # ids, values, history windows, sources, info, times
    got = engram_server.post("search/memory", {"user_id": user, "query": "peanut allergy"})
    values = [m["memory_value"] for m in got.json()["data"]["memory_detail_list"]]
    assert any("peanuts" in v for v in values)  # indexed again, not only stored
    detail = requests_get(engram_server, f"get/memory/{with_history[0]['id']}")
    assert detail["history"][0]["memory_value"] == with_history[0]["history"][0]["memory_value"]

    again = engram(engram_server, "import", str(out))  # run twice: nothing written twice
    assert f"restored 0 memories ({len(before)} already there)" in again.stderr
    assert export_records(engram_server, user) == before


def requests_get(server: EngramServer, route: str) -> dict:
    import requests

    response = requests.get(f"{server.base_url}/{route}", headers=server.headers(), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_another_tenant_cannot_export_or_overwrite_this_tenants_user(engram_server, tmp_path):
    user = "export-user-2"
    add_sync(engram_server, user, "c1", ("m1", "I drive a red Volvo."))
    mine = export_records(engram_server, user)
    assert mine
    other = engram_server.other_key
    assert export_records(engram_server, user, key=other) == []
    out = tmp_path / "theirs.jsonl"
    engram(engram_server, "export", "--user", user, "--out", str(out), key=other)
    assert len(out.read_text().splitlines()) == 1  # the header, no memory

    # mem0's export routes: an export id of this tenant is not found with the other key
    created = engram_server_post_root(engram_server, "v1/exports/",
                                      {"schema": {"type": "object"}, "user_id": user})
    assert created.status_code == 200, created.text
    export_id = created.json()["id"]
    theirs = engram_server_post_root(engram_server, "v1/exports/get/",
                                     {"memory_export_id": export_id}, key=other)
    assert theirs.status_code == 404
    ours = engram_server_post_root(engram_server, "v1/exports/get/",
                                   {"memory_export_id": export_id})
    assert ours.status_code == 200
    assert [m["memory"] for m in ours.json()["memories"]] == \
        [r["memory_value"] for r in mine]

    # importing this tenant's records with the other key writes into the other tenant only
    response = engram_server.post("import/memory", {"records": mine}, key=other)
    assert response.status_code == 200
    assert export_records(engram_server, user) == mine
    assert [r["id"] for r in export_records(engram_server, user, key=other)] == \
        [r["id"] for r in mine]
    engram_server.post("delete/memory", {"user_id": user}, key=other)
    assert export_records(engram_server, user) == mine


def engram_server_post_root(server: EngramServer, path: str, body: dict,
                            key: str | None = None):
    import requests

    return requests.post(f"{server.root_url}/{path}", json=body, headers=server.headers(key),
                         timeout=30)


def test_chatgpt_export_imports_with_a_progress_bar(engram_server):
    user = "chatgpt-user-1"
    code, shown = under_terminal(engram_server, "import", str(FIXTURE), "--user", user,
                                 "--batch-size", "2", "--wait")
    assert code == 0, shown[-3000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    assert "importing" in plain
    assert "9/9 turns" in plain  # 10 shown turns, an assistant's tool call left out
    assert re.search(r"\d+\.\d turns/s", plain)
    assert "ETA" in plain and re.search(r"\d:\d\d:\d\d", plain)
    assert "\x1b[" in shown  # drawn live, with terminal control sequences
    assert "imported 9 turns in 5 adds (2 conversations)" in plain
    assert "tasks: 5 completed, 0 failed" in plain

    messages = engram_server.post("get/message", {
        "user_id": user, "conversation_id": "6659f2a0-1111-4abc-9def-0123456789ab"}
    ).json()["data"]["message_detail_list"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"].startswith("I'm flying to Lisbon on June 14")
    assert messages[0]["chat_time"] == 1717243210000  # the message's create_time
    assert all("OLD DRAFT" not in m["content"] for m in messages)  # not the shown branch
    found = engram_server.post("search/memory", {"user_id": user, "query": "shellfish"})
    values = [m["memory_value"] for m in found.json()["data"]["memory_detail_list"]]
    assert any("shellfish" in v for v in values)


def big_chatgpt_export(path: Path, conversations: int, turns: int) -> None:
    """A ChatGPT-shaped export of many short conversations (a linear tree each)."""
    data = []
    for c in range(conversations):
        mapping = {f"root-{c}": {"id": f"root-{c}", "message": None, "parent": None,
                                 "children": [f"c{c}-t0"]}}
        for t in range(turns):
            nid, parent = f"c{c}-t{t}", f"c{c}-t{t - 1}" if t else f"root-{c}"
            text = f"In project {c} step {t} I chose option {c * 7 + t}."
            message = {"id": nid, "author": {"role": ("user", "assistant")[t % 2]},
                       "create_time": 1717243200 + c * 3600 + t * 10,
                       "content": {"content_type": "text", "parts": [text]},
                       "metadata": {}, "recipient": "all"}
            mapping[nid] = {"id": nid, "parent": parent, "message": message,
                            "children": [f"c{c}-t{t + 1}"] if t + 1 < turns else []}
        data.append({"id": f"conv-{c}", "title": f"project {c}", "create_time": 1717243200,
                     "mapping": mapping, "current_node": f"c{c}-t{turns - 1}"})
    path.write_text(json.dumps(data))


def test_an_interrupted_import_resumes_without_duplicates(engram_server, tmp_path):
    source = tmp_path / "conversations.json"
    big_chatgpt_export(source, conversations=24, turns=6)
    user, clean = "chatgpt-resume-1", "chatgpt-resume-clean"
    args = [sys.executable, "-m", "engram.cli", "import", str(source), "--user", user,
            "--batch-size", "2"]
    first = subprocess.Popen(args, cwd=ROOT, env=cli_env(engram_server),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # killed once a few adds are in, well before the 72nd
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            got = engram_server.post("get/message", {"user_id": user,
                                                     "conversation_id": "conv-1"}).json()
            if got["data"]["message_detail_list"]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the first import never reached conversation 1")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    sent = [len(engram_server.post("get/message", {"user_id": user, "conversation_id":
            f"conv-{c}"}).json()["data"]["message_detail_list"]) for c in range(24)]
    assert 0 < sum(sent) < 24 * 6, sent  # stopped part-way

    engram(engram_server, "import", str(source), "--user", user, "--batch-size", "2",
           "--wait")
    engram(engram_server, "import", str(source), "--user", clean, "--batch-size", "2",
           "--wait")
    for c in range(24):
        got = engram_server.post("get/message", {"user_id": user, "conversation_id":
                                                 f"conv-{c}"}).json()["data"]
        ids = [m["message_id"] for m in got["message_detail_list"]]
        assert ids == [f"c{c}-t{t}" for t in range(6)]  # each once, in order
    resumed, once = export_records(engram_server, user), export_records(engram_server, clean)
    values = sorted((r["memory_type"], r["memory_value"]) for r in resumed)
    assert len(values) == len(set(values))  # no memory twice
    assert values == sorted((r["memory_type"], r["memory_value"]) for r in once)


def test_an_add_sent_again_answers_its_first_task(engram_server):
    """What resuming relies on: the same add (message ids + content) sent twice is one."""
    body = {"user_id": "replay-user", "conversation_id": "c1",
            "messages": [{"role": "user", "content": "I keep bees.", "message_id": "r1"}]}
    first = engram_server.post("add/message", body).json()["data"]
    second = engram_server.post("add/message", body).json()["data"]
    assert second["task_id"] == first["task_id"]
    engram_server.wait_task(first["task_id"])
    third = engram_server.post("add/message", body).json()["data"]  # after it completed
    assert third["task_id"] == first["task_id"]
    changed = {**body, "messages": [{**body["messages"][0], "content": "I keep wasps."}]}
    assert engram_server.post("add/message", changed).json()["data"]["task_id"] != \
        first["task_id"]


def test_locomo_and_longmemeval_files_import_through_the_cli(engram_server, tmp_path):
    locomo = tmp_path / "locomo.json"
    locomo.write_text(json.dumps([{"sample_id": "lc-1", "qa": [], "conversation": {
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [{"speaker": "Caroline", "dia_id": "D1:1",
                       "text": "I started pottery classes in Brighton."},
                      {"speaker": "Melanie", "dia_id": "D1:2", "text": "How fun!"}]}}]))
    done = engram(engram_server, "import", str(locomo), "--user", "locomo-user", "--wait")
    assert "imported 2 turns in 1 adds (1 conversations)" in done.stderr
    got = engram_server.post("get/message", {"user_id": "locomo-user",
                                             "conversation_id": "lc-1-session_1"}).json()
    messages = got["data"]["message_detail_list"]
    assert [m["message_id"] for m in messages] == ["lc-1:D1:1", "lc-1:D1:2"]
    assert messages[0]["content"] == "Caroline: I started pottery classes in Brighton."

    lme = tmp_path / "lme.json"
    lme.write_text(json.dumps([{
        "question_id": "lme-q1", "question_type": "single-session-user", "question": "?",
        "answer": "x", "question_date": "2023/05/30 (Tue) 23:42",
        "haystack_session_ids": ["sess-a"], "haystack_dates": ["2023/05/20 (Sat) 10:00"],
        "answer_session_ids": ["sess-a"],
        "haystack_sessions": [[{"role": "user", "content": "I adopted a cat named Miso."},
                               {"role": "assistant", "content": "Congratulations!"}]]}]))
    engram(engram_server, "import", str(lme), "--wait")  # the question id is the user
    got = engram_server.post("get/message", {"user_id": "lme-q1",
                                             "conversation_id": "sess-a"}).json()
    assert [m["message_id"] for m in got["data"]["message_detail_list"]] == \
        ["sess-a#0", "sess-a#1"]
