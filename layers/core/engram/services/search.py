"""search/memory: embed the query, hybrid dense + lexical search inside the user's
partition, fuse, threshold, and split into facts, preferences and tool memories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engram.models.domain import FACT_TYPES, TOOL_TYPES, Memory, MemoryStatus, MemoryType
from engram.models.requests import SearchSpec
from engram.ports import Embedder, IndexHit, IndexQuery, MemoryIndex, MemoryStore

DENSE_WEIGHT = 0.6
LEXICAL_HALF_SCORE = 8.0  # the BM25 score that earns half the lexical weight
SAME_CONVERSATION_BOOST = 0.02
RELOAD_MARGIN = 5
# Maximal marginal relevance, from the best DIVERSITY_POOL × limit: each next result is
# the one with the best relativity, less DIVERSITY × its cosine to the closest result
# already chosen, less REPEAT_PENALTY when every turn it came from is already behind a
# chosen result. Several memories saying nearly the same thing ("family matters to
# Melanie"), or split from one turn, would otherwise fill the list. LoCoMo dev
# recall_frac@10 (turn-mixed vectors): neither 0.739 → cosine λ 0.25 0.774 → plus
# repeats 0.1 / 0.2 / 0.3: 0.789 / 0.793 / 0.797; λ 0.15 / 0.2 / 0.25 / 0.35 / 0.45 with
# repeats 0.3: 0.798 / 0.804 / 0.797 / 0.797 / 0.785; repeats 0.2 / 0.5 / 1 at λ 0.2:
# 0.803 / 0.804 / 0.804.
DIVERSITY = 0.2
REPEAT_PENALTY = 0.3
DIVERSITY_POOL = 3


@dataclass
class ScoredMemory:
    memory: Memory
    relativity: float


@dataclass
class SearchResult:
    facts: list[ScoredMemory]
    preferences: list[ScoredMemory]
    tools: list[ScoredMemory]

    @property
    def preference_note(self) -> str:
        """A short, prompt-ready line summing up the returned preferences."""
        if not self.preferences:
            return ""
        zh = any(p.memory.language == "zh" for p in self.preferences)
        values = [p.memory.memory_value.rstrip("。.") for p in self.preferences]
        return ("用户偏好：" + "；".join(values) + "。") if zh else (
            "User preferences: " + "; ".join(values) + ".")


def fuse(hits: Sequence[IndexHit]) -> dict[str, float]:
    """Relativity in [0, 1]: cosine plus a saturating BM25 (absolute, so a `relativity`
    threshold means the same whatever else was found). Weights tuned on LoCoMo dev."""
    return {h.id: DENSE_WEIGHT * max(h.dense, 0.0)
            + (1 - DENSE_WEIGHT) * h.lexical / (h.lexical + LEXICAL_HALF_SCORE)
            for h in hits}


def diversify(scored: list[ScoredMemory], vectors: list[np.ndarray | None],
              limit: int) -> list[ScoredMemory]:
    """`limit` of `scored` (best first) in MMR order. Relativity is left as it is: it is
    the memory's own relevance; the order is what diversification changes. Without
    vectors (an index that does not return them) only repeated turns count."""
    if len(scored) <= 1:
        return scored[:limit]
    relevance = np.array([s.relativity for s in scored])
    matrix = np.stack(vectors) if all(v is not None for v in vectors) else None
    similar = matrix @ matrix.T if matrix is not None else None
    redundancy = np.zeros(len(scored))
    sources = [frozenset(s.memory.sources) for s in scored]
    shown: set[str] = set()
    left = np.ones(len(scored), dtype=bool)
    order = []
    for _ in range(min(limit, len(scored))):
        repeats = np.array([bool(s) and s <= shown for s in sources])
        value = relevance - DIVERSITY * redundancy - REPEAT_PENALTY * repeats
        pick = int(np.argmax(np.where(left, value, -np.inf)))
        order.append(pick)
        left[pick] = False
        shown |= sources[pick]
        if similar is not None:
            redundancy = np.maximum(redundancy, similar[pick])
    return [scored[i] for i in order]


@dataclass
class SearchService:
    memories: MemoryStore
    index: MemoryIndex
    embedder: Embedder

    def search(self, tenant_id: str, req: SearchSpec) -> SearchResult:
        where = req.where
        vector = self.embedder.embed([req.query])[0]
        limits = (req.fact_limit, req.preference_limit, req.tool_limit)
        groups = (FACT_TYPES, (MemoryType.preference,), TOOL_TYPES)
        queries = [IndexQuery(types, limit * 3)
                   for types, limit in zip(groups, limits, strict=True)]
        retired_turns = False

        def ranked(hits: list[IndexHit], limit: int) -> list[ScoredMemory]:
            nonlocal retired_turns
            if limit == 0:
                return []
            scores = fuse(hits)
            # Only the best few are loaded; the conversation boost may reorder those.
            best = sorted(scores, key=lambda i: -scores[i])[:limit * DIVERSITY_POOL
                                                             + RELOAD_MARGIN]
            loaded = self.memories.get_many(tenant_id, best)
            retired_turns |= any(m.memory_type == MemoryType.working and
                                 m.status != MemoryStatus.activated for m in loaded)
            scored = [ScoredMemory(m, round(scores[m.id] + (
                SAME_CONVERSATION_BOOST if req.conversation_id and
                m.conversation_id == req.conversation_id else 0.0), 6))
                for m in loaded
                # an eventually consistent index may still return a just-retired memory
                if m.status == MemoryStatus.activated]
            if req.relativity is not None:
                scored = [s for s in scored if s.relativity >= req.relativity]
            scored.sort(key=lambda s: -s.relativity)
            vectors = {h.id: h.vector for h in hits}
            return diversify(scored, [vectors.get(s.memory.id) for s in scored], limit)

        # One call for the three lists: the index shares the scoring between them.
        found = self.index.search_groups(tenant_id, req.user_id, vector, req.query, queries,
                                         where)
        facts, preferences, tools = (ranked(hits, limit)
                                     for hits, limit in zip(found, limits, strict=True))
        if retired_turns:
            # A fast-path turn was retired between the index's answer and the read: its
            # task completed, and what replaced it was indexed before it was retired, so
            # the index asked again holds it (else neither would be found).
            found = self.index.search_groups(tenant_id, req.user_id, vector, req.query,
                                             queries, where)
            facts, preferences, tools = (ranked(hits, limit)
                                         for hits, limit in zip(found, limits, strict=True))
        return SearchResult(facts=facts, preferences=preferences, tools=tools)
