"""Conflict resolution by an LLM (scripted), through the dedupe planner and real local
stores: what the model is shown, and what its operations do to the memories."""

from __future__ import annotations

import pytest
from tests.fakes.embedder import HashingEmbedder, SameVectorEmbedder
from tests.fakes.language_model import ScriptedModel

from engram.adapters.local_index import LocalMemoryIndex
from engram.adapters.sqlite_store import SqliteStore
from engram.errors import LlmUnavailable
from engram.extraction.resolution import LlmConflictResolver
from engram.models.domain import Candidate, Memory, MemoryStatus, MemoryType
from engram.models.pipeline import DedupePlan, IngestJob
from engram.pipeline.dedupe import RESOLVER_FALLBACK, content_hash, plan_changes
from engram.retrieval.vectors import memory_vectors

SEPT_12 = 1757664000000  # 2025-09-12 08:00 UTC
SEPT_25 = 1758801600000  # 2025-09-25 12:00 UTC
MERGED = "The user likes spicy food but not heavy, oily dishes such as spicy hot pot"


def preference(value: str, polarity: str, event_time: int | None = None) -> Candidate:
    return Candidate(memory_type=MemoryType.preference, memory_key="Food preference",
                     memory_value=value, polarity=polarity, preference_type="explicit",
                     sources=["m2"], event_time=event_time)


def fact(value: str, key: str = "Fact", event_time: int | None = None) -> Candidate:
    return Candidate(memory_type=MemoryType.user, memory_key=key, memory_value=value,
                     sources=["m2"], event_time=event_time)


def op(op: str, candidate: int = 1, target: str | None = None, value: str | None = None,
       reason: str = "because") -> dict:
    return {"op": op, "candidate": candidate, "target": target, "value": value,
            "reason": reason}


class Stores:
    def __init__(self, tmp_path):
        self.store = SqliteStore(tmp_path / "db.sqlite")
        self.index = LocalMemoryIndex(None)
        self.embedder = HashingEmbedder()

    def remember(self, cand: Candidate, valid_from: int = SEPT_12) -> Memory:
        """A memory stored by an earlier task."""
        memory = Memory(tenant_id="t", user_id="u", memory_type=cand.memory_type,
                        memory_key=cand.memory_key, memory_value=cand.memory_value,
                        polarity=cand.polarity, preference_type=cand.preference_type,
                        sources=["m1"], valid_from=valid_from, event_time=valid_from,
                        content_hash=content_hash(cand.memory_type, cand.memory_value))
        self.store.put_many([memory])
        self.index.upsert([memory], memory_vectors(self.embedder, [memory]))
        return memory

    def plan(self, candidates: list[Candidate], llm: ScriptedModel,
             kind: str = "add") -> DedupePlan:
        job = IngestJob(task_id="task-2", tenant_id="t", user_id="u", conversation_id="c",
                        kind=kind, messages=[])
        return plan_changes(job, candidates, self.store, self.index, self.embedder,
                            resolver=LlmConflictResolver(llm))

    def apply(self, plan: DedupePlan) -> None:
        """What the index step does with a plan, as far as the store is concerned."""
        self.store.put_many([w.memory for w in plan.writes])

    def get(self, memory_id: str) -> Memory:
        (memory,) = self.store.get_many("t", [memory_id])
        return memory


@pytest.fixture
def s(tmp_path):
    stores = Stores(tmp_path)
    yield stores
    stores.store.close()


def prompt(llm: ScriptedModel, call: int = 0) -> tuple[str, str]:
    """(system, user) of one call."""
    messages = llm.calls[call][0]
    return messages[0]["content"], messages[1]["content"]


def test_the_prompt_lists_candidates_and_aliased_neighbours_not_ids(s):
    spicy = s.remember(preference("The user likes spicy food", "positive"))
    sweet = s.remember(preference("The user likes spicy food and sweet desserts", "positive"))
    llm = ScriptedModel({"operations": [op("noop", 1, "E1")]})
    s.plan([preference("The user doesn't really like heavy oil, such as spicy hot pot",
                       "negative", SEPT_25)], llm)

    _, user = prompt(llm)
    assert ("1. [PreferenceMemory] Food preference: The user doesn't really like heavy oil, "
            "such as spicy hot pot (said 2025-09-25)") in user
    assert "E1 [PreferenceMemory] The user likes spicy food" in user
    assert "E2 [PreferenceMemory]" in user and "(since 2025-09-12)" in user
    assert spicy.id not in user and sweet.id not in user
    assert llm.calls[0][1] == "ResolutionOutput"


def test_an_update_supersedes_with_the_merged_value_and_keeps_the_old_version(s):
    old = s.remember(preference("The user likes spicy food", "positive"))
    llm = ScriptedModel({"operations": [op("update", 1, "E1", MERGED,
                                           "newer preference qualifies the older")]})
    plan = s.plan([preference("The user doesn't really like heavy oil, such as spicy hot pot",
                              "negative", SEPT_25)], llm)
    s.apply(plan)

    memory = s.get(old.id)
    assert memory.memory_value == MERGED and memory.version == 2
    assert memory.status == MemoryStatus.activated and memory.valid_from == SEPT_25
    (past,) = memory.history
    assert past.memory_value == "The user likes spicy food" and past.change == "supersede"
    assert (past.valid_from, past.valid_to) == (SEPT_12, SEPT_25)
    assert past.reason == "newer preference qualifies the older" and past.task_id == "task-2"
    assert plan.updated == [old.id] and plan.added == []
    assert [d.model_dump() for d in plan.decisions] == [{
        "action": "update", "memory_id": old.id,
        "reason": "newer preference qualifies the older", "by": "llm"}]
    assert plan.usage.calls == 1 and plan.usage.prompt_tokens == 100
    write = next(w for w in plan.writes if w.memory.id == old.id)
    assert write.vector is not None  # re-embedded: the value changed


def test_a_delete_invalidates_and_keeps_the_memory(s):
    old = s.remember(fact("The user lives in Lisbon"))
    llm = ScriptedModel({"operations": [op("delete", 1, "E1", reason="moved away")]})
    plan = s.plan([fact("The user no longer lives in Lisbon", event_time=SEPT_25)], llm)
    s.apply(plan)

    memory = s.get(old.id)  # still there: invalidated, never erased
    assert memory.status == MemoryStatus.deleted and memory.valid_to == SEPT_25
    assert memory.memory_value == "The user lives in Lisbon"
    assert memory.history[-1].change == "delete" and memory.history[-1].reason == "moved away"
    assert plan.deleted == [old.id] and plan.added == []
    assert plan.decisions[0].action == "delete" and plan.decisions[0].by == "llm"
    assert s.store.list_active("t", "u", [MemoryType.user], 0, 10).items == []


def test_a_noop_writes_nothing(s):
    old = s.remember(fact("The user lives in Lisbon"))
    llm = ScriptedModel({"operations": [op("noop", 1, "E1", reason="already known")]})
    plan = s.plan([fact("The user lives in Lisbon, Portugal")], llm)

    assert plan.writes == [] and plan.noop == 1
    assert (plan.added, plan.updated, plan.deleted) == ([], [], [])
    assert plan.decisions[0].model_dump() == {"action": "noop", "memory_id": old.id,
                                              "reason": "already known", "by": "llm"}


def test_an_add_stores_the_candidate_as_a_new_memory(s):
    old = s.remember(fact("The user lives in Lisbon"))
    llm = ScriptedModel({"operations": [op("add", 1, reason="a second home")]})
    plan = s.plan([fact("The user also has a flat in Porto")], llm)
    s.apply(plan)

    (new_id,) = plan.added
    assert s.get(new_id).memory_value == "The user also has a flat in Porto"
    assert s.get(old.id).version == 1 and plan.decisions[0].by == "llm"
    assert {m.id for m in s.store.list_active("t", "u", [MemoryType.user], 0, 10).items} == \
        {old.id, new_id}


def test_a_candidate_left_out_of_the_reply_is_added_with_a_warning(s):
    old = s.remember(fact("The user lives in Lisbon"))
    llm = ScriptedModel({"operations": [op("noop", 1, "E1")]})
    plan = s.plan([fact("The user lives in Lisbon, Portugal"),
                   fact("The user lives in Lisbon with a cat")], llm)

    assert plan.noop == 1 and len(plan.added) == 1
    assert [d.action for d in plan.decisions] == ["noop", "add"]
    assert plan.decisions[0].memory_id == old.id
    (warning,) = plan.warnings
    assert "candidate 2 (of 2)" in warning and "added" in warning


def test_an_unknown_alias_or_candidate_is_dropped_with_a_warning(s):
    old = s.remember(fact("The user lives in Lisbon"))
    llm = ScriptedModel({"operations": [op("delete", 1, "E7"), op("noop", 4, "E1")]})
    plan = s.plan([fact("The user no longer lives in Lisbon")], llm)

    assert plan.deleted == [] and len(plan.added) == 1  # left without an operation: added
    assert s.store.get_many("t", [old.id])[0].status == MemoryStatus.activated
    assert any("'E7'" in w and "dropped" in w for w in plan.warnings)
    assert any("candidate 4" in w for w in plan.warnings)
    assert any("candidate 1 (of 1)" in w for w in plan.warnings)


def test_an_update_without_a_value_is_sent_back_to_repair(s):
    old = s.remember(fact("The user lives in Lisbon"))
    llm = ScriptedModel({"operations": [op("update", 1, "E1")]},
                        {"operations": [op("update", 1, "E1", "The user lives in Porto")]})
    plan = s.plan([fact("The user moved from Lisbon to Porto")], llm)

    assert len(llm.calls) == 2 and "update needs value" in llm.calls[1][0][-1]["content"]
    assert plan.updated == [old.id] and plan.usage.calls == 2 and plan.warnings == []


def test_a_reply_invalid_twice_falls_back_to_the_rules(s):
    old = s.remember(preference("The user likes spicy food", "positive"))
    llm = ScriptedModel("not json", {"operations": [op("update", 1, "E1")]})
    # (Worded so the word-hashing test embedder sees the shared topic, as MiniLM does.)
    plan = s.plan([preference("The user doesn't really like spicy food with heavy oil",
                              "negative", SEPT_25)], llm)
    s.apply(plan)

    assert plan.warnings == [RESOLVER_FALLBACK]
    assert plan.usage.calls == 2 and plan.usage.prompt_tokens == 200
    (decision,) = plan.decisions  # the rules refine an opposite preference on the topic
    assert decision.by == "rules" and decision.action == "update"
    assert s.get(old.id).memory_value == ("The user likes spicy food, but the user doesn't "
                                          "really like spicy food with heavy oil")


def test_the_rules_fallback_keeps_facts_naming_different_things_apart(s):
    """The rules that decide when the reply is unusable merge only what names the same."""
    s.embedder = SameVectorEmbedder()  # every memory a near duplicate by cosine
    louvre = s.remember(fact("The user visited the Louvre on 14 November 2023"))
    llm = ScriptedModel("not json", "still not json")
    plan = s.plan([fact("The user visited the Prado on 14 November 2023"),
                   fact("The user visited the Louvre with Anna on 14 November 2023")], llm)
    s.apply(plan)

    assert plan.warnings == [RESOLVER_FALLBACK]
    assert [(d.action, d.by) for d in plan.decisions] == [("add", "rules"), ("update", "rules")]
    (prado,) = plan.added
    assert s.get(prado).memory_value == "The user visited the Prado on 14 November 2023"
    assert plan.updated == [louvre.id]
    assert s.get(louvre.id).memory_value == ("The user visited the Louvre with Anna on "
                                             "14 November 2023")


def test_an_unavailable_llm_fails_the_step(s):
    s.remember(fact("The user lives in Lisbon"))
    llm = ScriptedModel(LlmUnavailable("endpoint down"))
    with pytest.raises(LlmUnavailable):
        s.plan([fact("The user moved from Lisbon to Porto")], llm)


def test_duplicates_and_far_candidates_never_reach_the_llm(s):
    stored = s.remember(fact("The user lives in Lisbon"))
    chess = fact("Plays chess on weekends", key="Hobby")  # no word in common: far from all
    silent = ScriptedModel()  # any call fails the test
    plan = s.plan([fact("the user lives in Lisbon!"), chess], silent)
    assert silent.calls == [] and plan.usage.calls == 0
    assert [(d.action, d.by) for d in plan.decisions] == [("noop", "rules"), ("add", "rules")]
    assert plan.decisions[0].memory_id == stored.id

    llm = ScriptedModel({"operations": [op("update", 1, "E1", "The user lives in Porto")]})
    plan = s.plan([fact("The user lives in Lisbon"), chess,
                   fact("The user moved from Lisbon to Porto"),
                   fact("The user moved from Lisbon to Porto")], llm)
    (call,) = llm.calls
    _, user = prompt(llm)
    assert "1. [UserMemory] Fact: The user moved from Lisbon to Porto" in user
    assert "2." not in user and "chess" not in user
    assert [(d.action, d.by) for d in plan.decisions] == [
        ("noop", "rules"), ("add", "rules"), ("update", "llm"), ("noop", "rules")]
    assert plan.decisions[3].memory_id is None  # repeats a candidate that stored nothing new


def test_two_candidates_changing_one_memory_build_on_each_other(s):
    old = s.remember(fact("The user lives in Lisbon"))
    llm = ScriptedModel({"operations": [
        op("update", 1, "E1", "The user lives in Porto"),
        op("update", 2, "E1", "The user lives in Porto, near the river")]})
    plan = s.plan([fact("The user moved from Lisbon to Porto", event_time=SEPT_12 + 1),
                   fact("The user lives in Lisbon no more; Porto, by the river",
                        event_time=SEPT_25)], llm)
    s.apply(plan)

    memory = s.get(old.id)
    assert memory.memory_value == "The user lives in Porto, near the river"
    assert memory.version == 3 and plan.updated == [old.id]
    assert [v.memory_value for v in memory.history] == ["The user lives in Lisbon",
                                                        "The user lives in Porto"]


def test_feedback_mode_reaches_the_prompt_and_the_history(s):
    old = s.remember(fact("The user chose the 7 Days Inn hotel in Guangzhou"))
    llm = ScriptedModel({"operations": [
        op("update", 1, "E1", "The user chose the Hilton hotel in Guangzhou",
           "corrected by the user")]})
    plan = s.plan([fact("The user chose the Hilton hotel in Guangzhou")], llm, kind="feedback")
    s.apply(plan)

    system, _ = prompt(llm)
    assert "Feedback mode" in system
    assert s.get(old.id).history[-1].change == "feedback"

    llm = ScriptedModel({"operations": [op("noop", 1, "E1")]})
    s.plan([fact("The user chose the Hilton hotel in Guangzhou, room 12")], llm)
    assert "Feedback mode" not in prompt(llm)[0]
