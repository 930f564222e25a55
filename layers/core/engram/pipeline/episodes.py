"""Episodes: what one speaker said in one add, kept together as one memory beside the
statements extracted from it (EverOS's episodic memory; a MemOS LongTermMemory).

A statement alone is findable by what it says, and often not by the question: for "What
does Melanie do to destress?", the statement of her "I've been running farther to
de-stress" ranked below fifty other memories of that user (LoCoMo dev). Told with the
rest of its conversation, it is found by what the conversation was about: that episode
ranks second.

An episode holds a speaker's short statements of one add in the order said, up to
EPISODE_WORDS words (a longer add makes several). Long statements stand alone: they say
enough to be found, and would fill an episode. What the assistant said, turns kept whole,
tool and document memories are not told: they have memories of their own. An episode's
vector is made of vectors the add has already: it costs no embedding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from engram.models.domain import Candidate, MemoryType
from engram.models.pipeline import IngestJob

if TYPE_CHECKING:
    import numpy as np

# LoCoMo dev recall_frac@10 / LongMemEval dev words in the top 10 (README, Benchmarks):
# episodes of up to 120 / 150 words, statements of up to 30 words: 0.851 / 0.854 and
# 388 / 420 words; statements of up to 20 / 25 / any words: 0.841 / 0.846 / 0.857, and
# 339 / 396 / 448 words.
EPISODE_WORDS = 150
MAX_TOLD_WORDS = 30
# The vector: the mean of its turns' vectors, with this weight on the mean of its
# statements' (which name the speaker, as questions do). 0 / 0.5 / 0.75 / 1 gave LoCoMo
# dev (statements of any length) 0.818 / 0.839 / 0.857 / 0.855, with 162 / 236 / 310 /
# 406 words in the top 10.
STATEMENTS_WEIGHT = 0.75
TOLD_TYPES = (MemoryType.long_term, MemoryType.user, MemoryType.preference)


@dataclass
class Episode:
    speaker: str
    members: list[int] = field(default_factory=list)  # candidate rows, in order
    words: int = 0
    chat_time: int | None = None

    def value(self, candidates: Sequence[Candidate]) -> str:
        joiner = "" if candidates[self.members[0]].language == "zh" else " "
        return joiner.join(_sentence(candidates[row].memory_value) for row in self.members)

    def key(self, language: str = "en") -> str:
        day = (datetime.fromtimestamp(self.chat_time / 1000, tz=UTC)
               if self.chat_time is not None else None)
        if language == "zh":
            who = self.speaker or "用户"
            return f"{who}的对话" if day is None else \
                f"{who}在{day.year}年{day.month}月{day.day}日的对话"
        who = self.speaker or "User"
        return f"{who}, in conversation" if day is None else \
            f"{who}, in conversation on {day.day} {day:%B %Y}"


def _sentence(value: str) -> str:
    value = value.strip()
    return value if value[-1:] in ".!?。！？" else value + "."


def words(cand: Candidate) -> int:
    """Its length in words; Chinese, written without spaces, counts two characters a word."""
    if cand.language == "zh":
        return max(1, len(cand.memory_value) // 2)
    return len(cand.memory_value.split())


def told(cand: Candidate) -> bool:
    """Whether a candidate is told in its add's episode."""
    return (cand.said_by == "user" and not cand.whole_turn
            and words(cand) <= MAX_TOLD_WORDS
            and cand.memory_type in TOLD_TYPES
            and not any("#item=" in s for s in cand.sources))


def episodes(job: IngestJob, candidates: Sequence[Candidate],
             held: Mapping[int, str]) -> list[Episode]:
    """The episodes of an add: `held` maps the candidates that hold a memory after dedupe
    (row → its id) to it; a memory two candidates ended in is told once. One of a single
    statement would repeat it: none is made."""
    if job.kind != "add":
        return []
    spoken = {m.message_id: m for m in job.messages}
    open_: dict[str, Episode] = {}
    out: list[Episode] = []
    seen: set[str] = set()
    for row in sorted(held):
        cand = candidates[row]
        if not told(cand) or not cand.sources or held[row] in seen:
            continue
        seen.add(held[row])
        message = spoken.get(cand.sources[0])
        if message is None:
            continue
        speaker = message.speaker or ""
        length = words(cand)
        current = open_.get(speaker)
        if current is None or current.words + length > EPISODE_WORDS:
            current = open_[speaker] = Episode(speaker, chat_time=message.chat_time)
            out.append(current)
        current.members.append(row)
        current.words += length
    return [e for e in out if len(e.members) > 1]


def episode_vector(episode: Episode, candidates: Sequence[Candidate],
                   turns: Mapping[str, np.ndarray], vectors: np.ndarray) -> np.ndarray:
    """Its turns' mean vector (each turn once; a statement whose turn the add did not
    embed counts with its own vector) mixed with its statements' mean, unit length."""
    import numpy as np

    rows, seen = [], set()
    for row in episode.members:
        turn = candidates[row].turn_text
        if turn and turn in turns:
            if turn not in seen:
                seen.add(turn)
                rows.append(np.asarray(turns[turn], dtype=np.float32))
        else:
            rows.append(vectors[row])
    turns_mean = _unit(np.mean(rows, axis=0))
    statements_mean = _unit(np.mean([vectors[row] for row in episode.members], axis=0))
    return _unit((1 - STATEMENTS_WEIGHT) * turns_mean + STATEMENTS_WEIGHT * statements_mean)


def _unit(vector: np.ndarray) -> np.ndarray:
    import numpy as np

    return (vector / (np.linalg.norm(vector) or 1.0)).astype(np.float32)
