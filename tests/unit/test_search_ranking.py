"""How search orders what it found: diversification, and how memories are embedded."""

import numpy as np
import pytest
from tests.fakes.embedder import HashingEmbedder

from engram.models.domain import Candidate, Memory, MemoryType
from engram.retrieval.diversify import DIVERSITY, REPEAT_PENALTY, diversify
from engram.retrieval.vectors import TURN_WEIGHT, memory_vectors
from engram.services.search import ScoredMemory


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
