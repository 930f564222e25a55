"""ProfileService.fill_from_llm, with a scripted model: any field name filled from the
memories the reply cites, what it must not do (invent paths, cite unknown memories,
override a newer edit or a locked field), how a value goes when its memory does, and a
failed reply that leaves the profile as it was."""

from __future__ import annotations

import json

import pytest
from tests.fakes.language_model import ScriptedModel

from engram.adapters.sqlite_profiles import SqliteProfileStore
from engram.adapters.sqlite_store import SqliteStore
from engram.errors import LlmUnavailable
from engram.models.domain import Memory, MemoryStatus, MemoryType, now_ms
from engram.services.profiles import ProfileService

FIELDS = {"Interests": {"Favourite sport": {"value": "", "algorithm_updatable": True},
                        "Team": {"value": "", "algorithm_updatable": True},
                        "Locked": {"value": "kept", "algorithm_updatable": False}}}


@pytest.fixture
def store(tmp_path):
    store = SqliteStore(tmp_path / "engram.db")
    yield store
    store.close()


def service(store: SqliteStore, *replies) -> tuple[ProfileService, ScriptedModel]:
    model = ScriptedModel(*replies)
    return ProfileService(store=SqliteProfileStore(store), memories=store, llm=model), model


def remember(store: SqliteStore, value: str, at: int | None = None) -> Memory:
    memory = Memory(tenant_id="t1", user_id="u1", memory_type=MemoryType.user,
                    memory_key=value[:20], memory_value=value, content_hash=value,
                    update_time=at or now_ms())
    store.put_many([memory])
    return memory


def values(profiles: ProfileService) -> dict[str, tuple[str, str]]:
    (view,) = profiles.views("t1", "user", "u1")
    return {f.path[-1]: (f.value, f.source) for f in view.fields}


def test_the_llm_fills_any_field_from_the_memories_it_cites(store):
    sport = remember(store, "The user plays badminton every Sunday")
    team = remember(store, "The user supports FC Porto")

    def reply(messages):
        asked = messages[-1]["content"]
        assert "Favourite sport" in asked and sport.id in asked and "Locked" not in asked
        return {"fields": [
            {"path": ["Interests", "Favourite sport"], "value": "badminton",
             "memory_ids": [sport.id]},
            {"path": ["Interests", "Team"], "value": "FC Porto", "memory_ids": [team.id]},
            {"path": ["Interests", "Invented"], "value": "x", "memory_ids": [team.id]},
            {"path": ["Interests", "Locked"], "value": "changed", "memory_ids": [team.id]}]}

    profiles, model = service(store, reply)
    tid = profiles.add_template("t1", "Fan", FIELDS).profile_template_id
    profiles.bind("t1", [("user", "u1", tid)])
    assert profiles.fill_from_llm("t1", "u1") == 2
    assert values(profiles) == {"Favourite sport": ("badminton", "memory"),
                                "Team": ("FC Porto", "memory"), "Locked": ("kept", "template")}
    (view,) = profiles.views("t1", "user", "u1")
    assert {f.memory_id for f in view.fields if f.source == "memory"} == {sport.id, team.id}
    assert model.calls[0][1] == "ProfileFill"

    # the memory goes: so does the value it gave
    sport.status = MemoryStatus.deleted
    store.put_many([sport])
    assert values(profiles)["Favourite sport"] == ("", "template")


def test_a_newer_edit_stays_and_an_unknown_memory_is_not_cited(store):
    old = remember(store, "The user supports FC Porto", at=now_ms() - 60_000)
    profiles, _ = service(store, {"fields": [
        {"path": ["Interests", "Team"], "value": "FC Porto", "memory_ids": [old.id]},
        {"path": ["Interests", "Favourite sport"], "value": "golf",
         "memory_ids": ["no-such-memory"]}]})
    tid = profiles.add_template("t1", "Fan", FIELDS).profile_template_id
    profiles.bind("t1", [("user", "u1", tid)])
    profiles.edit("t1", "user", "u1", tid, {"Interests": {"Team": {"value": "Benfica"}}}, [])
    assert profiles.fill_from_llm("t1", "u1") == 0
    assert values(profiles)["Team"] == ("Benfica", "edit")
    assert values(profiles)["Favourite sport"] == ("", "template")


@pytest.mark.parametrize("replies", [
    (LlmUnavailable("the LLM endpoint timed out (5 s)"),),
    ("not json", json.dumps({"fields": "nope"})),  # invalid, then invalid after a repair
])
def test_a_failed_fill_leaves_the_profile_and_does_not_raise(store, replies):
    remember(store, "The user plays badminton")
    profiles, _ = service(store, *replies)
    tid = profiles.add_template("t1", "Fan", FIELDS).profile_template_id
    profiles.bind("t1", [("user", "u1", tid)])
    assert profiles.fill_from_llm("t1", "u1") == 0
    assert values(profiles)["Favourite sport"] == ("", "template")


def test_no_profiles_no_llm_call(store):
    remember(store, "The user plays badminton")
    profiles, model = service(store)
    assert profiles.fill_from_llm("t1", "u1") == 0 and model.calls == []
