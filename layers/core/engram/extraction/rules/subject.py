"""Who a memory is about: the speaker, by name when the turn gives one, else "the user"."""

from __future__ import annotations

from dataclasses import dataclass

from engram.extraction.context import GENERIC_SPEAKERS
from engram.models.domain import MessageRecord


@dataclass(frozen=True, slots=True)
class Subject:
    """How the memory names the person who spoke."""

    name: str  # "the user", "Caroline", "用户"
    language: str

    @classmethod
    def of(cls, message: MessageRecord, language: str) -> Subject:
        speaker = (message.speaker or "").strip()
        if speaker and speaker.lower() not in GENERIC_SPEAKERS:
            return cls(speaker, language)
        return cls("用户" if language == "zh" else "the user", language)

    @property
    def possessive(self) -> str:
        if self.language == "zh":
            return f"{self.name}的"
        return f"{self.name}'" if self.name.endswith("s") else f"{self.name}'s"

    @property
    def group(self) -> str:
        return f"{self.name}和其他人" if self.language == "zh" else f"{self.name} and others"

    @property
    def is_named(self) -> bool:
        return self.name not in ("the user", "用户")


def strip_subject(text: str, subject: Subject) -> str:
    """The text without the subject it opens with ('the user and others', "the user's",
    'the user')."""
    for prefix in (subject.group, subject.possessive, subject.name):
        if text[: len(prefix)].lower() == prefix.lower():
            return text[len(prefix):].lstrip()
    return text
