"""Merge extracted candidates into what is already known about the user.

For each candidate, in order (so a later message in the same request sees the earlier):
1. the same normalised content already stored → nothing to do;
2. feedback → it corrects (or, for "forget …", invalidates) the closest existing memory;
3. a preference of opposite polarity on the same topic → the old one is superseded:
   replaced when nearly the same statement about the same things, refined ("…, but …")
   when related;
4. a near duplicate (cosine ≥ 0.9) that names nothing the existing memory does not → the
   existing memory takes the newer wording (one that names less only adds its turn to the
   memory's sources); one that names something else (see `name_different_things`) is a
   distinct fact;
5. otherwise a new memory.
A changed memory keeps its old value in `history` with the window it held in.

With a ConflictResolver (an LLM), the same hash check comes first and a candidate with
nothing stored near it is added; the rest go to the resolver in one call, and its
add / update (supersede) / delete (invalidate) / noop operations are applied in candidate
order. If its reply is unusable, the rules above decide the batch instead. Every decision,
with its reason and who made it, is recorded in the plan (and so in the task's status).
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from engram.extraction.structured import InvalidReply
from engram.models.domain import (
    FACT_TYPES,
    TOOL_TYPES,
    Candidate,
    Decision,
    Memory,
    MemoryStatus,
    MemoryType,
    MemoryVersion,
    content_hash,
    now_ms,
)
from engram.models.pipeline import DedupePlan, IngestJob, MemoryWrite
from engram.ports import (
    ConflictResolver,
    Embedder,
    ExistingMemory,
    IndexHit,
    MemoryIndex,
    MemoryStore,
    ResolveOperation,
)
from engram.retrieval.vectors import RequestTurns, memory_vectors

if TYPE_CHECKING:  # annotations only: get/status imports no numpy
    import numpy as np

NEAR_DUPLICATE = 0.90
REPLACE_PREFERENCE = 0.80  # opposite polarity this close: the same statement, reversed
REFINE_PREFERENCE = 0.45  # opposite polarity this close: the same topic, refined
FEEDBACK_TARGET = 0.45  # feedback this close to a memory is about that memory
NAMED_IN_CORRECTION = 0.15  # "…, not X": a memory that mentions X is the one corrected
# Below this cosine to every stored memory, a candidate is added without asking the
# resolver: it has nothing to conflict with. With all-MiniLM-L6-v2 on "key. value", unrelated
# memories of one user measured 0.10–0.22 and real conflicts 0.42–0.84 ("works at Google" /
# "left their job last week": 0.42), so 0.35 saves the call without hiding a conflict; it is
# also below every threshold the rules act on (0.45 and up).
RESOLVE_FLOOR = 0.35
NEIGHBOURS = 5

# What a text names, for `name_different_things`. Chinese has no capitals to tell a name
# by, so all of its text counts but a few words that only grade or mark a statement.
CJK_RUN = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
                     "\U00020000-\U0003134f]+")  # Han, kana, Hangul: as retrieval/lexical.py
CJK_MARKERS = re.compile("非常|特别|十分|比较|真的|[的了很挺也都吗呢吧啊呀]")
CJK_NUMERALS = re.compile("[零〇一二两三四五六七八九十百千万亿]+")
# A title is short: bounding the span keeps a text of unclosed quotes ("《" × 100k: 107 s
# unbounded) linear.
QUOTED = re.compile(r'"([^"]{1,100})"|“([^”]{1,100})”|‘([^’]{1,100})’'
                    r"|(?<!\w)'([^']{1,100})'(?!\w)"
                    r"|《([^》]{1,100})》|「([^」]{1,100})」|«([^»]{1,100})»")
POSSESSIVE = re.compile(r"['’]s\b")
WORD = re.compile(r"[^\W_]+")
NUMBER_WORDS = frozenset("""
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy
    eighty ninety hundred thousand million billion first second third fourth fifth sixth
    seventh eighth ninth tenth once twice half dozen
    """.split())

SAME_CONTENT = "the same content is stored already"
NOTHING_NEAR = "no stored memory is near it"
ASSISTANT_SAID = "what the assistant said"
RESOLVER_FALLBACK = ("the LLM reply was not valid after a repair; rule-based conflict "
                     "resolution used")

FORGET = re.compile(
    r"\b(forget|remove|delete|erase|no longer true|not true anymore)\b|忘记|忘掉|删除|不要记", re.I)
CORRECTS_NOTE = re.compile(r"\s*(?:\(corrects: .*\)|（更正：.*）)[.。]?$")
CORRECTED = re.compile(  # "…, not X" / "…而不是X": X names the value being corrected
    r"\b(?:not|instead of|rather than)\s+([^,.;!?]+)|(?:而不是|不是)([^，。；！？,.;!?]+)", re.I)


def family(memory_type: MemoryType) -> tuple[MemoryType, ...]:
    """The memory types a candidate may duplicate or contradict."""
    if memory_type == MemoryType.preference:
        return (MemoryType.preference,)
    if memory_type in TOOL_TYPES:
        return TOOL_TYPES
    return tuple(t for t in FACT_TYPES if t != MemoryType.working)


DecidedBy = Literal["llm", "rules"]


@dataclass
class _Planner:
    job: IngestJob
    memories: MemoryStore
    index: MemoryIndex
    now: int = field(default_factory=now_ms)
    plan: DedupePlan = field(default_factory=lambda: DedupePlan(writes=[]))
    touched: dict[str, Memory] = field(default_factory=dict)  # id → newest state in this plan
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # vectors still valid
    hashes: dict[str, str] = field(default_factory=dict)  # content hash → id, in this plan
    stored_hits: dict[int, list[IndexHit]] = field(default_factory=dict)  # candidate row →
    # stored memories read for this plan, by id: the neighbours, and episodes' statements
    stored: dict[str, Memory] = field(default_factory=dict)
    held_by: str | None = None  # the memory the last decision left the candidate in
    # memories touched only to note an episode they are told in: stored, not re-embedded
    noted_only: set[str] = field(default_factory=set)

    def search_types(self, cand: Candidate) -> tuple[MemoryType, ...]:
        if self.job.kind == "feedback":  # a correction may target any fact or preference
            return (*family(MemoryType.long_term), MemoryType.preference)
        return family(cand.memory_type)

    def prefetch(self, candidates: Sequence[Candidate], vectors: np.ndarray) -> None:
        """The stored neighbours of every candidate, one index call per type family: the
        store does not change while a plan is made, so this is what asking one by one
        would give, for one matrix product instead of one per candidate."""
        rows_by_types: dict[tuple[MemoryType, ...], list[int]] = {}
        for row, cand in enumerate(candidates):
            if cand.said_by == "assistant":  # kept as said: no neighbours to compare
                self.stored_hits[row] = []
                continue
            rows_by_types.setdefault(self.search_types(cand), []).append(row)
        for types, rows in rows_by_types.items():
            found = self.index.nearest(self.job.tenant_id, self.job.user_id, vectors[rows],
                                       NEIGHBOURS, types)
            self.stored_hits.update(zip(rows, found, strict=True))
        ids = list(dict.fromkeys(h.id for hits in self.stored_hits.values() for h in hits))
        self.stored = {m.id: m for m in self.memories.get_many(self.job.tenant_id, ids)}

    def neighbours(self, row: int, cand: Candidate,
                   vector: np.ndarray) -> list[tuple[Memory, float]]:
        types = self.search_types(cand)
        scored = {h.id: (self.touched.get(h.id, self.stored[h.id]), h.dense)
                  for h in self.stored_hits[row] if h.id in self.stored}
        for memory_id, memory in self.touched.items():  # earlier candidates of this request
            if memory.memory_type in types and memory_id in self.vectors:
                scored[memory_id] = (memory, float(self.vectors[memory_id] @ vector))
        # an episode retells statements: never a candidate's duplicate or contradiction
        alive = [(m, s) for m, s in scored.values()
                 if m.status == MemoryStatus.activated and not m.episode]
        return sorted(alive, key=lambda pair: -pair[1])

    def decide_each(self, candidates: Sequence[Candidate],
                    vectors: np.ndarray) -> dict[int, str]:
        """Decide each candidate: row → the memory holding it, for those held by one."""
        held = {}
        for row, (cand, vector) in enumerate(zip(candidates, vectors, strict=True)):
            self.held_by = None
            self.decide(row, cand, vector)
            if self.held_by is not None:
                held[row] = self.held_by
        return held

    def decide(self, row: int, cand: Candidate, vector: np.ndarray) -> None:
        digest = content_hash(cand.memory_type, cand.memory_value)
        match = self.hashes.get(digest) or self.stored_id(digest)
        if match:
            self.noop(match, SAME_CONTENT)
            return
        if self.job.kind == "feedback":
            self.apply_feedback(row, cand, vector)
            return
        if cand.said_by == "assistant":  # what the assistant said neither updates nor merges
            self.add(cand, vector, digest, ASSISTANT_SAID)
            return
        near = self.neighbours(row, cand, vector)
        if cand.memory_type == MemoryType.preference:
            opposite = [(m, s) for m, s in near if m.polarity and cand.polarity
                        and m.polarity != cand.polarity]
            if opposite and opposite[0][1] >= REFINE_PREFERENCE:
                old, score = opposite[0]
                # the same statement reversed; about other things, the old one still holds
                replace = score >= REPLACE_PREFERENCE and not name_different_things(
                    old.memory_value, cand.memory_value)
                value = cand.memory_value if replace else refine(old.memory_value, cand)
                reason = ("contradicted by a newer preference" if replace
                          else "refined by a newer, related preference")
                self.revise(old, cand, value, "supersede", reason)
                return
        for old, score in near:
            if score < NEAR_DUPLICATE:
                break
            if old.polarity != cand.polarity or name_different_things(old.memory_value,
                                                                       cand.memory_value):
                continue  # a distinct fact of the same shape ("visited museum X")
            if cite_one_item(old.sources, cand.sources):
                continue  # a file's record and its passages are distinct by design
            if names_more(old.memory_value, cand.memory_value):  # the newer drops a name
                self.attach(old, cand, f"near duplicate (cosine {score:.2f}) naming less; "
                                       "stored wording kept, the turn added to its sources")
            else:
                self.revise(old, cand, cand.memory_value, "update",
                            f"near duplicate (cosine {score:.2f}); newer wording kept")
            return
        self.add(cand, vector, digest, "new information")

    def stored_id(self, digest: str) -> str | None:
        found = self.memories.find_by_hash(self.job.tenant_id, self.job.user_id, digest)
        return found.id if found else None

    def resolve_each(self, resolver: ConflictResolver, candidates: Sequence[Candidate],
                     vectors: np.ndarray) -> dict[int, str]:
        """The resolver's path: triage without asking, one call for the rest, then apply
        in candidate order (so a memory two candidates change is taken in its newest state).
        Neighbours are stored memories only, not earlier candidates of the same request
        (which have no id to target yet): the extractor sees the whole request and merges
        what it says, and the LLM, seeing all candidates, can skip one that repeats another."""
        # row → the memory that has its content already (None: an earlier candidate of
        # this request has it, and which memory that ends in is known once applied)
        known: dict[int, str | None] = {}
        far: set[int] = set()
        asked: list[int] = []
        neighbours: list[list[ExistingMemory]] = []
        digests = [content_hash(c.memory_type, c.memory_value) for c in candidates]
        first_row: dict[str, int] = {}
        for row, (cand, vector) in enumerate(zip(candidates, vectors, strict=True)):
            if (first := first_row.setdefault(digests[row], row)) != row:
                known[row] = known.get(first)
            elif match := self.stored_id(digests[row]):
                known[row] = match
            elif cand.said_by == "assistant":
                far.add(row)  # kept as said, as the rules keep it
            elif not (near := self.neighbours(row, cand, vector)) or \
                    near[0][1] < RESOLVE_FLOOR:
                far.add(row)
            else:
                asked.append(row)
                neighbours.append([ExistingMemory(m, s) for m, s in near[:NEIGHBOURS]])

        operations: dict[int, list[ResolveOperation]] = {}
        if asked:
            try:
                resolution = resolver.resolve([candidates[row] for row in asked], neighbours,
                                              feedback=self.job.kind == "feedback")
            except InvalidReply as exc:
                self.plan.usage += exc.usage
                self.plan.warnings.append(RESOLVER_FALLBACK)
                return self.decide_each(candidates, vectors)
            self.plan.usage += resolution.usage
            self.plan.warnings += resolution.warnings
            for op in resolution.operations:
                if 0 <= op.candidate < len(asked):
                    operations.setdefault(asked[op.candidate], []).append(op)

        held = {}
        for row, (cand, vector) in enumerate(zip(candidates, vectors, strict=True)):
            self.held_by = None
            if row in known:
                self.noop(known[row] or self.hashes.get(digests[row]), SAME_CONTENT)
            elif row in far:
                self.add_new(cand, vector, digests[row], ASSISTANT_SAID if
                             cand.said_by == "assistant" else NOTHING_NEAR, "rules")
            else:  # a candidate without an operation is added, as the port promises
                for op in operations.get(row) or [ResolveOperation("add", row)]:
                    self.apply(op, cand, vector, digests[row])
            if self.held_by is not None:
                held[row] = self.held_by
        return held

    def apply(self, op: ResolveOperation, cand: Candidate, vector: np.ndarray,
              digest: str) -> None:
        if op.op == "noop":
            self.noop(op.target, op.reason, "llm")
            return
        if op.op == "add":
            self.add_new(cand, vector, digest, op.reason, "llm")
            return
        target = self.touched.get(op.target) or self.stored.get(op.target)
        if target is None or target.status != MemoryStatus.activated:
            # An earlier candidate of this request deleted it (or a resolver named a memory
            # it was not shown): nothing left to delete; an update's news is kept as new.
            if op.op == "delete":
                self.noop(op.target, f"{op.reason} (already no longer current)", "llm")
            else:
                self.plan.warnings.append(f"the LLM updated memory {op.target}, which is no "
                                          "longer current; the candidate was added instead")
                self.add_new(cand, vector, digest, op.reason, "llm")
            return
        if op.op == "delete":
            self.invalidate(target, cand, op.reason, "llm")
        elif content_hash(target.memory_type, op.value) == target.content_hash:
            self.noop(target.id, op.reason, "llm")  # the "update" changes nothing
        else:
            change = "feedback" if self.job.kind == "feedback" else "supersede"
            self.revise(target, cand, op.value, change, op.reason, "llm")

    def add_new(self, cand: Candidate, vector: np.ndarray, digest: str, reason: str,
                by: DecidedBy) -> None:
        """Add, unless this plan has stored the same content already."""
        if digest in self.hashes:
            self.noop(self.hashes[digest], SAME_CONTENT, by)
        else:
            self.add(cand, vector, digest, reason, by)

    def noop(self, memory_id: str | None, reason: str, by: DecidedBy = "rules") -> None:
        self.held_by = memory_id
        self.plan.noop += 1
        self.plan.decisions.append(Decision(action="noop", memory_id=memory_id, reason=reason,
                                            by=by))

    def apply_feedback(self, row: int, cand: Candidate, vector: np.ndarray) -> None:
        named = [a or b for a, b in CORRECTED.findall(cand.memory_value)]
        scored = sorted(
            ((m, s + (NAMED_IN_CORRECTION if any(n.strip().casefold() in m.memory_value.casefold()
                                                  for n in named) else 0.0))
             for m, s in self.neighbours(row, cand, vector)),
            key=lambda pair: -pair[1])
        if not scored or scored[0][1] < FEEDBACK_TARGET:
            self.add(cand, vector, content_hash(cand.memory_type, cand.memory_value),
                     "no stored memory near enough to correct; stored as new")
            return
        target = scored[0][0]
        if FORGET.search(cand.memory_value):
            self.invalidate(target, cand, "the user asked to forget it (feedback)")
        else:
            self.revise(target, cand, corrected(target.memory_value, cand), "feedback",
                        "corrected by user feedback")

    def add(self, cand: Candidate, vector: np.ndarray, digest: str, reason: str,
            by: DecidedBy = "rules") -> None:
        job = self.job
        memory = Memory(
            tenant_id=job.tenant_id, user_id=job.user_id, conversation_id=job.conversation_id,
            agent_id=job.agent_id, app_id=job.app_id, memory_type=cand.memory_type,
            memory_key=cand.memory_key, memory_value=cand.memory_value,
            tags=_union(job.tags, cand.tags), info=dict(job.info), confidence=cand.confidence,
            sources=list(cand.sources), create_time=self.now, update_time=self.now,
            event_time=cand.event_time, valid_from=cand.event_time or self.now,
            content_hash=digest, preference_type=cand.preference_type, polarity=cand.polarity,
            reasoning=cand.reasoning, language=cand.language, context=cand.context,
            said_by=cand.said_by, whole_turn=cand.whole_turn, task_id=job.task_id,
            public=job.allow_public, knowledgebase_ids=list(job.knowledgebase_ids),
        )
        self.touched[memory.id] = memory
        self.vectors[memory.id] = vector
        self.hashes[digest] = memory.id
        self.held_by = memory.id
        self.plan.added.append(memory.id)
        self.plan.decisions.append(Decision(action="add", memory_id=memory.id, reason=reason,
                                            by=by))

    def revise(self, old: Memory, cand: Candidate, value: str, change: str, reason: str,
               by: DecidedBy = "rules") -> None:
        when = cand.event_time or self.now
        memory = old.model_copy(deep=True)
        memory.history.append(MemoryVersion(
            version=memory.version, memory_value=memory.memory_value,
            valid_from=memory.valid_from, valid_to=when, change=change, reason=reason,
            task_id=self.job.task_id))
        memory.memory_value = value
        memory.version += 1
        memory.valid_from, memory.update_time = when, self.now
        memory.event_time = cand.event_time or memory.event_time
        memory.sources = _union(memory.sources, cand.sources)
        memory.tags = _union(memory.tags, cand.tags)
        memory.polarity = cand.polarity if change == "supersede" else memory.polarity
        if change != "feedback":  # feedback is about the memory, not a turn it was said in
            memory.context = cand.context or memory.context
        memory.content_hash = content_hash(memory.memory_type, value)
        self.touched[memory.id] = memory
        self.vectors.pop(memory.id, None)  # re-embedded at the end of the plan
        self.noted_only.discard(memory.id)
        self.hashes[memory.content_hash] = memory.id
        self.held_by = memory.id
        if memory.id not in self.plan.added and memory.id not in self.plan.updated:
            self.plan.updated.append(memory.id)
        self.plan.decisions.append(Decision(action="update", memory_id=memory.id,
                                            reason=reason, by=by))

    def attach(self, old: Memory, cand: Candidate, reason: str) -> None:
        """The same fact said again in fewer words: the memory keeps its value (so no new
        version) and gains the turn as a source."""
        memory = old.model_copy(deep=True)
        memory.sources = _union(memory.sources, cand.sources)
        memory.tags = _union(memory.tags, cand.tags)
        memory.update_time = self.now
        self.touched[memory.id] = memory  # re-indexed at the end of the plan (its sources)
        self.noted_only.discard(memory.id)
        self.noop(memory.id, reason)

    def invalidate(self, old: Memory, cand: Candidate, reason: str,
                   by: DecidedBy = "rules") -> None:
        when = cand.event_time or self.now
        memory = old.model_copy(deep=True)
        memory.history.append(MemoryVersion(
            version=memory.version, memory_value=memory.memory_value,
            valid_from=memory.valid_from, valid_to=when, change="delete", reason=reason,
            task_id=self.job.task_id))
        memory.status, memory.valid_to, memory.update_time = MemoryStatus.deleted, when, self.now
        self.touched[memory.id] = memory
        self.plan.deleted.append(memory.id)
        self.plan.decisions.append(Decision(action="delete", memory_id=memory.id,
                                            reason=reason, by=by))
        self.retire_episodes(memory, reason)

    def retire_episodes(self, memory: Memory, reason: str) -> None:
        """The episodes that tell a memory being deleted go with it."""
        ids = [i for i in memory.episode_ids if i not in self.touched]
        told_in = [self.touched[i] for i in memory.episode_ids if i in self.touched]
        told_in += self.memories.get_many(self.job.tenant_id, ids) if ids else []
        for episode in told_in:
            if episode.status != MemoryStatus.activated:
                continue
            episode = episode.model_copy(deep=True)
            episode.status, episode.valid_to, episode.update_time = (
                MemoryStatus.deleted, self.now, self.now)
            self.touched[episode.id] = episode
            self.plan.deleted.append(episode.id)
            self.plan.decisions.append(Decision(
                action="delete", memory_id=episode.id,
                reason=f"an episode telling memory {memory.id}: {reason}", by="rules"))

    def tell_episodes(self, candidates: Sequence[Candidate], vectors: np.ndarray,
                      held: dict[int, str], turns: RequestTurns) -> None:
        """An episode for each speaker's statements of this add (pipeline/episodes.py),
        noted on the memories that hold them."""
        from engram.pipeline.episodes import episode_vector, episodes

        told_in_add = episodes(self.job, candidates, held)
        unread = [held[row] for told in told_in_add for row in told.members
                  if held[row] not in self.touched and held[row] not in self.stored]
        if unread:  # statements said before, left as they were: one read for all
            self.stored |= {m.id: m for m in self.memories.get_many(self.job.tenant_id,
                                                                    unread)}
        for told in told_in_add:
            first = candidates[told.members[0]]
            value = told.value(candidates)
            digest = content_hash(MemoryType.long_term, value)
            if digest in self.hashes or self.stored_id(digest):
                continue  # told already (a replayed add)
            cand = Candidate(
                memory_type=MemoryType.long_term, memory_key=told.key(first.language),
                memory_value=value,
                sources=list(dict.fromkeys(s for r in told.members
                                           for s in candidates[r].sources)),
                event_time=told.chat_time, language=first.language, confidence=1.0)
            self.add(cand, episode_vector(told, candidates, turns, vectors), digest,
                     f"an episode: {len(told.members)} statements of this add told together")
            episode_id = self.held_by
            self.touched[episode_id].episode = True
            for row in told.members:
                self.note_episode(held[row], episode_id)

    def note_episode(self, memory_id: str, episode_id: str) -> None:
        memory = self.touched.get(memory_id)
        if memory is None:
            found = self.stored.get(memory_id)
            if found is None:
                return
            memory = self.touched[memory_id] = found.model_copy(deep=True)
            if memory_id not in self.vectors:
                self.noted_only.add(memory_id)
        if episode_id not in memory.episode_ids:
            memory.episode_ids.append(episode_id)

    def finish(self, embedder: Embedder, turns: RequestTurns) -> DedupePlan:
        stale = [m for m in self.touched.values()
                 if m.id not in self.vectors and m.id not in self.noted_only
                 and m.status == MemoryStatus.activated]
        if stale:
            vectors = memory_vectors(embedder, stale, turns)
            for memory, vector in zip(stale, vectors, strict=True):
                self.vectors[memory.id] = vector
        self.plan.writes = [
            MemoryWrite(memory=m, vector=packed(self.vectors[m.id]) if m.id in self.vectors
                        else None)
            for m in self.touched.values()
        ]
        return self.plan


def packed(vector: np.ndarray) -> str:
    """A vector as MemoryWrite keeps it; `unpacked` reads it back."""
    import numpy as np

    return base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode("ascii")


def unpacked(vector: str | list[float]) -> np.ndarray:
    import numpy as np

    if isinstance(vector, list):
        return np.asarray(vector, dtype=np.float32)
    return np.frombuffer(base64.b64decode(vector), dtype=np.float32)


def _norm(word: str) -> str:
    return (word.lstrip("0") or "0") if word.isdigit() else word.casefold()  # "07" is 7


def _names(text: str) -> tuple[set[str], set[str]]:
    """(every term of `text`, the terms that name something), casefolded. A word names
    something when it is written with a capital (a person, a place, a month, a museum),
    holds a digit or is a number word (a count, a date), or is quoted (a title). In CJK
    text, a run of numerals is one term ("三十" is not "三十一") and every other character
    one term, but those of marker words: a character inserted ("不喜欢") names nothing new
    of its own, one replaced ("小红" / "小明") does."""
    text = POSSESSIVE.sub("", unicodedata.normalize("NFKC", text))
    cjk = " ".join(CJK_RUN.findall(CJK_MARKERS.sub("", text)))
    numerals = set(CJK_NUMERALS.findall(cjk))
    characters = set(CJK_NUMERALS.sub(" ", cjk).replace(" ", ""))
    latin = CJK_RUN.sub(" ", text)
    words = WORD.findall(latin)
    quoted = {_norm(w) for groups in QUOTED.findall(latin) for g in groups
              for w in WORD.findall(g)}
    named = {_norm(w) for w in words
             if (w[0].isupper() and w != "I") or any(c.isdigit() for c in w)
             or w.casefold() in NUMBER_WORDS}
    return ({_norm(w) for w in words} | numerals | characters,
            named | quoted | numerals | characters)


def names_more(text: str, other: str) -> bool:
    """Whether `text` names something `other` does not mention at all."""
    return not _names(text)[1] <= _names(other)[0]


def name_different_things(first: str, second: str) -> bool:
    """Whether each text names something the other does not: "visited museum Louvre" and
    "visited museum Prado", "is 30" and "is 31", "妹妹叫小红" and "妹妹叫小明" are two
    facts, however close their sentences embed (distinct facts of one shape measured
    0.90–0.97 cosine with MiniLM). Adding a name ("lives in Lisbon" → "…Lisbon,
    Portugal") is detail on the same fact; lower-case words alone ("amazing" /
    "awesome") are rewording."""
    return names_more(first, second) and names_more(second, first)


def refine(old_value: str, cand: Candidate) -> str:
    """Join an older preference and the newer one that qualifies it."""
    newer = re.sub(r"^(but|however|although)\s+", "", cand.memory_value.strip(), flags=re.I)
    newer = re.sub(r"^(但是|但|不过|可是)", "", newer)
    older = old_value.rstrip(" .。!！")
    if cand.language == "zh":
        return f"{older}，但{newer}"
    return f"{older}, but {newer[0].lower()}{newer[1:]}" if newer else older


def corrected(old_value: str, cand: Candidate) -> str:
    """The correction, saying what it replaces: the feedback alone often drops what the
    memory was about ("switched to Hilton" no longer says it is the Guangzhou hotel)."""
    old = CORRECTS_NOTE.sub("", old_value).rstrip(" .。")
    new = cand.memory_value.rstrip(" .。")
    return f"{new}（更正：{old}）。" if cand.language == "zh" else f"{new} (corrects: {old})."


def _union(first: Sequence[str], second: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


def plan_changes(job: IngestJob, candidates: Sequence[Candidate], memories: MemoryStore,
                 index: MemoryIndex, embedder: Embedder,
                 resolver: ConflictResolver | None = None) -> DedupePlan:
    """What the task's candidates change; `resolver` None: the rules alone decide.
    LlmUnavailable from the resolver propagates (the task fails and can be retried)."""
    planner = _Planner(job=job, memories=memories, index=index)
    turns = RequestTurns(embedder, job)  # kept at accept, or embedded here on first need
    if candidates:
        vectors = memory_vectors(embedder, candidates, turns)
        planner.prefetch(candidates, vectors)
        if resolver is None:
            held = planner.decide_each(candidates, vectors)
        else:
            held = planner.resolve_each(resolver, candidates, vectors)
        planner.tell_episodes(candidates, vectors, held, turns)
    return planner.finish(embedder, turns)


def cite_one_item(first: Sequence[str], second: Sequence[str]) -> bool:
    """Whether two memories were made from the same item of a message (a file: its
    "shared" record, its pages), as their sources say ("<message id>#item=<n>[&page=…]")."""
    def items(sources: Sequence[str]) -> set[str]:
        return {s.split("&", 1)[0] for s in sources if "#item=" in s}
    return bool(items(first) & items(second))
