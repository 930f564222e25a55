"""Reading LoCoMo-format files (see ../shared/eval/README.md; `engram import` and bench/):
sessions of turns, and QA with cleaned evidence ids."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SESSION_KEY = re.compile(r"^session_(\d+)$")
EVIDENCE_SPLIT = re.compile(r"[;,\s]+")
HEADLINE_CATEGORIES = (1, 2, 3, 4)
CATEGORY_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop",
                  5: "adversarial"}


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    text: str  # what Engram is sent: the speaker's words plus a photo's caption
    chat_time: str  # ISO 8601, the session's date


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    evidence: tuple[str, ...]
    category: int


@dataclass(frozen=True)
class Conversation:
    sample_id: str
    sessions: tuple[tuple[int, tuple[Turn, ...]], ...]
    questions: tuple[Question, ...]

    @property
    def turns(self) -> list[Turn]:
        return [t for _, turns in self.sessions for t in turns]

    @property
    def last_time(self) -> str:
        """When the conversation's last session took place (ISO 8601)."""
        return max(t.chat_time for t in self.turns)


def session_time(raw: str) -> str:
    parsed = datetime.strptime(raw.strip(), "%I:%M %p on %d %B, %Y")
    return parsed.replace(tzinfo=UTC).isoformat()


def turn_text(raw: dict) -> str:
    text = f"{raw['speaker']}: {raw['text']}"
    if raw.get("blip_caption"):  # the image itself is not released: its caption stands in
        text += f" [image: {raw['blip_caption']}]"
    return text


def clean_evidence(raw: list[str], known: set[str]) -> tuple[str, ...]:
    """'D8:6; D9:17' → two ids, 'D:11:26' → 'D11:26', 'D30:05' → 'D30:5'; unknown dropped."""
    cleaned: list[str] = []
    for entry in raw:
        for token in filter(None, EVIDENCE_SPLIT.split(str(entry))):
            match = re.fullmatch(r"D:?(\d+):0*(\d+)", token)
            if match:
                dia_id = f"D{int(match.group(1))}:{int(match.group(2))}"
                if dia_id in known and dia_id not in cleaned:
                    cleaned.append(dia_id)
    return tuple(cleaned)


def load(path: Path) -> list[Conversation]:
    conversations = []
    for sample in json.loads(path.read_text()):
        conv = sample["conversation"]
        numbers = sorted(int(m.group(1)) for k in conv if (m := SESSION_KEY.match(k)))
        sessions = []
        for n in numbers:
            when = session_time(conv[f"session_{n}_date_time"])
            sessions.append((n, tuple(Turn(t["dia_id"], t["speaker"], turn_text(t), when)
                                      for t in conv[f"session_{n}"])))
        known = {t.dia_id for _, turns in sessions for t in turns}
        questions = tuple(
            Question(q["question"], str(q.get("answer", "")),
                     clean_evidence(q.get("evidence", []), known), int(q["category"]))
            for q in sample["qa"])
        conversations.append(Conversation(sample["sample_id"], tuple(sessions), questions))
    return conversations
