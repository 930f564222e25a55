"""What both extractors (rules/ and llm.py) read a turn with: its language, its text
normalised and without the speaker's "Name:" prefix, the tool calls written out in it, and
the context a memory keeps of the conversation around it."""

from __future__ import annotations

import re
from functools import lru_cache

from engram.models.domain import CONTEXT_SEPARATOR, MessageRecord
from engram.retrieval.lexical import tokenize

CONTEXT_LIMIT = 300
MAX_TAGS = 5
# `speaker` values that name a role, not a person.
GENERIC_SPEAKERS = frozenset({"user", "assistant", "system", "tool", "human", "ai", "bot"})

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
# "[image: a dog on a beach]": how a shared image's description travels in a text turn.
IMAGE_CAPTION = re.compile(r"\[(?:image|photo|picture)\s*[:：]\s*([^\]]+)\]", re.I)


def detect_language(text: str) -> str:
    """'zh' when CJK characters are at least 40% of the letters, else 'en'."""
    cjk = len(_CJK.findall(text))
    if not cjk:
        return "en"
    return "zh" if cjk / (cjk + len(_LATIN.findall(text))) >= 0.4 else "en"


def normalise(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = _EMOJI.sub("", text)
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.splitlines())


def strip_speaker_prefix(text: str, speaker: str | None) -> str:
    """'Caroline: I went ...' → 'I went ...' when Caroline is the speaker."""
    if speaker and text.startswith(speaker):
        rest = text[len(speaker):].lstrip()
        if rest[:1] in (":", "："):
            return rest[1:].lstrip()
    return text


def own_words(message: MessageRecord) -> str:
    """What a memory's context ends with (the rule-based extractor's `own`): the turn's text
    without the speaker's "Name:" prefix and its image captions (a memory of their own).
    retrieval/vectors.py predicts a memory's turn text from it at accept."""
    return IMAGE_CAPTION.sub(" ", strip_speaker_prefix(message.text, message.speaker))


def turn_context(previous: MessageRecord | None, message: MessageRecord, own: str,
                 between: str = "") -> str:
    """A memory's context (see Candidate.context): the turn `message` answered (when
    another speaker said it), `between`, and `own`, the words of `message` itself, last."""
    parts = []
    if previous and previous.message_id != message.message_id and (
        previous.role != message.role or previous.speaker != message.speaker
    ):
        parts.append(clip(_one_line(previous.text), CONTEXT_LIMIT))
    parts.append(between)
    parts.append(clip(_one_line(own), CONTEXT_LIMIT))
    return CONTEXT_SEPARATOR.join(p for p in parts if p)


# Every memory of a turn repeats the turn before it in its context: one normalising each
# (a long assistant answer took a fifth of LongMemEval's ingest, normalised per memory).
# Small: the repeats come together, and a turn may be 100,000 characters.
@lru_cache(maxsize=32)
def _one_line(text: str) -> str:
    return normalise(text).replace("\n", " ")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# Courtesy and greeting words: a text with fewer than two terms beyond these says nothing
# to find later ("Okay, ask me if you have any other questions.", "Hey! Good to see you!")
FILLER = frozenset(tokenize(
    "okay ok sure yes certainly absolutely of course great glad happy help helps let know "
    "feel free ask asking question questions anything else other something welcome thank "
    "thanks hope hear good luck enjoy please more need tips assist hey hi hello see seeing "
    "nice wow cool awesome amazing sweet really talk soon later bye take care doing"))


def says_something(text: str, names: frozenset[str] = frozenset()) -> bool:
    """Whether `text` has at least two terms that are neither courtesy (FILLER) nor one of
    `names` (those the speakers call each other)."""
    return len(set(tokenize(text)) - FILLER - set(tokenize(" ".join(names)))) >= 2
