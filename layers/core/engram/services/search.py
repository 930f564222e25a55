"""search/memory: embed the query, hybrid dense + lexical search inside the user's
partition, fuse, favour what happened when the query says (retrieval/timeframes.py),
threshold, diversify (retrieval/fusion.py, retrieval/diversify.py), and split into facts,
preferences and tool memories. With `as_of`, each memory answers as it stood then.

The ranking rules (retrieval/, the age rules' keys) are imported by the first search, not
with this module: the API's routes import it, and a request that does not search (a
status) should not load them (tests/unit/test_coldstart.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engram.models.domain import (
    FACT_TYPES,
    TOOL_TYPES,
    Memory,
    MemoryStatus,
    MemoryType,
    now_ms,
)
from engram.models.requests import SearchSpec
from engram.ports import Embedder, IndexHit, IndexQuery, MemoryIndex, MemoryStore

if TYPE_CHECKING:
    from engram.retrieval.timeframes import Window

SAME_CONVERSATION_BOOST = 0.02
RELOAD_MARGIN = 5
# A query that asks what the assistant said lifts the assistant's answers, which have no
# embedding (their relativity is their saturated BM25 alone, 0.4 at most) to where a
# fact that matches both ways stands.
ASSISTANT_BOOST = 0.3
# A turn kept whole ranks below an extracted memory scoring close to it. LoCoMo dev /
# LongMemEval dev turn recall_all@10, whole turns kept at 0 / 0.05 / 0.1 below: see README.
WHOLE_TURN_PENALTY = 0.05
# A query asking an age lifts the memories that state one (keyed AGE_KEY), found by that
# key's word added to the query's: they share no other word with the question.
AGE_BOOST = 0.2


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


def first_version(memory: Memory) -> Memory:
    """The memory as first said: its oldest version kept in history, else itself."""
    from engram.retrieval.timeframes import version_at

    if not memory.history:
        return memory
    return version_at(memory, memory.history[0].valid_from) or memory


def within_reach(order: list[str], scores: dict[str, float], pool: int,
                 weight: float) -> list[str]:
    """The ids (best first) that may rank among the best `pool` once a time boost (at most
    `weight`) is added: the best `pool`, and any other within `weight` of the last."""
    if len(order) <= pool:
        return order
    cut = scores[order[pool - 1]] - weight
    return order[:pool] + [i for i in order[pool:] if scores[i] >= cut]


def time_boost(memory: Memory, windows: list[Window], weight: float) -> float:
    if not windows:  # most queries name no date: no import per ranked memory
        return 0.0
    from engram.retrieval.timeframes import time_match

    when = memory.event_time if memory.event_time is not None else memory.create_time
    return weight * time_match(when, windows)


@dataclass
class SearchService:
    memories: MemoryStore
    index: MemoryIndex
    embedder: Embedder

    def search(self, tenant_id: str, req: SearchSpec) -> SearchResult:
        from engram.extraction.rules.ages import AGE_KEY
        from engram.retrieval.diversify import DIVERSITY_POOL, diversify
        from engram.retrieval.fusion import fuse
        from engram.retrieval.intent import (
            asks_an_age,
            asks_what_the_assistant_said,
            asks_what_was_first_said,
        )
        from engram.retrieval.timeframes import date_weight, query_windows, version_at

        age_keys = frozenset(AGE_KEY.values())
        where = req.where
        vector = self.embedder.embed([req.query])[0]
        limits = (req.fact_limit, req.preference_limit, req.tool_limit)
        groups = (FACT_TYPES, (MemoryType.preference,), TOOL_TYPES)
        queries = [IndexQuery(types, limit * 3)
                   for types, limit in zip(groups, limits, strict=True)]
        retired_turns = False
        reference = next((t for t in (req.reference_time, req.as_of) if t is not None),
                         now_ms())
        windows = query_windows(req.query, reference)
        weight = date_weight(req.query, windows)
        as_of = req.as_of

        asks_assistant = asks_what_the_assistant_said(req.query)
        asks_age = asks_an_age(req.query)
        terms = " ".join([req.query, *sorted(age_keys)]) if asks_age else req.query
        # "what did I first say…": as_of the moment each memory was first said
        first_said = as_of is None and asks_what_was_first_said(req.query)

        def ranked(hits: list[IndexHit], limit: int) -> list[ScoredMemory]:
            nonlocal retired_turns
            if limit == 0:
                return []
            scores = fuse(hits)
            # Only the best few are loaded; the conversation boost may reorder those, and so
            # may a time boost, which brings in those it can lift among them. With as_of,
            # every candidate: those not yet known then drop out.
            order = sorted(scores, key=lambda i: -scores[i])
            pool = limit * DIVERSITY_POOL + RELOAD_MARGIN
            if as_of is not None:
                best = order
            elif windows:
                best = within_reach(order, scores, pool, weight)
            else:
                best = order[:pool]
            loaded = self.memories.get_many(tenant_id, best)
            retired_turns |= any(m.memory_type == MemoryType.working and
                                 m.status != MemoryStatus.activated for m in loaded)
            # an eventually consistent index may still return a just-retired memory
            current = [m for m in loaded if m.status == MemoryStatus.activated]
            if as_of is not None:
                current = [v for m in current if (v := version_at(m, as_of)) is not None]
            elif first_said:
                current = [first_version(m) for m in current]
            scored = [ScoredMemory(m, round(scores[m.id] + (
                SAME_CONVERSATION_BOOST if req.conversation_id and
                m.conversation_id == req.conversation_id else 0.0)
                + time_boost(m, windows, weight) + (
                ASSISTANT_BOOST if asks_assistant and m.said_by == "assistant" else 0.0) + (
                AGE_BOOST if asks_age and m.memory_key in age_keys else 0.0) - (
                WHOLE_TURN_PENALTY if m.whole_turn else 0.0), 6))
                for m in current]
            if req.relativity is not None:
                scored = [s for s in scored if s.relativity >= req.relativity]
            scored.sort(key=lambda s: -s.relativity)
            scored = scored[:pool]
            vectors = {h.id: h.vector for h in hits}
            return diversify(scored, [vectors.get(s.memory.id) for s in scored], limit)

        # One call for the three lists: the index shares the scoring between them.
        found = self.index.search_groups(tenant_id, req.user_id, vector, terms, queries,
                                         where)
        facts, preferences, tools = (ranked(hits, limit)
                                     for hits, limit in zip(found, limits, strict=True))
        if retired_turns:
            # A fast-path turn was retired between the index's answer and the read: its
            # task completed, and what replaced it was indexed before it was retired, so
            # the index asked again holds it (else neither would be found).
            found = self.index.search_groups(tenant_id, req.user_id, vector, terms,
                                             queries, where)
            facts, preferences, tools = (ranked(hits, limit)
                                         for hits, limit in zip(found, limits, strict=True))
        return SearchResult(facts=facts, preferences=preferences, tools=tools)
