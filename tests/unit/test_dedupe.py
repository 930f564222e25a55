"""Dedupe through the real pipeline steps and stores, with scripted candidates."""

from __future__ import annotations

import pytest
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.extractor import ScriptedExtractor

from engram.adapters.file_object_store import FileObjectStore
from engram.adapters.local_index import LocalMemoryIndex
from engram.adapters.sqlite_store import SqliteStore
from engram.config import Limits
from engram.models.api import AddMessageRequest, FeedbackRequest
from engram.models.domain import Candidate, MemoryStatus, MemoryType, MessageRecord, TaskRef
from engram.services.dedupe import content_hash, corrected, refine
from engram.services.ingest import IngestService
from engram.services.pipeline import PipelineDeps, run_pipeline


def as_candidate(message: MessageRecord) -> list[Candidate]:
    """'pref+: x' / 'pref-: x' → a preference; anything else → a user fact."""
    text = message.text
    if text.startswith(("pref+:", "pref-:")):
        return [Candidate(memory_type=MemoryType.preference, memory_key="Food preference",
                          memory_value=text[6:].strip(), sources=[message.message_id],
                          polarity="positive" if text[4] == "+" else "negative",
                          preference_type="explicit", event_time=message.chat_time)]
    return [Candidate(memory_type=MemoryType.user, memory_key="Fact", memory_value=text,
                      sources=[message.message_id], event_time=message.chat_time)]


class Harness:
    def __init__(self, tmp_path):
        self.store = SqliteStore(tmp_path / "db.sqlite")
        self.index = LocalMemoryIndex(None)
        self.deps = PipelineDeps(objects=FileObjectStore(tmp_path / "objects"), tasks=self.store,
                                 memories=self.store, index=self.index,
                                 embedder=HashingEmbedder(),
                                 extractor=ScriptedExtractor(as_candidate))
        run = lambda ref: run_pipeline(self.deps, ref)  # noqa: E731
        self.ingest = IngestService(
            objects=self.deps.objects, tasks=self.store, messages=self.store,
            memories=self.store, index=self.index, embedder=self.deps.embedder,
            workflow=type("Now", (), {"start": lambda _, ref: run(ref)})(), run_now=run,
            limits=Limits())

    def add(self, *texts: str, times: list[str] | None = None, async_mode: bool = False):
        times = times or [None] * len(texts)
        messages = [{"role": "user", "content": t, "chat_time": at}
                    for t, at in zip(texts, times, strict=True)]
        req = AddMessageRequest(user_id="u", conversation_id="c", async_mode=async_mode,
                                messages=messages)
        data = self.ingest.add_messages("t", req)
        task = self.store.get("t", data.task_id)
        assert task.status == "completed", task.error
        return task.memory_views.model_dump()

    def active(self, memory_type: MemoryType):
        return self.store.list_active("t", "u", [memory_type], 0, 100).items


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path)
    yield harness
    harness.store.close()


def test_exact_duplicate_is_a_noop(h):
    h.add("The user keeps bees")
    views = h.add("the user keeps bees!")
    assert views["noop"] == 1 and views["added"] == []
    assert len(h.active(MemoryType.user)) == 1


def test_near_duplicate_updates_the_existing_memory(h):
    h.add("The user keeps three bee hives on the roof of the house in Lisbon")
    first = h.active(MemoryType.user)[0]
    views = h.add("The user keeps three bee hives on the roof of the house in Lisbon today")
    assert views["updated"] == [first.id] and views["added"] == []
    (memory,) = h.active(MemoryType.user)
    assert memory.memory_value.endswith("today") and memory.version == 2
    assert memory.history[0].memory_value == first.memory_value
    assert memory.history[0].change == "update"


def test_rule_decisions_are_reported_in_the_status(h):
    first = h.add("The user keeps three bee hives on the roof of the house in Lisbon")
    (added,) = first["added"]
    assert first["decisions"] == [{"action": "add", "memory_id": added,
                                   "reason": "new information", "by": "rules"}]
    views = h.add("The user keeps three bee hives on the roof of the house in Lisbon today",
                  "the user keeps three bee hives on the roof of the house in Lisbon today!")
    assert [(d["action"], d["memory_id"], d["by"]) for d in views["decisions"]] == [
        ("update", added, "rules"), ("noop", added, "rules")]
    assert views["decisions"][0]["reason"].startswith("near duplicate (cosine 0.9")
    assert views["decisions"][1]["reason"] == "the same content is stored already"


def test_opposite_preference_in_the_same_request_refines_the_older(h):
    views = h.add("pref+: The user likes spicy food",
                  "pref-: The user doesn't really like heavy oil such as spicy hot pot food",
                  times=["2025-09-12 08:00:00", "2025-09-25 12:00:00"])
    (pref,) = h.active(MemoryType.preference)
    assert pref.memory_value == ("The user likes spicy food, but the user doesn't really like "
                                 "heavy oil such as spicy hot pot food")
    assert views["added"] == [pref.id]
    (old,) = pref.history
    assert old.memory_value == "The user likes spicy food" and old.change == "supersede"
    assert old.valid_to == 1758801600000  # 2025-09-25 12:00 UTC: when it stopped holding
    assert pref.valid_from == old.valid_to and pref.polarity == "negative"


def test_reversed_preference_replaces_the_older_across_requests(h):
    h.add("pref+: The user likes spicy food")
    views = h.add("pref-: The user likes spicy food no more")
    (pref,) = h.active(MemoryType.preference)
    assert views["updated"] == [pref.id]
    assert pref.memory_value == "The user likes spicy food no more"
    assert [v.memory_value for v in pref.history] == ["The user likes spicy food"]


def test_unrelated_facts_are_both_added(h):
    views = h.add("The user lives in Lisbon", "The user owns a red bicycle")
    assert len(views["added"]) == 2 and len(h.active(MemoryType.user)) == 2


def test_sync_adds_skip_the_fast_path(h):
    views = h.add("The user speaks Finnish")
    assert views["working"] == [] and len(views["added"]) == 1
    assert h.store.list_active("t", "u", [MemoryType.working], 0, 10).items == []


def test_fast_path_turns_are_retired_when_the_task_completes(h):
    views = h.add("The user speaks Finnish", async_mode=True)
    assert views["working"]
    (working,) = h.store.get_many("t", views["working"])
    assert working.status == MemoryStatus.archived and working.valid_to
    assert h.active(MemoryType.working) == []


def test_feedback_corrects_the_closest_memory(h):
    h.add("The user chose the 7 Days Inn hotel in Guangzhou")
    original = h.active(MemoryType.user)[0]
    data = h.ingest.add_feedback("t", FeedbackRequest(
        user_id="u", feedback_content="The user chose the Hilton hotel in Guangzhou"))
    task = h.store.get("t", data.task_id)
    assert task.status == "completed" and task.memory_views.updated == [original.id]
    (memory,) = h.active(MemoryType.user)
    assert memory.memory_value == ("The user chose the Hilton hotel in Guangzhou "
                                   "(corrects: The user chose the 7 Days Inn hotel in Guangzhou).")
    assert memory.history[-1].change == "feedback"


def test_feedback_asking_to_forget_invalidates(h):
    h.add("The user chose the 7 Days Inn hotel in Guangzhou")
    data = h.ingest.add_feedback("t", FeedbackRequest(
        user_id="u", feedback_content="Please forget that the user chose the 7 Days Inn hotel"))
    task = h.store.get("t", data.task_id)
    assert task.memory_views.deleted and h.active(MemoryType.user) == []
    (gone,) = h.store.get_many("t", task.memory_views.deleted)
    assert gone.status == MemoryStatus.deleted and gone.history[-1].change == "delete"
    assert [d.model_dump() for d in task.memory_views.decisions] == [{
        "action": "delete", "memory_id": gone.id,
        "reason": "the user asked to forget it (feedback)", "by": "rules"}]


def test_failed_step_marks_the_task_failed_and_keeps_the_request(h, tmp_path):
    def broken(_message):
        raise RuntimeError("extractor exploded")

    h.deps.extractor = ScriptedExtractor(broken)
    req = AddMessageRequest(user_id="u", conversation_id="c", async_mode=False,
                            messages=[{"role": "user", "content": "hello there"}])
    data = h.ingest.add_messages("t", req)
    task = h.store.get("t", data.task_id)
    assert data.status == "failed" and "extract" in task.error and "exploded" in task.error
    h.deps.extractor = ScriptedExtractor(as_candidate)  # the endpoint is back: retry
    assert run_pipeline(h.deps, TaskRef(tenant_id="t", task_id=data.task_id, user_id="u")
                        ).status == "completed"


def test_content_hash_ignores_case_space_and_punctuation():
    assert content_hash(MemoryType.user, "The user  likes tea!") == \
        content_hash(MemoryType.user, "the user likes tea")
    assert content_hash(MemoryType.user, "tea") != content_hash(MemoryType.preference, "tea")


def test_refine_joins_in_the_input_language():
    zh = Candidate(memory_type=MemoryType.preference, memory_key="k", language="zh",
                   memory_value="但用户不太喜欢重油的")
    assert refine("用户喜欢吃辣的食物。", zh) == "用户喜欢吃辣的食物，但用户不太喜欢重油的"


def test_feedback_naming_the_wrong_value_corrects_the_memory_that_has_it(h):
    h.add("The user chose a window seat for the flight to Guangzhou",
          "The user chose 7 Days Inn for the trip to Guangzhou")
    by_value = {m.memory_value: m for m in h.active(MemoryType.user)}
    hotel = by_value["The user chose 7 Days Inn for the trip to Guangzhou"]
    data = h.ingest.add_feedback("t", FeedbackRequest(
        user_id="u", feedback_content="The user switched to Hilton, not 7 Days Inn"))
    assert h.store.get("t", data.task_id).memory_views.updated == [hotel.id]
    values = sorted(m.memory_value for m in h.active(MemoryType.user))
    assert values == ["The user chose a window seat for the flight to Guangzhou",
                      "The user switched to Hilton, not 7 Days Inn "
                      "(corrects: The user chose 7 Days Inn for the trip to Guangzhou)."]


def test_a_second_correction_does_not_nest_the_note():
    cand = Candidate(memory_type=MemoryType.user, memory_key="k",
                     memory_value="The user moved to Braga.")
    once = corrected("The user lives in Lisbon.", cand)
    assert once == "The user moved to Braga (corrects: The user lives in Lisbon)."
    assert corrected(once, cand.model_copy(update={"memory_value": "The user moved to Faro"})) \
        == "The user moved to Faro (corrects: The user moved to Braga)."


def test_the_turn_stays_findable_while_its_task_completes(h):
    """Between any two writes of the index step, a search finds the fast-path turn or
    the memory that replaced it."""
    from engram.models.api import SearchRequest
    from engram.services.search import SearchService

    search = SearchService(memories=h.store, index=h.index, embedder=h.deps.embedder)
    seen: list[list[str]] = []

    def probe() -> None:
        found = search.search("t", SearchRequest(query="Finnish", user_id="u"))
        seen.append([s.memory.memory_type.value for s in found.facts])

    class Probed:
        def __init__(self, inner, methods):
            self._inner, self._methods = inner, methods

        def __getattr__(self, name):
            attr = getattr(self._inner, name)
            if name not in self._methods:
                return attr

            def call(*args, **kwargs):
                result = attr(*args, **kwargs)
                probe()
                return result
            return call

    h.deps.memories = Probed(h.store, {"put_many"})
    h.deps.index = Probed(h.index, {"upsert", "remove"})
    h.add("The user speaks Finnish", async_mode=True)

    assert len(seen) >= 4 and all(seen), seen  # never an empty result along the way
    assert seen[0] == ["WorkingMemory"] and seen[-1] == ["UserMemory"]
