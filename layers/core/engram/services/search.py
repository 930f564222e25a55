"""search/memory: embed the query, hybrid dense + lexical search inside the user's
partition, fuse, threshold, and split into facts, preferences and tool memories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engram.errors import Unprocessable
from engram.models.api import SearchRequest
from engram.models.domain import FACT_TYPES, TOOL_TYPES, Memory, MemoryStatus, MemoryType
from engram.models.filters import Condition, FilterError, FilterNode, split_sources
from engram.ports import Embedder, IndexHit, IndexQuery, MemoryIndex, MemoryStore

DENSE_WEIGHT = 0.6
LEXICAL_HALF_SCORE = 8.0  # the BM25 score that earns half the lexical weight
SAME_CONVERSATION_BOOST = 0.02
RELOAD_MARGIN = 5


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


def request_filter(req: SearchRequest) -> FilterNode | None:
    """The user-source filter plus the top-level agent_id / app_id / tags constraints."""
    try:
        node = split_sources(req.filter)["user"]
    except FilterError as exc:
        raise Unprocessable(str(exc)) from None
    extra = [Condition(field=f, op="eq", value=v)
             for f, v in (("agent_id", req.agent_id), ("app_id", req.app_id)) if v]
    extra += [Condition(field="tags", op="contains", value=t) for t in req.tags or []]
    if not extra:
        return node
    return FilterNode(all_of=[*extra, *([node] if node else [])])


@dataclass
class SearchService:
    memories: MemoryStore
    index: MemoryIndex
    embedder: Embedder

    def search(self, tenant_id: str, req: SearchRequest) -> SearchResult:
        where = request_filter(req)
        vector = self.embedder.embed([req.query])[0]
        limits = (req.memory_limit_number,
                  req.preference_limit_number if req.include_preference else 0,
                  req.tool_memory_limit_number if req.include_tool_memory else 0)
        groups = (FACT_TYPES, (MemoryType.preference,), TOOL_TYPES)
        # One call for the three lists: the index shares the scoring between them.
        found = self.index.search_groups(
            tenant_id, req.user_id, vector, req.query,
            [IndexQuery(types, limit * 3) for types, limit in zip(groups, limits, strict=True)],
            where)

        def ranked(hits: list[IndexHit], limit: int) -> list[ScoredMemory]:
            if limit == 0:
                return []
            scores = fuse(hits)
            # Only the best few are loaded; the conversation boost may reorder those.
            best = sorted(scores, key=lambda i: -scores[i])[:limit + RELOAD_MARGIN]
            scored = [ScoredMemory(m, round(scores[m.id] + (
                SAME_CONVERSATION_BOOST if req.conversation_id and
                m.conversation_id == req.conversation_id else 0.0), 6))
                for m in self.memories.get_many(tenant_id, best)
                # an eventually consistent index may still return a just-retired memory
                if m.status == MemoryStatus.activated]
            if req.relativity is not None:
                scored = [s for s in scored if s.relativity >= req.relativity]
            scored.sort(key=lambda s: -s.relativity)
            return scored[:limit]

        facts, preferences, tools = (ranked(hits, limit)
                                     for hits, limit in zip(found, limits, strict=True))
        return SearchResult(facts=facts, preferences=preferences, tools=tools)
