"""Diversification of search results by maximal marginal relevance (MMR).

From the best DIVERSITY_POOL × limit, each next result is the one with the best
relativity, less DIVERSITY × its cosine to the closest result already chosen, less
REPEAT_PENALTY when every turn it came from is already behind a chosen result, less
EPISODE_REPEAT for each episode chosen when it is one (pipeline/episodes.py). Several
memories saying nearly the same thing ("family matters to Melanie"), or split from one
turn, would otherwise fill the list; so would episodes, ~125 words each where a
statement takes ~20. LoCoMo dev / LongMemEval dev (recall, words in the top 10), no
episode repeat: 0.854 (309 words) / 0.967 (419); 0.1: 0.854 (236) / 0.967 (378); 1 (one
episode at most): 0.854 (232) / 0.967 (366). LoCoMo dev recall_frac@10 (turn-mixed vectors):
neither 0.739 → cosine λ 0.25 0.774 → plus repeats 0.1 / 0.2 / 0.3: 0.789 / 0.793 / 0.797;
λ 0.15 / 0.2 / 0.25 / 0.35 / 0.45 with repeats 0.3: 0.798 / 0.804 / 0.797 / 0.797 / 0.785;
repeats 0.2 / 0.5 / 1 at λ 0.2: 0.803 / 0.804 / 0.804.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

from engram.models.domain import Memory

if TYPE_CHECKING:
    import numpy as np

DIVERSITY = 0.2
REPEAT_PENALTY = 0.3
DIVERSITY_POOL = 3
EPISODE_REPEAT = 0.1


class Scored(Protocol):
    """A memory with its relevance (search's ScoredMemory)."""

    memory: Memory
    relativity: float


S = TypeVar("S", bound=Scored)


def diversify(scored: list[S], vectors: list[np.ndarray | None], limit: int) -> list[S]:
    """`limit` of `scored` (best first) in MMR order. Relativity is left as it is: it is
    the memory's own relevance; the order is what diversification changes. Without
    vectors (an index that does not return them) only repeated turns count."""
    if len(scored) <= 1:
        return scored[:limit]
    import numpy as np  # not at import: the API's get/status loads no numpy

    relevance = np.array([s.relativity for s in scored])
    matrix = np.stack(vectors) if all(v is not None for v in vectors) else None
    similar = matrix @ matrix.T if matrix is not None else None
    redundancy = np.zeros(len(scored))
    sources = [frozenset(s.memory.sources) for s in scored]
    shown: set[str] = set()
    episodes = np.array([s.memory.episode for s in scored], dtype=float)
    episodes_shown = 0
    left = np.ones(len(scored), dtype=bool)
    order = []
    for _ in range(min(limit, len(scored))):
        repeats = np.array([bool(s) and s <= shown for s in sources])
        value = (relevance - DIVERSITY * redundancy - REPEAT_PENALTY * repeats
                 - EPISODE_REPEAT * episodes_shown * episodes)
        pick = int(np.argmax(np.where(left, value, -np.inf)))
        order.append(pick)
        left[pick] = False
        shown |= sources[pick]
        episodes_shown += scored[pick].memory.episode
        if similar is not None:
            redundancy = np.maximum(redundancy, similar[pick])
    return [scored[i] for i in order]
