"""How search orders what it found: diversification, how memories are embedded, and time
(dates the query names, as_of)."""

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
from tests.fakes.embedder import HashingEmbedder

from engram.models.domain import FACT_TYPES, Candidate, Memory, MemoryType, MemoryVersion
from engram.models.requests import SearchSpec
from engram.models.times import to_epoch_ms
from engram.ports import IndexHit
from engram.retrieval.diversify import DIVERSITY, EPISODE_REPEAT, REPEAT_PENALTY, diversify
from engram.retrieval.timeframes import TIME_WEIGHT
from engram.retrieval.vectors import TURN_WEIGHT, memory_vectors
from engram.services.search import ScoredMemory, SearchService


def scored(value: str, relativity: float, sources: list[str]) -> ScoredMemory:
    return ScoredMemory(Memory(tenant_id="t", user_id="u", memory_type=MemoryType.user,
                               memory_key=value, memory_value=value, sources=sources),
                        relativity)


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_a_near_copy_of_a_chosen_result_gives_way_to_a_distinct_one():
    best, copy, distinct = (scored("family matters", 0.60, ["D1"]),
                            scored("family is important", 0.59, ["D2"]),
                            scored("swimming with the kids", 0.50, ["D3"]))
    vectors = [unit(1, 0), unit(1, 0.05), unit(0, 1)]

    ranked = diversify([best, copy, distinct], vectors, 3)

    assert [s.memory.memory_value for s in ranked] == [
        "family matters", "swimming with the kids", "family is important"]
    assert [s.relativity for s in ranked] == [0.60, 0.50, 0.59]  # scores are not rewritten


def test_a_memory_from_turns_already_shown_comes_after_new_turns():
    first, same_turn, other_turn = (scored("a", 0.6, ["D1"]), scored("b", 0.59, ["D1"]),
                                    scored("c", 0.59 - REPEAT_PENALTY + 0.01, ["D2"]))
    orthogonal = [unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)]

    assert [s.memory.memory_value for s in diversify(
        [first, same_turn, other_turn], orthogonal, 3)] == ["a", "c", "b"]
    # without vectors (an index that does not return them) repeats still count
    assert [s.memory.memory_value for s in diversify(
        [first, same_turn, other_turn], [None] * 3, 2)] == ["a", "c"]


def test_each_episode_chosen_lowers_the_next_episode():
    first, second, third = (scored(f"episode {n}", 0.6 - n * 0.01, [f"E{n}a", f"E{n}b"])
                            for n in range(3))
    for episode in (first, second, third):
        episode.memory.episode = True
    # just above the second episode once one is shown; above the third once two are
    statement = scored("a statement", 0.59 - EPISODE_REPEAT + 0.005, ["D1"])
    later = scored("a later statement", 0.58 - 2 * EPISODE_REPEAT + 0.005, ["D2"])
    orthogonal = [unit(*row) for row in np.eye(5)]

    ranked = diversify([first, second, third, statement, later], orthogonal, 5)

    assert [s.memory.memory_value for s in ranked] == [
        "episode 0", "a statement", "episode 1", "a later statement", "episode 2"]


def test_clearly_better_results_keep_their_order():
    items = [scored(f"m{i}", 0.9 - i * (DIVERSITY + REPEAT_PENALTY + 0.01), [f"D{i}"])
             for i in range(4)]
    same_vector = [unit(1, 1)] * 4
    assert diversify(items, same_vector, 3) == items[:3]


class CountingEmbedder(HashingEmbedder):
    def __init__(self):
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts += list(texts)
        return super().embed(texts)


def candidate(value: str, context: str) -> Candidate:
    return Candidate(memory_type=MemoryType.user, memory_key="k", memory_value=value,
                     context=context)


def test_memory_vectors_mix_in_the_own_turn_once_per_turn():
    embedder = CountingEmbedder()
    turn = "Yesterday I took the kids to the museum"
    items = [candidate("Melanie took the kids to the museum", f"How was it? | {turn}"),
             candidate("Melanie loved it", f"How was it? | {turn}"),
             candidate("Caroline paints", "")]

    vectors = memory_vectors(embedder, items)

    assert embedder.texts.count(turn) == 1 and "How was it?" not in " ".join(embedder.texts)
    own = HashingEmbedder().embed([i.dense_text for i in items])
    of_turn = HashingEmbedder().embed([turn])[0]
    expected = (1 - TURN_WEIGHT) * own[0] + TURN_WEIGHT * of_turn
    assert vectors[0] == pytest.approx(expected / np.linalg.norm(expected), abs=1e-6)
    assert vectors[2] == pytest.approx(own[2], abs=1e-6)  # no turn: the memory alone
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1, 1, 1], abs=1e-6)


# --- time in search: nothing changes without a date; a date lifts what happened then ---

DAY = 86_400_000
AXES = itertools.cycle(range(64))
SEP_13, SEP_14, SEP_17 = (to_epoch_ms(d, "t") for d in ("2025-09-13 18:00", "2025-09-14 18:00",
                                                        "2025-09-17 10:00"))


@dataclass
class FixedIndex:
    """An index that answers the same candidates, with orthogonal vectors, to any query."""

    hits: list[IndexHit]

    def search_groups(self, tenant_id, user_id, vector, text, queries, where=None):
        return [self.hits if types == FACT_TYPES else [] for types, _ in queries]


@dataclass
class Store:
    memories: dict[str, Memory]

    def get_many(self, tenant_id, ids):
        return [self.memories[i] for i in ids if i in self.memories]


def said(memory_id: str, when: int, dense: float, lexical: float = 0.0, **extra
         ) -> tuple[Memory, IndexHit]:
    memory = Memory(id=memory_id, tenant_id="t", user_id="u", memory_type=MemoryType.user,
                    memory_key=memory_id, memory_value=f"{memory_id} happened",
                    sources=[memory_id], event_time=when, valid_from=when, **extra)
    vector = np.zeros(64, dtype=np.float32)
    vector[next(AXES)] = 1.0  # each memory its own axis: orthogonal, nothing to diversify
    return memory, IndexHit(memory_id, dense, lexical, vector)


def service(*pairs: tuple[Memory, IndexHit]) -> SearchService:
    return SearchService(memories=Store({m.id: m for m, _ in pairs}),
                         index=FixedIndex([h for _, h in pairs]), embedder=HashingEmbedder())


def relativities(result) -> dict[str, float]:
    return {s.memory.id: s.relativity for s in result.facts}


def expected_fused(dense: float, lexical: float) -> float:
    """The fusion formula as README states it, written out apart from the code."""
    return round(0.6 * dense + 0.4 * lexical / (lexical + 8.0), 6)


SCENE = [("garage", SEP_14, 0.40, 3.0), ("pottery", SEP_13, 0.35, 0.0),
         ("dentist", SEP_13 - 2 * DAY, 0.38, 1.0)]


@pytest.mark.parametrize("reference_time", [None, SEP_17])
def test_a_query_without_a_date_scores_as_fusion_alone(reference_time):
    search = service(*(said(i, when, d, lex) for i, when, d, lex in SCENE))
    result = search.search("t", SearchSpec(user_id="u", query="what did I do?",
                                           reference_time=reference_time))
    assert relativities(result) == {i: expected_fused(d, lex) for i, _, d, lex in SCENE}
    assert [s.memory.id for s in result.facts] == ["garage", "dentist", "pottery"]


def test_a_date_in_the_query_lifts_what_happened_then_by_the_time_weight():
    search = service(*(said(i, when, d, lex) for i, when, d, lex in SCENE))
    result = search.search("t", SearchSpec(user_id="u", query="what did I do last Saturday?",
                                           reference_time=SEP_17))
    scores = relativities(result)
    assert [s.memory.id for s in result.facts][0] == "pottery"
    assert scores["pottery"] == round(expected_fused(0.35, 0.0) + TIME_WEIGHT, 6)
    # the Sunday evening is 18 h past the Saturday: a quarter of the boost is left
    assert scores["garage"] == pytest.approx(expected_fused(0.40, 3.0) + TIME_WEIGHT / 4,
                                             abs=1e-6)
    assert scores["dentist"] == expected_fused(0.38, 1.0)  # two days before: nothing


def test_the_boost_reaches_a_memory_just_below_the_loaded_few():
    """Search loads only the best 3 × limit + 5 by fused score; one within TIME_WEIGHT of
    the last of those is loaded too when the query names a date, and can overtake."""
    others = [said(f"other{n:02d}", SEP_13 - 40 * DAY, 0.60 - n * 0.001) for n in range(8)]
    late = said("saturday", SEP_13, 0.60 - 0.1)
    search = service(*others, late)
    spec = SearchSpec(user_id="u", query="what did I do last Saturday?", fact_limit=1,
                      reference_time=SEP_17)
    assert [s.memory.id for s in search.search("t", spec).facts] == ["saturday"]
    spec.query = "what did I do?"
    assert [s.memory.id for s in search.search("t", spec).facts] == ["other00"]


def test_as_of_answers_with_the_version_valid_then_and_leaves_out_the_later():
    jan, mar, jun = SEP_13 - 240 * DAY, SEP_13 - 190 * DAY, SEP_13 - 100 * DAY
    coffee, coffee_hit = said("coffee", jun, 0.5, version=2, history=[MemoryVersion(
        version=1, memory_value="coffee was loved", valid_from=jan, valid_to=jun,
        change="supersede", reason="reversed")])
    later = said("later", jun + DAY, 0.6)
    search = service((coffee, coffee_hit), later)

    now = search.search("t", SearchSpec(user_id="u", query="coffee?"))
    assert [s.memory.memory_value for s in now.facts] == ["later happened", "coffee happened"]
    then = search.search("t", SearchSpec(user_id="u", query="coffee?", as_of=mar))
    assert [s.memory.memory_value for s in then.facts] == ["coffee was loved"]
    assert search.search("t", SearchSpec(user_id="u", query="coffee?", as_of=jan - 1)).facts == []
