"""An extractor that returns what the test scripted for each message text."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engram.models.domain import Candidate, MessageRecord


class ScriptedExtractor:
    name = "scripted"

    def __init__(self, script: Callable[[MessageRecord], list[Candidate]]):
        self._script = script

    def extract(self, messages: Sequence[MessageRecord]) -> list[Candidate]:
        return [c for m in messages for c in self._script(m)]
