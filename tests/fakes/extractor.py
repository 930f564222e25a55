"""An extractor that returns what the test scripted for each message text."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engram.models.domain import Candidate, MessageRecord
from engram.models.pipeline import ToolCallRecord
from engram.ports import Extraction


class ScriptedExtractor:
    name = "scripted"

    def __init__(self, script: Callable[[MessageRecord], list[Candidate]]):
        self._script = script

    def extract(self, messages: Sequence[MessageRecord],
                tool_calls: Sequence[ToolCallRecord] = ()) -> Extraction:
        return Extraction([c for m in messages for c in self._script(m)])
