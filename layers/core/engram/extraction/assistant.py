"""What the assistant said, kept so a user can ask about it later ("which app did you
recommend?", "remind me of the phone number you gave me").

An assistant turn is not rewritten into facts about the user: it is cut into passages (its
lines — a list item, a paragraph — joined up to PASSAGE_CHARS, a long line split at sentence
ends) and each passage is one memory, `said_by` the assistant. Such memories are searched
by their words only (retrieval/vectors.py gives them no embedding: assistant answers are
long, and embedding them cost LongMemEval ingest a factor of four), and search favours them
when the query asks what the assistant said (retrieval/intent.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from engram.extraction.context import FILLER, detect_language, normalise, turn_context
from engram.models.domain import Candidate, MemoryType, MessageRecord, Role
from engram.retrieval.lexical import tokenize

PASSAGE_CHARS = 300  # ~50 words: one list item or a short paragraph
# An answer is kept up to this many passages (~12,000 characters; LongMemEval's longest
# answers have fewer): a 100,000-character turn must not become 333 memories.
MAX_PASSAGES = 40
MIN_WORDS = 5  # "Sure! Here are some options:" says nothing to find later
ECHO_NEW_TERMS = 3  # "Got it, you like spicy food." adds fewer new terms than this to the turn
CONFIDENCE_ASSISTANT = 0.8
ASSISTANT_KEY = {"en": "Assistant's answer", "zh": "助手的回答"}
SAID = {"en": "The assistant said: {}", "zh": "助手说：{}"}

_LINES = re.compile(r"\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def assistant_candidates(messages: Sequence[MessageRecord]) -> list[Candidate]:
    """One candidate per passage of every assistant turn, its context the turn before."""
    candidates: list[Candidate] = []
    previous: MessageRecord | None = None
    for message in messages:
        if message.role == Role.assistant and message.text.strip():
            candidates += _passages_of(message, previous)
        if message.role in (Role.user, Role.assistant):
            previous = message
    return candidates


def _passages_of(message: MessageRecord, previous: MessageRecord | None) -> list[Candidate]:
    text = normalise(message.text)
    language = detect_language(text)
    asked = set(tokenize(previous.text)) if previous is not None else None
    return [Candidate(memory_type=MemoryType.long_term, memory_key=ASSISTANT_KEY[language],
                      memory_value=SAID[language].format(passage),
                      confidence=CONFIDENCE_ASSISTANT, sources=[message.message_id],
                      event_time=message.event_time, language=language,
                      context=turn_context(previous, message, passage), said_by="assistant")
            for passage in passages(text)[:MAX_PASSAGES]
            if _worth_keeping(passage, language, asked)]


def _worth_keeping(passage: str, language: str, asked: set[str] | None) -> bool:
    """Long enough, more than courtesy (says_something), and not the user's turn (`asked`,
    its terms) said back."""
    long_enough = len(passage.split()) >= MIN_WORDS or (
        language == "zh" and len(passage) >= MIN_WORDS * 2)
    if not long_enough:
        return False
    terms = set(tokenize(passage))  # once for both checks
    return len(terms - FILLER) >= 2 and not _echoes(terms, asked)


def _echoes(terms: set[str], asked: set[str] | None) -> bool:
    """An acknowledgement that repeats the user's turn back: most of its terms are the
    turn's, and it adds fewer than ECHO_NEW_TERMS of its own."""
    if asked is None:
        return False
    new = terms - asked
    return len(new) < ECHO_NEW_TERMS and 2 * len(new) <= len(terms)


def passages(text: str) -> list[str]:
    """Lines joined up to PASSAGE_CHARS; a longer line split at sentence ends (or, with
    none, at a space)."""
    pieces = [piece for line in _LINES.split(text) if line.strip()
              for piece in _split(line.strip())]
    out: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + len(piece) + 1 > PASSAGE_CHARS:
            out.append(current)
            current = ""
        current = f"{current} {piece}".strip()
    if current:
        out.append(current)
    return out


def _split(line: str) -> list[str]:
    if len(line) <= PASSAGE_CHARS:
        return [line]
    out: list[str] = []
    for sentence in _SENTENCE_END.split(line):
        while len(sentence) > PASSAGE_CHARS:
            cut = sentence.rfind(" ", 0, PASSAGE_CHARS)
            cut = cut if cut > PASSAGE_CHARS // 2 else PASSAGE_CHARS
            out.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            out.append(sentence)
    return out
