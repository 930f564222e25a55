"""Extraction through an LLM: facts, preferences and tool memory from each batch of
messages in one call, its JSON reply validated against `prompts.ExtractionOutput`.

A batch whose reply is still invalid after one repair is extracted by rules instead, and
the task says so in a warning. An endpoint that cannot answer (LlmUnavailable) is not
papered over: the task fails with its raw input kept and can be retried.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from engram.extraction.context import (
    GENERIC_SPEAKERS,
    MAX_TAGS,
    detect_language,
    strip_speaker_prefix,
    turn_context,
)
from engram.extraction.prompts import (
    EXTRACTION_SYSTEM,
    EXTRACTION_USER,
    ExtractedMemory,
    ExtractionOutput,
)
from engram.extraction.rules.extractor import RuleBasedExtractor
from engram.extraction.structured import InvalidReply, ask
from engram.extraction.trajectories import trajectory_candidates
from engram.models.domain import (
    Candidate,
    MemoryType,
    MessageRecord,
    Role,
    TokenUsage,
)
from engram.models.pipeline import ToolCallRecord
from engram.models.requests import shown_text
from engram.ports import Extraction, LanguageModel

log = logging.getLogger(__name__)

Batch = list[MessageRecord]


class LlmExtractor:
    """Implements the Extractor port with a chat model behind an OpenAI-compatible endpoint."""

    def __init__(self, llm: LanguageModel, fallback: RuleBasedExtractor | None = None,
                 max_batch_messages: int = 30, max_batch_chars: int = 12_000):
        if max_batch_messages < 1 or max_batch_chars < 1:
            raise ValueError("batch limits must be at least 1")
        self.llm = llm
        self.fallback = fallback or RuleBasedExtractor()
        self.max_batch_messages = max_batch_messages
        self.max_batch_chars = max_batch_chars
        self.name = f"llm:{llm.model}"

    def extract(self, messages: Sequence[MessageRecord],
                tool_calls: Sequence[ToolCallRecord] = ()) -> Extraction:
        """One LLM call per batch (batches with nothing to read are skipped)."""
        conversation = _Conversation(messages, tool_calls)
        candidates: list[Candidate] = []
        usage = TokenUsage()
        warnings: list[str] = []
        for batch in self.batches(messages, tool_calls):
            calls = [c for m in batch for c in conversation.calls_by_message.get(m.message_id, [])]
            if not calls and not any(m.text.strip() for m in batch):
                continue
            try:
                output, spent = ask(self.llm, EXTRACTION_SYSTEM,
                                    conversation.prompt(batch), ExtractionOutput)
            except InvalidReply as exc:
                log.warning("%s: %s", _label(batch), exc.message)
                usage += exc.usage
                candidates += self.fallback.statements(batch) + trajectory_candidates(batch, calls)
                warnings.append(f"{_label(batch)}: the LLM reply was not valid after a repair; "
                                "rule-based extraction used")
                continue
            usage += spent
            made = [conversation.candidate(memory, batch) for memory in output.memories]
            candidates += [c for c in made if c is not None]
            uncited = made.count(None)
            if uncited:
                warnings.append(f"{_label(batch)}: {uncited} LLM memor"
                                f"{'y' if uncited == 1 else 'ies'} citing no message of the "
                                "batch dropped")
        return Extraction(candidates, usage, warnings)

    def batches(self, messages: Sequence[MessageRecord],
                tool_calls: Sequence[ToolCallRecord] = ()) -> list[Batch]:
        """Consecutive batches within both limits. An assistant turn with tool calls stays
        with the tool turns answering it when they fit together; a message over the char
        limit is a batch of its own."""
        batches: list[Batch] = []
        batch: Batch = []
        chars = 0
        for unit in _tool_units(messages, tool_calls):
            parts = [unit] if self._fits(unit) else [[m] for m in unit]
            for part in parts:
                size = sum(len(m.text) for m in part)
                if batch and (len(batch) + len(part) > self.max_batch_messages
                              or chars + size > self.max_batch_chars):
                    batches.append(batch)
                    batch, chars = [], 0
                batch += part
                chars += size
        if batch:
            batches.append(batch)
        return batches

    def _fits(self, unit: Batch) -> bool:
        return (len(unit) <= self.max_batch_messages
                and sum(len(m.text) for m in unit) <= self.max_batch_chars)


def _tool_units(messages: Sequence[MessageRecord],
                tool_calls: Sequence[ToolCallRecord]) -> list[Batch]:
    """Messages grouped so that the tool turns right after an assistant turn and answering
    its calls are one unit with it (a call without its result, or the reverse, tells the
    model half the story)."""
    answered_turn = {c.result_message_id: c.message_id for c in tool_calls
                     if c.result_message_id}
    units: list[Batch] = []
    for message in messages:
        if units and answered_turn.get(message.message_id) == units[-1][0].message_id:
            units[-1].append(message)
        else:
            units.append([message])
    return units


class _Conversation:
    """One extract call's messages and tool calls: what the model is shown of a batch and
    how its memories become candidates."""

    def __init__(self, messages: Sequence[MessageRecord], tool_calls: Sequence[ToolCallRecord]):
        self.calls_by_message: dict[str, list[ToolCallRecord]] = {}
        for call in tool_calls:
            self.calls_by_message.setdefault(call.message_id, []).append(call)
        self.call_answered = {c.result_message_id: c for c in tool_calls if c.result_message_id}
        # The user or assistant turn before each message, as the rule-based context has it.
        self.previous: dict[str, MessageRecord | None] = {}
        last: MessageRecord | None = None
        for message in messages:
            self.previous[message.message_id] = last
            if message.role in (Role.user, Role.assistant):
                last = message

    # -- what the model sees --

    def prompt(self, batch: Batch) -> str:
        return EXTRACTION_USER.format(messages="\n".join(self._line(m) for m in batch))

    def _line(self, message: MessageRecord) -> str:
        when = datetime.fromtimestamp(message.event_time / 1000, tz=UTC)
        entry: dict[str, object] = {"id": message.message_id, "role": message.role.value}
        speaker = (message.speaker or "").strip()
        if speaker and speaker.lower() not in GENERIC_SPEAKERS:
            entry["name"] = speaker
        entry["time"] = when.isoformat(timespec="seconds").replace("+00:00", "Z")
        entry["weekday"] = when.strftime("%A")  # "next Friday" needs it; models miscount
        calls = self.calls_by_message.get(message.message_id, [])
        entry["text"] = _own_words(message.text, calls)
        if calls:
            entry["tool_calls"] = [{"id": c.call_id, "name": c.name,
                                    "arguments": _json_or_text(c.arguments)} for c in calls]
        answered = self.call_answered.get(message.message_id)
        if answered:
            entry["tool_call_id"] = answered.call_id
            entry["tool_name"] = answered.name
        return json.dumps(entry, ensure_ascii=False)

    # -- what comes back --

    def candidate(self, memory: ExtractedMemory, batch: Batch) -> Candidate | None:
        """The memory as a candidate, or None when it cites no message of the batch."""
        cited_ids = set(memory.source_message_ids)
        cited = [m for m in batch if m.message_id in cited_ids]
        if not cited:
            return None
        memory_type = MemoryType(memory.memory_type)
        preference = memory_type == MemoryType.preference
        return Candidate(
            memory_type=memory_type,
            memory_key=memory.memory_key,
            memory_value=memory.memory_value,
            tags=_tags(memory),
            confidence=min(1.0, max(0.0, memory.confidence)),
            sources=[m.message_id for m in cited],
            event_time=max(m.event_time for m in cited),
            preference_type=memory.preference_type if preference else None,
            polarity=(memory.polarity or "positive") if preference else None,
            reasoning=memory.reasoning if preference else None,
            language=_language(memory.language, memory.memory_value),
            context=self._context(cited),
        )

    def _context(self, cited: Batch) -> str:
        """Like the rule-based context: the turn answered, then the speaker's own turn (the
        last user turn cited, else the last turn cited), so both index alike."""
        turn = next((m for m in reversed(cited) if m.role == Role.user), cited[-1])
        return turn_context(self.previous.get(turn.message_id), turn,
                            strip_speaker_prefix(turn.text, turn.speaker))


def _own_words(text: str, calls: Sequence[ToolCallRecord]) -> str:
    """The turn's text without the written-out tool calls ingest appends to it: the model
    gets those as structured tool_calls instead."""
    written = {shown_text("", [(c.call_id, c.name, c.arguments)]) for c in calls}
    return "\n".join(line for line in text.split("\n") if line.strip() not in written).strip()


def _json_or_text(raw: str) -> object:
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return raw


def _tags(memory: ExtractedMemory) -> list[str]:
    """The model's tags, lowercased and deduplicated; a trajectory's outcome first."""
    tags = list(memory.tags)
    if memory.memory_type == MemoryType.tool_trajectory and memory.tool_succeeded is not None:
        tags.insert(0, "succeeded" if memory.tool_succeeded else "failed")
    unique = dict.fromkeys(t.strip().lower() for t in tags if t.strip())
    return list(unique)[:MAX_TAGS]


def _language(stated: str | None, value: str) -> str:
    """The model's ISO 639-1 code ("zh-CN" → "zh"), else detected from the value."""
    code = (stated or "").strip().lower().replace("_", "-").split("-")[0]
    return code if len(code) == 2 and code.isalpha() else detect_language(value)


def _label(batch: Batch) -> str:
    first, last = batch[0].message_id, batch[-1].message_id
    return f"message {first}" if first == last else f"messages {first}…{last}"
