"""Conflict resolution by an LLM: one call decides, for a batch of new candidates, whether
each adds, updates, deletes or repeats one of the existing memories nearest to it.

Existing memories are shown under short aliases (E1, E2, …), mapped back to their ids
here: fewer tokens than uuids, and a mangled uuid cannot point at the wrong memory. What
the reply names that was not asked about is dropped; a candidate the reply leaves out is
added, so nothing is lost. A reply still invalid after one repair raises InvalidReply
(with the tokens spent) and the caller decides the batch with its rules instead;
LlmUnavailable passes through (the task fails and can be retried).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from engram.extraction.prompts import (
    RESOLUTION_FEEDBACK,
    RESOLUTION_SYSTEM,
    RESOLUTION_USER,
    ResolutionOutput,
)
from engram.extraction.structured import ask
from engram.models.domain import Candidate
from engram.ports import ExistingMemory, LanguageModel, Resolution, ResolveOperation

ADDED_WHEN_LEFT_OUT = "left out of the LLM's reply; added so nothing is lost"


class LlmConflictResolver:
    def __init__(self, llm: LanguageModel):
        self.llm = llm
        self.name = f"llm:{llm.model}"

    def resolve(self, candidates: Sequence[Candidate],
                neighbours: Sequence[Sequence[ExistingMemory]],
                feedback: bool = False) -> Resolution:
        if not candidates:
            return Resolution([])
        aliases = memory_aliases(neighbours)
        system = f"{RESOLUTION_SYSTEM}\n\n{RESOLUTION_FEEDBACK}" if feedback else RESOLUTION_SYSTEM
        user = RESOLUTION_USER.format(candidates=render_batch(candidates, neighbours, aliases))
        output, usage = ask(self.llm, system, user, ResolutionOutput)

        ids = {alias: memory_id for memory_id, alias in aliases.items()}
        operations: list[ResolveOperation] = []
        warnings: list[str] = []
        for op in output.operations:
            row = op.candidate - 1  # numbered from 1 in the prompt
            if not 0 <= row < len(candidates):
                warnings.append(f"the LLM named candidate {op.candidate}, which it was not "
                                f"asked about; its {op.op} was dropped")
                continue
            target = None
            if op.target and op.op != "add":
                target = ids.get(op.target.upper())
                if target is None:
                    warnings.append(f"the LLM named memory {op.target!r} for candidate "
                                    f"{op.candidate}, which it was not shown; its {op.op} "
                                    "was dropped")
                    continue
            operations.append(ResolveOperation(op.op, row, target, op.value, op.reason))

        answered = {op.candidate for op in operations}
        left_out = [row for row in range(len(candidates)) if row not in answered]
        if left_out:
            warnings.append(f"candidate {', '.join(str(r + 1) for r in left_out)} (of "
                            f"{len(candidates)}) {ADDED_WHEN_LEFT_OUT}")
            operations += [ResolveOperation("add", row, reason=ADDED_WHEN_LEFT_OUT)
                           for row in left_out]
        operations.sort(key=lambda op: op.candidate)  # stable: the reply's order per candidate
        return Resolution(operations, usage, warnings)


def memory_aliases(neighbours: Sequence[Sequence[ExistingMemory]]) -> dict[str, str]:
    """Memory id → "E1", "E2", … in order of first appearance; a memory near several
    candidates keeps one alias."""
    aliases: dict[str, str] = {}
    for near in neighbours:
        for existing in near:
            aliases.setdefault(existing.memory.id, f"E{len(aliases) + 1}")
    return aliases


def render_batch(candidates: Sequence[Candidate],
                 neighbours: Sequence[Sequence[ExistingMemory]],
                 aliases: dict[str, str]) -> str:
    """One numbered line per candidate, its neighbours indented under it (a memory shown
    already is named by its alias only)."""
    lines: list[str] = []
    shown: set[str] = set()
    for number, (cand, near) in enumerate(zip(candidates, neighbours, strict=True), start=1):
        said = f" (said {_date(cand.event_time)})" if cand.event_time else ""
        lines.append(f"{number}. [{cand.memory_type.value}] {cand.memory_key}: "
                     f"{cand.memory_value}{said}")
        for existing in near:
            memory = existing.memory
            alias = aliases[memory.id]
            if memory.id in shown:
                lines.append(f"   {alias} (shown above)")
                continue
            shown.add(memory.id)
            lines.append(f"   {alias} [{memory.memory_type.value}] {memory.memory_value} "
                         f"(since {_date(memory.valid_from)})")
        if not near:
            lines.append("   (no existing memory near it)")
    return "\n".join(lines)


def _date(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d")
