"""Async adds embed each turn once (retrieval/vectors.py): the accept's turn vectors are
kept with the request and mixed into the memories by the pipeline, which a sync add's
pipeline computes by the same call; so both modes embed the same texts, bar the fast-path
turns that have no turn text, and store the same vectors, bit for bit. Real services and
SQLite; fake embedders that count what they embed."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from tests.fakes.embedder import HashingEmbedder

from engram.api.memos.models import AddMessageRequest
from engram.api.memos.translate import accept_args
from engram.config import Settings
from engram.local import workflow as workflow_module
from engram.local.runtime import LocalRuntime, build_local_runtime
from engram.local.workflow import InProcessWorkflow
from engram.models.domain import Candidate, MemoryType, MessageRecord, Role, TaskRef
from engram.models.pipeline import IngestJob
from engram.retrieval.vectors import (
    RequestTurns,
    embed_turns,
    kept_turns,
    memory_vectors,
    turn_text,
)

TENANT = "t"
USER = "caroline-and-melanie"
LONG = ("Melanie: We spent the whole weekend at the lake with the kids, swimming in the "
        "mornings, grilling fish in the evenings and telling stories around the fire until "
        "late; the youngest finally learnt to paddle the canoe on her own, and my husband "
        "fixed the old dock that had been broken since last summer, so next year we can "
        "tie the boat there again. It was exhausting but wonderful.")
SESSIONS = [
    [("Caroline", "Caroline: I went to the LGBTQ support group yesterday and it was so "
                  "powerful."),
     ("Melanie", "Melanie: That's great! How did it go?"),
     ("Caroline", "Caroline: It went well. I love painting sunsets [image: a painting of "
                  "a sunset over a lake]"),
     ("Melanie", "Melanie: How long have you been painting?")],
    [("Melanie", "Melanie: I took the kids to the museum last Saturday."),
     ("Caroline", "Caroline: Nice! I love painting sunsets."),  # said before: dedupe
     ("Melanie", LONG),
     ("Caroline", "Caroline: I don't like painting sunsets anymore, I prefer portraits.")],
]


class CountingEmbedder(HashingEmbedder):
    """Hashed bag of words, plus a pull toward the other texts of the same call, as the
    int8 model's vectors move with their pass mates: equal bits need the same call."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.texts += list(texts)
        own = super().embed(texts)
        mixed = own + 0.1 * own.mean(axis=0)
        return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)


def ingest(runtime: LocalRuntime, async_mode: bool) -> None:
    task_ids = []
    for number, session in enumerate(SESSIONS):
        req = AddMessageRequest(user_id=USER, conversation_id=f"s{number}",
                                async_mode=async_mode, messages=[
                                    {"role": "user", "content": text, "name": speaker,
                                     "message_id": f"D{number}:{i}",
                                     "chat_time": f"2023-05-0{number + 1}T10:00:00Z"}
                                    for i, (speaker, text) in enumerate(session)])
        task_ids.append(runtime.services.ingest.accept(TENANT, *accept_args(req)).task_id)
    deadline = time.monotonic() + 30
    while any(runtime.services.tasks.get(TENANT, t).status.value != "completed"
              for t in task_ids):
        assert time.monotonic() < deadline, "tasks did not complete"
        time.sleep(0.01)


def indexed(data_dir: Path) -> dict[tuple, bytes]:
    """Every indexed memory's vector, by what the memory says and cites."""
    import json

    with sqlite3.connect(data_dir / "index.db") as db:
        rows = db.execute("SELECT vector, memory FROM entries").fetchall()
    out = {}
    for vector, raw in rows:
        memory = json.loads(raw)
        out[(memory["memory_type"], memory["memory_value"], tuple(memory["sources"]))] = vector
    return out


@pytest.fixture
def runs(tmp_path):
    out = {}
    for mode in ("sync", "async"):
        embedder = CountingEmbedder()
        runtime = build_local_runtime(Settings(data_dir=tmp_path / mode), embedder=embedder)
        try:
            ingest(runtime, async_mode=mode == "async")
        finally:
            runtime.close()
        out[mode] = (embedder.texts, indexed(tmp_path / mode))
    return out


def test_an_async_add_embeds_each_turn_once(runs):
    sync_texts, _ = runs["sync"]
    async_texts, _ = runs["async"]
    turns = [text for session in SESSIONS for _, text in session]
    # What only the fast path embeds: the turns with no statement to mix into a memory.
    questions_only = ["Melanie: How long have you been painting?"]
    assert Counter(async_texts) == Counter(sync_texts) + Counter(questions_only)
    records = [MessageRecord(tenant_id=TENANT, user_id=USER, conversation_id="c",
                             message_id=str(i), seq=i, role=Role.user, text=text,
                             speaker=text.split(":")[0]) for i, text in enumerate(turns)]
    for record in records:
        text = turn_text(record)
        assert async_texts.count(text) == (1 if text else 0), text
        assert record.text not in async_texts or record.text in questions_only
    # The preference dedupe refined is embedded anew, its new turn's vector reused.
    assert "Caroline loves painting sunsets, but caroline doesn't like painting sunsets " \
           "anymore, Caroline prefers portraits." in async_texts
    assert turn_text(records[2]) == "It went well. I love painting sunsets"  # no caption
    assert turn_text(records[6]).endswith("so next…")  # clipped, as the context is


def test_async_and_sync_adds_store_the_same_vectors(runs):
    _, sync_vectors = runs["sync"]
    _, async_vectors = runs["async"]
    # 7 statements, "How long have you been painting?" whole, and two episodes: Caroline's
    # first session and Melanie's second (Caroline's second says one thing twice, and
    # Melanie's first asks only)
    assert len(sync_vectors) == 10
    assert sum(kind == "LongTermMemory" and len(value.split(". ")) > 1
               for kind, value, _ in sync_vectors) == 2
    assert async_vectors == sync_vectors  # the same memories, each with the same bytes


def lisbon_job() -> tuple[list[MessageRecord], IngestJob]:
    """A one-turn request and its job."""
    messages = [MessageRecord(tenant_id=TENANT, user_id=USER, conversation_id="c",
                              message_id="m", seq=0, role=Role.user,
                              text="Caroline: I moved to Lisbon.", speaker="Caroline")]
    return messages, IngestJob(task_id="x", tenant_id=TENANT, user_id=USER,
                               conversation_id="c", messages=messages)


def test_turn_vectors_of_another_model_are_embedded_again():
    embedder = CountingEmbedder()
    messages, job = lisbon_job()
    job.turn_vectors = kept_turns(embedder, embed_turns(embedder, messages))
    assert embedder.texts == ["I moved to Lisbon."]
    kept = RequestTurns(embedder, job)
    assert kept["I moved to Lisbon."].tobytes() == embedder.embed(
        ["I moved to Lisbon."])[0].tobytes()
    embedder.texts.clear()
    assert list(kept) == ["I moved to Lisbon."] and embedder.texts == []  # read back

    other = CountingEmbedder()
    other.model_name = "another-model"
    assert list(RequestTurns(other, job)) == ["I moved to Lisbon."]
    assert other.texts == ["I moved to Lisbon."]


def test_a_sync_adds_turns_are_known_before_embedding_and_embedded_beside_its_memories():
    embedder = CountingEmbedder()
    messages, job = lisbon_job()
    turns = RequestTurns(embedder, job)
    assert "I moved to Lisbon." in turns and len(turns) == 1 and embedder.texts == []
    memory = Candidate(memory_type=MemoryType.user, memory_key="Lisbon",
                       memory_value="Caroline moved to Lisbon.", context="I moved to Lisbon.")
    mixed = memory_vectors(embedder, [memory], turns)
    # two calls, the memory's and the request's turns' (the one an async accept makes)
    assert sorted(embedder.texts) == ["Caroline moved to Lisbon.", "I moved to Lisbon."]
    alone = CountingEmbedder()
    expected = memory_vectors(alone, [memory], embed_turns(alone, messages))
    assert mixed.tobytes() == expected.tobytes()


def test_a_users_async_tasks_run_in_the_order_they_were_started(monkeypatch):
    """Two workers, one user: a worker must not take a later task while the earlier one
    waits on the user's lock (dedupe would then see the sessions out of order)."""
    ran: list[str] = []
    running = threading.Lock()

    def pipeline(deps, ref):
        if ref.user_id != USER:
            ran.append(ref.task_id)
            return
        assert running.acquire(blocking=False), "two tasks of one user at once"
        try:
            time.sleep(0.002 * (int(ref.task_id.split("-")[1]) % 3))
            ran.append(ref.task_id)
        finally:
            running.release()

    monkeypatch.setattr(workflow_module, "run_pipeline", pipeline)
    workflow = InProcessWorkflow(deps=None, workers=2)  # type: ignore[arg-type]
    started = [f"task-{i}" for i in range(40)]
    try:
        for task_id in started:
            workflow.start(TaskRef(tenant_id=TENANT, task_id=task_id, user_id=USER))
        workflow.start(TaskRef(tenant_id=TENANT, task_id="other", user_id="someone-else"))
        deadline = time.monotonic() + 20
        while len(ran) < len(started) + 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        workflow.shutdown()
    assert [t for t in ran if t != "other"] == started
    assert ran.index("other") < len(started)  # another user's task is not held up behind
