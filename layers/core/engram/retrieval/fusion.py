"""Dense + lexical fusion: how many candidates each signal hands over, and how a cosine
and a BM25 score become one relativity. Shared by both indexes (the candidate counts)
and search (the weights)."""

from __future__ import annotations

from collections.abc import Sequence

from engram.ports import IndexHit

DENSE_WEIGHT = 0.6
LEXICAL_HALF_SCORE = 8.0  # the BM25 score that earns half the lexical weight
MIN_CANDIDATES = 50  # per signal, however small k is, so fusion has room
CANDIDATES_PER_RESULT = 4


def candidate_count(k: int) -> int:
    """How many candidates each signal (cosine, BM25) hands over for k results."""
    return max(k * CANDIDATES_PER_RESULT, MIN_CANDIDATES)


def fuse(hits: Sequence[IndexHit]) -> dict[str, float]:
    """Relativity in [0, 1]: cosine plus a saturating BM25 (absolute, so a `relativity`
    threshold means the same whatever else was found). Weights tuned on LoCoMo dev."""
    return {h.id: DENSE_WEIGHT * max(h.dense, 0.0)
            + (1 - DENSE_WEIGHT) * h.lexical / (h.lexical + LEXICAL_HALF_SCORE)
            for h in hits}
