"""The search filter DSL (MemOS shape), validated once and evaluated by any index.

    {"and": [{"agent_id": "a1"}, {"tags": {"contains": "travel"}},
             {"create_time": {"gte": "2025-01-01"}}, {"scene": "chat"}]}

A condition is `{field: value}` (equality) or `{field: {op: value}}`. Fields: agent_id,
app_id, memory_type, tags (contains), create_time / update_time (gt/gte/lt/lte/eq with
epoch ms or an ISO date), the indexed info keys business_type / biz_id / scene /
custom_status, and any info key as `info.<key>`. Anything else is refused with the
field's name, so a typo never silently widens a search.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from engram.models.domain import Memory
from engram.models.identifiers import plain_identifier
from engram.models.times import to_epoch_ms

SCALAR_FIELDS = ("agent_id", "app_id", "memory_type", "conversation_id")
TIME_FIELDS = ("create_time", "update_time")
INDEXED_INFO_KEYS = ("business_type", "biz_id", "scene", "custom_status")
TIME_OPS = ("gt", "gte", "lt", "lte", "eq")
SOURCES = ("user", "public", "knowledgebase")
ALLOWED_FIELDS = (*SCALAR_FIELDS, "tags", *TIME_FIELDS, *INDEXED_INFO_KEYS, "info.<key>")


class FilterError(ValueError):
    """A filter that cannot be compiled; the message names the offending field."""


class Condition(BaseModel):
    field: str  # one of ALLOWED_FIELDS, with info keys as "info.<key>"
    op: Literal["eq", "contains", "gt", "gte", "lt", "lte", "in"]
    value: Any


class FilterNode(BaseModel):
    """A compiled filter: all of `all_of` and, when `any_of` is set, at least one of it."""

    all_of: list[Condition | FilterNode] = []
    any_of: list[Condition | FilterNode] = []

    def matches(self, memory: Memory) -> bool:
        if not all(_match(c, memory) for c in self.all_of):
            return False
        return not self.any_of or any(_match(c, memory) for c in self.any_of)


def facet_values(memory: Memory) -> list[tuple[str, str]]:
    """The (field, value) pairs an `eq` / `in` / `contains` condition can match on this
    memory, for an index that keeps them as postings. Only strings can match: conditions
    compile to string values."""
    pairs = [(field, value) for field in SCALAR_FIELDS
             if isinstance(value := _field_value(field, memory), str)]
    pairs += [("tags", tag) for tag in memory.tags if isinstance(tag, str)]
    pairs += [(f"info.{key}", value) for key, value in memory.info.items()
              if isinstance(value, str)]
    return pairs


def _match(node: Condition | FilterNode, memory: Memory) -> bool:
    if isinstance(node, FilterNode):
        return node.matches(memory)
    actual = _field_value(node.field, memory)
    if node.op == "contains":
        return node.value in (actual or [])
    if node.op == "in":
        return actual in node.value
    if node.op == "eq":
        return actual == node.value
    if actual is None:
        return False
    return {
        "gt": actual > node.value,
        "gte": actual >= node.value,
        "lt": actual < node.value,
        "lte": actual <= node.value,
    }[node.op]


def _field_value(field: str, memory: Memory) -> Any:
    if field.startswith("info."):
        return memory.info.get(field[5:])
    value = getattr(memory, field)
    return value.value if hasattr(value, "value") else value


def parse_time(value: Any, field: str) -> int:
    try:
        return to_epoch_ms(value, f"filter field {field}")
    except ValueError as exc:
        raise FilterError(str(exc)) from None


def compile_filter(raw: dict[str, Any] | None) -> FilterNode | None:
    """Compile the global form. The per-source form ({"user": {...}, ...}) is split by
    `split_sources` first."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise FilterError("filter must be an object")
    return _compile_node(raw)


def split_sources(raw: dict[str, Any] | None) -> dict[str, FilterNode | None]:
    """Per-source filters: {"user": f, "public": f, "knowledgebase": f}; a global filter
    applies to every source."""
    if raw is None:
        return {s: None for s in SOURCES}
    if not isinstance(raw, dict):
        raise FilterError("filter must be an object")
    if raw and set(raw) <= set(SOURCES):
        return {s: compile_filter(raw.get(s)) for s in SOURCES}
    node = compile_filter(raw)
    return {s: node for s in SOURCES}


def _compile_node(raw: dict[str, Any]) -> FilterNode:
    node = FilterNode()
    for key, value in raw.items():
        lowered = key.lower()
        if lowered in ("and", "or"):
            if not isinstance(value, list) or not value:
                raise FilterError(f"filter '{key}' must be a non-empty list of conditions")
            children = []
            for item in value:
                if not isinstance(item, dict):
                    raise FilterError(f"filter '{key}' items must be objects")
                child = _compile_node(item)
                children.append(child)
            (node.all_of if lowered == "and" else node.any_of).extend(children)
        else:
            node.all_of.append(_compile_condition(key, value))
    return node


def _compile_condition(field: str, value: Any) -> Condition:
    if field in SOURCES:
        raise FilterError(f"filter source '{field}' may only appear at the top of the filter")
    if field in INDEXED_INFO_KEYS:
        field = f"info.{field}"
    if field.startswith("info."):
        if not field[5:]:
            raise FilterError("filter field 'info.' needs a key name")
        return _equality(field, value, str)
    if field in SCALAR_FIELDS:  # identifiers: the identifier rule applies to what they name
        condition = _equality(field, value, str)
        for one in condition.value if condition.op == "in" else [condition.value]:
            try:
                plain_identifier(one)
            except ValueError as exc:
                raise FilterError(f"filter field '{field}' {exc}") from None
        return condition
    if field == "tags":
        if isinstance(value, dict):
            if set(value) != {"contains"} or not isinstance(value["contains"], str):
                raise FilterError("filter field 'tags' supports {'contains': '<tag>'}")
            return Condition(field="tags", op="contains", value=value["contains"])
        if isinstance(value, str):
            return Condition(field="tags", op="contains", value=value)
        raise FilterError("filter field 'tags' supports {'contains': '<tag>'}")
    if field in TIME_FIELDS:
        if not isinstance(value, dict) or len(value) != 1:
            raise FilterError(f"filter field '{field}' takes one of {{{', '.join(TIME_OPS)}}}")
        op, operand = next(iter(value.items()))
        if op not in TIME_OPS:
            raise FilterError(f"filter field '{field}': unknown operator '{op}'")
        return Condition(field=field, op=op, value=parse_time(operand, field))
    raise FilterError(
        f"unknown filter field '{field}' (allowed: {', '.join(ALLOWED_FIELDS)})"
    )


def _equality(field: str, value: Any, kind: type) -> Condition:
    if isinstance(value, dict):
        if len(value) == 1 and "in" in value and isinstance(value["in"], list):
            return Condition(field=field, op="in", value=[str(v) for v in value["in"]])
        if len(value) == 1 and "eq" in value:
            value = value["eq"]
        else:
            raise FilterError(
                f"filter field '{field}' takes a value, {{'eq': v}} or {{'in': [..]}}")
    if not isinstance(value, kind):
        raise FilterError(f"filter field '{field}' must be a string")
    return Condition(field=field, op="eq", value=value)


FilterNode.model_rebuild()
