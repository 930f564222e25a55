"""Reading LongMemEval files (see ../shared/eval/README.md): a directory of per-question JSON
files, or one JSON file holding a list of them (the official `longmemeval_s_cleaned.json`).

A turn's message id is `<session_id>#<i>`, i its 0-based index in the session, so the
turns a memory cites name their session; evidence turns are those marked `has_answer`
(the assistant's included)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

QUESTION_TYPES = ("single-session-user", "single-session-assistant",
                  "single-session-preference", "multi-session", "knowledge-update",
                  "temporal-reasoning")
WEEKDAY = re.compile(r"\s*\([^)]*\)\s*")  # "(Tue)": the date already says it


@dataclass(frozen=True)
class Turn:
    message_id: str
    role: str  # user | assistant
    text: str
    has_answer: bool


@dataclass(frozen=True)
class Session:
    session_id: str
    chat_time: str  # ISO 8601
    turns: tuple[Turn, ...]

    @property
    def words(self) -> int:
        return sum(len(t.text.split()) for t in self.turns)


@dataclass(frozen=True)
class Question:
    question_id: str
    question_type: str
    question: str
    answer: str
    question_date: str  # ISO 8601: when it is asked, the search's reference time
    answer_session_ids: tuple[str, ...]
    sessions: tuple[Session, ...]

    @property
    def abstention(self) -> bool:
        return self.question_id.endswith("_abs")

    @property
    def evidence_turns(self) -> tuple[str, ...]:
        return tuple(t.message_id for s in self.sessions for t in s.turns if t.has_answer)

    @property
    def turns(self) -> list[Turn]:
        return [t for s in self.sessions for t in s.turns]


def message_id(session_id: str, index: int) -> str:
    return f"{session_id}#{index}"


def session_of(message: str) -> str:
    return message.rsplit("#", 1)[0]


def lme_time(raw: str) -> str:
    """'2023/05/30 (Tue) 23:42' → '2023-05-30T23:42:00+00:00' (the data names no zone)."""
    parsed = datetime.strptime(WEEKDAY.sub(" ", raw).strip(), "%Y/%m/%d %H:%M")
    return parsed.replace(tzinfo=UTC).isoformat()


def question(raw: dict) -> Question:
    sessions = tuple(
        Session(sid, lme_time(when), tuple(
            Turn(message_id(sid, i), t["role"], t["content"], bool(t.get("has_answer")))
            for i, t in enumerate(turns)))
        for sid, when, turns in zip(raw["haystack_session_ids"], raw["haystack_dates"],
                                    raw["haystack_sessions"], strict=True))
    return Question(str(raw["question_id"]), raw["question_type"], raw["question"],
                    str(raw.get("answer", "")), lme_time(raw["question_date"]),
                    tuple(raw["answer_session_ids"]), sessions)


def load(path: Path) -> list[Question]:
    """Every question, in file-name order for a directory, in list order for a file."""
    if path.is_dir():
        raws = [json.loads(f.read_text()) for f in sorted(path.glob("*.json"))]
    else:
        loaded = json.loads(path.read_text())
        raws = loaded if isinstance(loaded, list) else [loaded]
    return [question(raw) for raw in raws]


def select(questions: list[Question], types: list[str] | None = None,
           limit: int | None = None) -> list[Question]:
    """The retrieval questions: abstention ones (`_abs`) left out, then `types`; `limit`
    takes them in turn from each type (in order within a type), so a quick run of 6 still
    asks one of each."""
    unknown = set(types or ()) - set(QUESTION_TYPES)
    if unknown:
        raise ValueError(f"unknown question types {sorted(unknown)}; known: {QUESTION_TYPES}")
    chosen = [q for q in questions if not q.abstention
              and (not types or q.question_type in types)]
    if limit is None or limit >= len(chosen):
        return chosen
    by_type: dict[str, list[Question]] = {}
    for q in chosen:
        by_type.setdefault(q.question_type, []).append(q)
    taken = {id(q) for q in roundrobin(list(by_type.values()))[:limit]}
    return [q for q in chosen if id(q) in taken]


def roundrobin(groups: list[list[Question]]) -> list[Question]:
    return [g[i] for i in range(max(map(len, groups))) for g in groups if i < len(g)]
