"""Tool calls (OpenAI `tool_calls` and the `role: tool` turns answering them, from
add/message or EverOS memories/agent) → tool memory, without an LLM.

Each user request followed by tool calls becomes one ToolTrajectoryMemory: the request
is its title (EverOS's "task intent"), the calls with their results and the final answer
its value (the "approach"). Each tool used becomes a ToolSchemaMemory naming the
arguments it was called with (EverOS's "skill")."""

from __future__ import annotations

import json
from collections.abc import Sequence

from engram.models.domain import Candidate, MemoryType, MessageRecord, Role
from engram.models.pipeline import ToolCallRecord

CONFIDENCE_TRAJECTORY = 0.9
INTENT_CHARS = 160
RESULT_CHARS = 200


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _arguments(raw: str) -> tuple[str, list[str]]:
    """Compact argument text and the argument names (when they are a JSON object)."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return _clip(raw, RESULT_CHARS), []
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")), list(value)
    return _clip(raw, RESULT_CHARS), []


def trajectory_candidates(messages: Sequence[MessageRecord],
                          tool_calls: Sequence[ToolCallRecord]) -> list[Candidate]:
    if not tool_calls:
        return []
    by_id = {m.message_id: m for m in messages}
    calls_by_message: dict[str, list[ToolCallRecord]] = {}
    for call in tool_calls:
        calls_by_message.setdefault(call.message_id, []).append(call)

    out: list[Candidate] = []
    intent: MessageRecord | None = None
    steps: list[str] = []
    sources: list[str] = []
    answer = ""

    def close() -> None:
        if intent is not None and steps:
            value = " ".join(f"{i}. {step}" for i, step in enumerate(steps, start=1))
            if answer:
                value += f" Answer: {_clip(answer, RESULT_CHARS)}"
            out.append(Candidate(
                memory_type=MemoryType.tool_trajectory,
                memory_key=_clip(intent.text, INTENT_CHARS), memory_value=value,
                tags=["agent", "tool"], confidence=CONFIDENCE_TRAJECTORY,
                sources=[intent.message_id, *dict.fromkeys(sources)],
                event_time=intent.event_time, context=intent.text[:300]))

    for message in messages:
        if message.role == Role.user and message.text.strip():
            close()
            intent, steps, sources, answer = message, [], [], ""
        for call in calls_by_message.get(message.message_id, []):
            arguments, _ = _arguments(call.arguments)
            result = by_id.get(call.result_message_id or "")
            outcome = f" → {_clip(result.text, RESULT_CHARS)}" if result else ""
            steps.append(f"{call.name}({arguments}){outcome}")
            sources += [call.message_id] + ([result.message_id] if result else [])
        if message.role == Role.assistant and message.text.strip() and \
                message.message_id not in calls_by_message:
            answer = message.text
    close()

    tools: dict[str, list[str]] = {}
    first_seen: dict[str, ToolCallRecord] = {}
    for call in tool_calls:
        names = tools.setdefault(call.name, [])
        names += [n for n in _arguments(call.arguments)[1] if n not in names]
        first_seen.setdefault(call.name, call)
    for name, arguments in tools.items():
        takes = f"takes {', '.join(arguments)}" if arguments else "takes no arguments"
        call = first_seen[name]
        message = by_id.get(call.message_id)
        out.append(Candidate(
            memory_type=MemoryType.tool_schema, memory_key=name,
            memory_value=f"Tool {name} {takes}.", tags=["agent", "tool"],
            confidence=CONFIDENCE_TRAJECTORY, sources=[call.message_id],
            event_time=message.event_time if message else None))
    return out
