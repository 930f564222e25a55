"""Dedupe through the real pipeline steps and stores, with scripted candidates."""

from __future__ import annotations

import pytest
from tests.fakes.embedder import HashingEmbedder, SameVectorEmbedder
from tests.fakes.extractor import ScriptedExtractor

from engram.adapters.file_object_store import FileObjectStore
from engram.adapters.local_index import LocalMemoryIndex
from engram.adapters.sqlite_store import SqliteStore
from engram.api.memos.models import AddMessageRequest, FeedbackRequest
from engram.api.memos.translate import accept_args, feedback_args
from engram.config import Limits
from engram.models.domain import Candidate, MemoryStatus, MemoryType, MessageRecord, TaskRef
from engram.pipeline.dedupe import (
    content_hash,
    corrected,
    name_different_things,
    names_more,
    refine,
)
from engram.pipeline.steps import PipelineDeps, run_pipeline
from engram.services.ingest import IngestService


def as_candidate(message: MessageRecord) -> list[Candidate]:
    """'pref+: x' / 'pref-: x' → a preference; 'file: x' → a shared file's record and a
    passage of it, then the same passage from another file; anything else → a user fact."""
    text = message.text
    if text.startswith("file:"):
        quoted, item = text[5:].strip(), f"{message.message_id}#item="
        return [Candidate(memory_type=MemoryType.user, memory_key="Shared PDF document",
                          memory_value=f'The user shared a PDF, which begins: "{quoted}"',
                          sources=[f"{item}1"]),
                Candidate(memory_type=MemoryType.long_term, memory_key="a.pdf, page 2",
                          memory_value=quoted, sources=[f"{item}1&page=2"]),
                Candidate(memory_type=MemoryType.long_term, memory_key="b.pdf, page 1",
                          memory_value=f"{quoted} Also", sources=[f"{item}2&page=1"])]
    if text.startswith(("pref+:", "pref-:")):
        return [Candidate(memory_type=MemoryType.preference, memory_key="Food preference",
                          memory_value=text[6:].strip(), sources=[message.message_id],
                          polarity="positive" if text[4] == "+" else "negative",
                          preference_type="explicit", event_time=message.chat_time)]
    return [Candidate(memory_type=MemoryType.user, memory_key="Fact", memory_value=text,
                      sources=[message.message_id], event_time=message.chat_time)]


class Harness:
    def __init__(self, tmp_path, embedder=None):
        self.store = SqliteStore(tmp_path / "db.sqlite")
        self.index = LocalMemoryIndex(None)
        self.deps = PipelineDeps(objects=FileObjectStore(tmp_path / "objects"), tasks=self.store,
                                 memories=self.store, index=self.index,
                                 embedder=embedder or HashingEmbedder(),
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
        data = self.ingest.accept("t", *accept_args(req))
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


@pytest.fixture
def same(tmp_path):
    """A harness whose embedder finds every memory a near duplicate of every other."""
    harness = Harness(tmp_path / "same", embedder=SameVectorEmbedder())
    yield harness
    harness.store.close()


def test_a_files_record_and_its_passages_never_merge(same):
    views = same.add("file: The launch moved to March 14.")
    assert len(views["added"]) == 2
    # every vector is the same here: another file's passage is still a near duplicate
    assert {m.memory_key for m in same.active(MemoryType.user)} == {"Shared PDF document"}
    (kept,) = same.active(MemoryType.long_term)
    assert [s.split("#")[1] for s in kept.sources] == ["item=1&page=2", "item=2&page=1"]


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
    assert len(h.active(MemoryType.user)) == 2
    (episode,) = h.active(MemoryType.long_term)  # the two told together (pipeline/episodes.py)
    assert episode.episode and len(views["added"]) == 3


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
    data = h.ingest.accept("t", *feedback_args(FeedbackRequest(
        user_id="u", feedback_content="The user chose the Hilton hotel in Guangzhou")))
    task = h.store.get("t", data.task_id)
    assert task.status == "completed" and task.memory_views.updated == [original.id]
    (memory,) = h.active(MemoryType.user)
    assert memory.memory_value == ("The user chose the Hilton hotel in Guangzhou "
                                   "(corrects: The user chose the 7 Days Inn hotel in Guangzhou).")
    assert memory.history[-1].change == "feedback"


def test_feedback_asking_to_forget_invalidates(h):
    h.add("The user chose the 7 Days Inn hotel in Guangzhou")
    data = h.ingest.accept("t", *feedback_args(FeedbackRequest(
        user_id="u", feedback_content="Please forget that the user chose the 7 Days Inn hotel")))
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
    data = h.ingest.accept("t", *accept_args(req))
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
    data = h.ingest.accept("t", *feedback_args(FeedbackRequest(
        user_id="u", feedback_content="The user switched to Hilton, not 7 Days Inn")))
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
    from engram.api.memos.models import SearchRequest
    from engram.api.memos.translate import search_spec
    from engram.services.search import SearchService

    search = SearchService(memories=h.store, index=h.index, embedder=h.deps.embedder)
    seen: list[list[str]] = []

    def probe() -> None:
        found = search.search("t", search_spec(SearchRequest(query="Finnish", user_id="u")))
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


# -- near duplicates that name different things (issue 12) --

MUSEUM = "Distinct note {0:02d}: the user visited museum Smuseum{0:02d} on 14 November 2023."


@pytest.mark.parametrize("first, second", [
    (MUSEUM.format(1), MUSEUM.format(2)),  # a museum (and a note number)
    ("The user visited the Louvre on 14 November 2023",
     "The user visited the Prado on 14 November 2023"),
    ("The user is 30 years old", "The user is 31 years old"),  # a number
    ("The user has two cats", "The user has three cats"),  # a number in words
    ("The user's flight is on 2024-05-01", "The user's flight is on 2024-06-12"),  # a date
    ("The user flew to Faro on 3 May", "The user flew to Faro on 3 June"),
    ("The user's sister Anna lives in Berlin", "The user's sister Maria lives in Berlin"),
    ("The user works at Google", "The user works at Microsoft"),
    ('The user\'s favourite book is "dune"', 'The user\'s favourite book is "emma"'),  # a title
    ("用户的妹妹叫小红。", "用户的妹妹叫小明。"),  # a person
    ("用户今年三十岁。", "用户今年三十一岁。"),  # a number in Chinese numerals
    ("用户养了两只猫。", "用户养了三只猫。"),
    ("用户参观了故宫博物院。", "用户参观了国家博物馆。"),  # a place
    ("用户2023年5月1日去了北京。", "用户2023年6月1日去了北京。"),  # a date
    ("用户最喜欢的书是《三体》。", "用户最喜欢的书是《活着》。"),  # a title
])
def test_texts_naming_different_things(first, second):
    assert name_different_things(first, second) and name_different_things(second, first)


@pytest.mark.parametrize("first, second", [
    ("Melanie said that looks amazing.", "Melanie said that looks awesome."),  # rewording
    ("Melanie said Glad you have support.", "Melanie said glad you got the support."),
    ("The user lives in Lisbon", "The user lives in Lisbon, Portugal"),  # detail added
    ("Distinct note 07: the user visited museum Prado",
     "Distinct note 7: the user visited the museum Prado"),  # "07" is 7
    ("The user likes spicy food", "The user doesn't like spicy food"),  # reversed
    ("用户非常喜欢猫。", "用户特别喜欢猫。"),  # a degree word only
    ("用户喜欢喝茶。", "用户很喜欢喝茶。"),
    ("用户喜欢吃辣。", "用户不喜欢吃辣。"),  # negation inserted: reversed, not other
    ("用户住在北京。", "用户住在北京朝阳区。"),  # detail added
])
def test_texts_saying_the_same_about_the_same_things(first, second):
    assert not name_different_things(first, second)


@pytest.mark.parametrize("opener", ["《", "“", '"', " 'a"])
def test_unclosed_quotes_do_not_stall_the_rule(opener):
    """A hostile text of unclosed quotes: ~10 s at this length when a quote's span was
    unbounded (quadratic), well under a second now."""
    import time

    text = opener * (30_000 // len(opener))
    started = time.perf_counter()
    assert not name_different_things(text, text + " Z")
    assert time.perf_counter() - started < 2


def test_detail_added_names_more_one_way_only():
    assert names_more("The user lives in Lisbon, Portugal", "The user lives in Lisbon")
    assert not names_more("The user lives in Lisbon", "The user lives in Lisbon, Portugal")


def test_distinct_facts_of_one_shape_stay_separate_at_any_cosine(same):
    """The probe of issue 12: ten notes, one after another, each its own memory."""
    for n in range(1, 11):
        views = same.add(MUSEUM.format(n))
        assert len(views["added"]) == 1 and views["updated"] == [], views["decisions"]
    memories = same.active(MemoryType.user)
    assert sorted(m.memory_value for m in memories) == [MUSEUM.format(n) for n in range(1, 11)]
    assert all(m.version == 1 and m.history == [] for m in memories)


def test_chinese_facts_naming_different_people_stay_separate(same):
    same.add("用户的妹妹叫小红。")
    views = same.add("用户的妹妹叫小明。")
    assert len(views["added"]) == 1
    assert sorted(m.memory_value for m in same.active(MemoryType.user)) == [
        "用户的妹妹叫小明。", "用户的妹妹叫小红。"]


def test_a_rewording_still_updates_the_fact_it_repeats(same):
    """Past a distinct closest neighbour, to the memory that says the same thing."""
    same.add(MUSEUM.format(1), MUSEUM.format(2))
    target = next(m for m in same.active(MemoryType.user) if "Smuseum02" in m.memory_value)
    views = same.add("Distinct note 02: the user really visited museum Smuseum02 "
                     "on 14 November 2023.")
    assert views["updated"] == [target.id] and views["added"] == []
    (memory,) = same.store.get_many("t", [target.id])
    assert "really visited" in memory.memory_value and memory.version == 2
    assert memory.history[0].memory_value == MUSEUM.format(2)
    assert len(same.active(MemoryType.user)) == 2


def test_detail_on_the_same_fact_updates(same):
    same.add("The user lives in Lisbon")
    views = same.add("The user lives in Lisbon, Portugal")
    (memory,) = same.active(MemoryType.user)
    assert views["updated"] == [memory.id]
    assert memory.memory_value == "The user lives in Lisbon, Portugal" and memory.version == 2
    assert views["decisions"][0]["reason"] == "near duplicate (cosine 1.00); newer wording kept"


def test_chinese_detail_and_degree_words_update(same):
    same.add("用户住在北京。")
    same.add("用户住在北京朝阳区。")
    same.add("用户很喜欢住在北京朝阳区。")
    (memory,) = same.active(MemoryType.user)
    assert memory.memory_value == "用户很喜欢住在北京朝阳区。" and memory.version == 3


def test_a_repeat_naming_less_keeps_the_stored_wording_and_adds_its_turn(same):
    same.add("The user visited the Louvre with Anna on 14 November 2023")
    (stored,) = same.active(MemoryType.user)
    views = same.add("The user visited the museum on 14 November 2023")
    assert views["added"] == views["updated"] == [] and views["noop"] == 1
    assert views["decisions"][0]["memory_id"] == stored.id
    assert "naming less" in views["decisions"][0]["reason"]
    (memory,) = same.active(MemoryType.user)
    assert memory.memory_value == stored.memory_value and memory.version == 1
    assert len(memory.sources) == 2 and memory.sources[0] == stored.sources[0]
    assert memory.history == []


def test_opposite_preferences_naming_other_things_refine_rather_than_replace(same):
    """At cosine 1 a reversed preference would replace the older one; about another
    dish, the older still holds and is kept in the refined value."""
    same.add("pref+: The user likes Thai food")
    views = same.add("pref-: The user doesn't like Indian food")
    (pref,) = same.active(MemoryType.preference)
    assert views["updated"] == [pref.id]
    assert pref.memory_value == "The user likes Thai food, but the user doesn't like Indian food"
    assert pref.history[0].change == "supersede"


def test_a_reversed_preference_still_replaces_at_any_cosine(same):
    same.add("pref+: The user likes spicy food")
    same.add("pref-: The user doesn't like spicy food")
    (pref,) = same.active(MemoryType.preference)
    assert pref.memory_value == "The user doesn't like spicy food"
    assert [v.memory_value for v in pref.history] == ["The user likes spicy food"]


def test_the_same_distinct_facts_in_one_request_stay_separate(same):
    views = same.add(*[MUSEUM.format(n) for n in range(1, 6)])
    assert len(same.active(MemoryType.user)) == 5
    assert len(views["added"]) == 6  # and the episode telling the five


def test_a_plans_vectors_travel_between_steps_exactly_and_compactly():
    import numpy as np

    from engram.models.domain import Memory, MemoryType
    from engram.models.pipeline import DedupePlan, MemoryWrite
    from engram.pipeline.dedupe import packed, unpacked

    vector = np.random.default_rng(7).standard_normal(384).astype(np.float32)
    memory = Memory(tenant_id="t", user_id="u", conversation_id="c",
                    memory_type=MemoryType.long_term, memory_key="k", memory_value="v")
    body = DedupePlan(writes=[MemoryWrite(memory=memory, vector=packed(vector))]).model_dump_json()
    (write,) = DedupePlan.model_validate_json(body).writes
    assert unpacked(write.vector).tobytes() == vector.tobytes()  # the same bits
    as_list = DedupePlan(writes=[MemoryWrite(memory=memory, vector=vector.tolist())])
    assert len(body) * 2 < len(as_list.model_dump_json())
    (old,) = DedupePlan.model_validate_json(as_list.model_dump_json()).writes  # an older plan
    assert np.array_equal(unpacked(old.vector), vector)


# --- episodes (pipeline/episodes.py) ---------------------------------------------------------


def episodes_of(h):
    return [m for m in h.active(MemoryType.long_term) if m.episode]


def test_an_add_tells_its_statements_as_one_episode_citing_every_turn(h):
    views = h.add("The user went camping with the kids", "The user signed up for pottery",
                  "The user swims on Sundays", times=["2023-07-02 10:00:00"] * 3)
    (episode,) = episodes_of(h)
    statements = h.active(MemoryType.user)
    assert episode.memory_value == ("The user went camping with the kids. The user signed up "
                                    "for pottery. The user swims on Sundays.")
    assert sorted(episode.sources) == sorted(s for m in statements for s in m.sources)
    assert episode.memory_key == "User, in conversation on 2 July 2023"
    assert all(m.episode_ids == [episode.id] for m in statements)
    assert set(views["added"]) == {episode.id, *(m.id for m in statements)}
    (told,) = [d for d in views["decisions"] if d["memory_id"] == episode.id]
    assert told["reason"] == "an episode: 3 statements of this add told together"


def test_a_replayed_add_tells_no_second_episode(h):
    h.add("The user went camping with the kids", "The user signed up for pottery")
    views = h.add("The user went camping with the kids", "The user signed up for pottery")
    assert views["added"] == [] and len(episodes_of(h)) == 1


def test_one_statement_long_ones_and_repeats_make_no_episode(h):
    h.add("The user keeps bees")
    h.add("The user keeps bees", "the user keeps bees!")  # one memory, said twice
    long = "The user " + " ".join(["walked"] * 40)
    h.add(long, "The user rests")  # a long statement stands alone: one left to tell
    assert episodes_of(h) == []


def test_a_long_add_is_told_in_episodes_of_at_most_150_words(h):
    from engram.pipeline.episodes import EPISODE_WORDS
    texts = [f"The user visited museum Smuseum{n:02d} with a friend from work" for n in range(40)]
    h.add(*texts)
    told = episodes_of(h)
    assert len(told) > 1
    assert all(len(e.memory_value.split()) <= EPISODE_WORDS for e in told)
    cited = [s for e in sorted(told, key=lambda e: e.sources[0]) for s in e.sources]
    assert sorted(cited) == sorted(m.sources[0] for m in h.active(MemoryType.user))


def test_an_episode_is_never_a_candidates_duplicate(h):
    """A later statement retelling the whole add is as near to its episode as a rewording
    (cosine ≥ 0.9 under the bag-of-words embedder) and names nothing else: it would update
    the episode, were an episode a neighbour."""
    h.add("The user went camping with the kids", "The user signed up for pottery")
    (episode,) = episodes_of(h)
    views = h.add("The user went camping with the kids. The user signed up for pottery classes")
    assert episode.id not in views["updated"] and len(views["added"]) == 1
    assert episodes_of(h)[0].memory_value == episode.memory_value


def test_forgetting_a_statement_forgets_the_episode_telling_it(h):
    h.add("The user chose the 7 Days Inn hotel in Guangzhou", "The user flies on Friday")
    (episode,) = episodes_of(h)
    data = h.ingest.accept("t", *feedback_args(FeedbackRequest(
        user_id="u", feedback_content="Please forget that the user chose the 7 Days Inn hotel")))
    task = h.store.get("t", data.task_id)
    assert episode.id in task.memory_views.deleted and episodes_of(h) == []
    assert h.index.search("t", "u", h.deps.embedder.embed(["7 Days Inn"])[0], "7 Days Inn",
                          10, [MemoryType.long_term]) == []


def test_an_episodes_key_says_who_and_when_in_the_statements_language():
    from engram.pipeline.episodes import Episode
    july = 1688389200000  # 3 July 2023, 13:00 UTC
    assert Episode("Melanie", chat_time=july).key() == "Melanie, in conversation on 3 July 2023"
    assert Episode("", chat_time=july).key("zh") == "用户在2023年7月3日的对话"
    assert Episode("").key() == "User, in conversation"
