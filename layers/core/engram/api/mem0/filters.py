"""mem0's `filters` DSL, read into the user partitions to search and a predicate over
memories:

    {"AND": [{"user_id": "alice"}, {"metadata": {"topic": {"in": ["food", "travel"]}}},
             {"NOT": [{"categories": {"contains": "work"}}]},
             {"created_at": {"gte": "2026-01-01"}}]}

The entity conditions (user_id; else agent_id, app_id or run_id) at the top level or under
AND name the partitions: tenant and user are hard partitions in Engram, so a filter
that names none is refused instead of searching everyone. Everything else is evaluated on
each memory of those partitions. Unknown fields and operators are refused by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from engram.errors import Unprocessable
from engram.models.domain import Memory
from engram.models.identifiers import not_reserved
from engram.models.times import to_epoch_ms

ENTITIES = ("user_id", "agent_id", "app_id", "run_id")
FIELDS = (*ENTITIES, "metadata", "categories", "created_at", "updated_at", "memory_ids")
OPERATORS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "contains", "icontains")
MAX_PARTITIONS = 100  # users (or agents, apps, runs) one read may name
DEFAULT_RUN = "mem0-default"  # the conversation of an add without run_id
METADATA_KEY = "mem0.metadata"  # info key holding the JSON of mem0's metadata

Predicate = Callable[[Memory], bool]


def partition_of(entity: str, value: str) -> str:
    """The Engram user a mem0 entity's memories live under: the user itself, or, for
    memories of an agent, app or run without a user, a partition of their own ("agent:…"
    is the agent MemOS and EverOS name too; an app's name is quoted, so it never reads as
    an EverOS v2 scope "app:<app>/<project>/<owner>")."""
    if entity == "user_id":
        try:
            return not_reserved(value)
        except ValueError as exc:
            raise Unprocessable(f"user_id: {exc}") from None
    return f"{entity.removesuffix('_id')}:{quote(value, safe='')}"


def metadata_of(memory: Memory) -> dict[str, Any]:
    raw = memory.info.get(METADATA_KEY)
    if raw:
        try:
            value = json.loads(raw)
            if isinstance(value, dict):
                return value
        except ValueError:
            pass
    return {k: v for k, v in memory.info.items() if not k.startswith("mem0.")}


def run_of(memory: Memory) -> str | None:
    run = memory.conversation_id
    return None if run in (None, DEFAULT_RUN) else run


def partitions(filters: dict[str, Any] | None, where: str = "filters") -> list[str]:
    """The partitions a filter names (user_id first; else another entity)."""
    if not filters:
        raise Unprocessable(f"{where}: name user_id (or agent_id, app_id, run_id), e.g. "
                            "{\"user_id\": \"alice\"}")
    found: dict[str, list[str]] = {}
    _collect(filters, found, where)
    for entity in ENTITIES:
        if found.get(entity):
            named = list(dict.fromkeys(found[entity]))
            if len(named) > MAX_PARTITIONS:  # each is searched on its own
                raise Unprocessable(f"{where}.{entity}: {len(named)} values; a read names at "
                                    f"most {MAX_PARTITIONS}")
            return [partition_of(entity, v) for v in named]
    raise Unprocessable(f"{where}: name user_id (or agent_id, app_id, run_id) at the top "
                        "level or inside AND; Engram keeps each user's memories apart")


def _collect(node: dict[str, Any], found: dict[str, list[str]], where: str) -> None:
    for key, value in node.items():
        if key.upper() == "AND" and isinstance(value, list):
            for child in value:
                if isinstance(child, dict):
                    _collect(child, found, where)
        elif key in ENTITIES:
            if isinstance(value, str):
                found.setdefault(key, []).append(value)
            elif isinstance(value, dict) and set(value) == {"eq"} and isinstance(value["eq"], str):
                found.setdefault(key, []).append(value["eq"])
            elif isinstance(value, dict) and set(value) == {"in"} and \
                    isinstance(value["in"], list) and value["in"]:
                found.setdefault(key, []).extend(str(v) for v in value["in"])


def compile_filters(filters: dict[str, Any] | None, where: str = "filters") -> Predicate:
    if filters is None:
        return lambda memory: True
    if not isinstance(filters, dict):
        raise Unprocessable(f"{where}: must be an object")
    return _node(filters, where)


def _node(node: dict[str, Any], where: str) -> Predicate:
    checks: list[Predicate] = []
    for key, value in node.items():
        upper = key.upper()
        if upper in ("AND", "OR", "NOT"):
            children = value if isinstance(value, list) else [value]
            if not children or not all(isinstance(c, dict) for c in children):
                raise Unprocessable(f"{where}.{key}: must be a non-empty list of objects")
            compiled = [_node(c, f"{where}.{key}") for c in children]
            if upper == "AND":
                checks.append(lambda m, cs=compiled: all(c(m) for c in cs))
            elif upper == "OR":
                checks.append(lambda m, cs=compiled: any(c(m) for c in cs))
            else:
                checks.append(lambda m, cs=compiled: not any(c(m) for c in cs))
        elif key == "metadata":
            if not isinstance(value, dict):
                raise Unprocessable(f"{where}.metadata: must be an object of keys")
            for meta_key, cond in value.items():
                checks.append(_condition(f"{where}.metadata.{meta_key}", cond,
                                         lambda m, k=meta_key: metadata_of(m).get(k)))
        elif key in FIELDS:
            checks.append(_condition(f"{where}.{key}", value, _getter(key)))
        else:
            raise Unprocessable(f"{where}: unknown field '{key}' (allowed: "
                                f"{', '.join(FIELDS)}, metadata.<key>, AND, OR, NOT)")
    return lambda memory: all(check(memory) for check in checks)


def _getter(field: str) -> Callable[[Memory], Any]:
    return {
        "user_id": lambda m: m.user_id,
        "agent_id": lambda m: m.agent_id,
        "app_id": lambda m: m.app_id,
        "run_id": run_of,
        "categories": lambda m: m.tags,
        "created_at": lambda m: m.create_time,
        "updated_at": lambda m: m.update_time,
        "memory_ids": lambda m: m.id,
    }[field]


def _condition(where: str, cond: Any, get: Callable[[Memory], Any]) -> Predicate:
    time_field = where.endswith(("created_at", "updated_at"))
    if not isinstance(cond, dict):
        cond = {"in": cond} if isinstance(cond, list) else {"eq": cond}
    if not cond:
        raise Unprocessable(f"{where}: name an operator ({', '.join(OPERATORS)})")
    checks = []
    for op, operand in cond.items():
        if op not in OPERATORS:
            raise Unprocessable(f"{where}: unknown operator '{op}' (known: "
                                f"{', '.join(OPERATORS)})")
        if op == "in" and not isinstance(operand, list):
            raise Unprocessable(f"{where}.in: must be a list")
        if time_field and op != "in":
            try:
                operand = to_epoch_ms(operand, where)
            except ValueError as exc:
                raise Unprocessable(str(exc)) from None
        checks.append(_op(op, operand))
    return lambda memory: all(check(get(memory)) for check in checks)


def _op(op: str, operand: Any) -> Callable[[Any], bool]:
    if operand == "*" and op == "eq":
        return lambda actual: actual is not None  # mem0's wildcard: any value
    if op == "eq":
        return lambda a: operand in a if isinstance(a, list) else a == operand
    if op == "ne":
        return lambda a: operand not in a if isinstance(a, list) else a != operand
    if op == "in":
        return lambda a: any(x in operand for x in a) if isinstance(a, list) else a in operand
    if op in ("contains", "icontains"):
        fold = (lambda s: str(s).casefold()) if op == "icontains" else str
        return lambda a: a is not None and (
            any(fold(operand) == fold(x) or fold(operand) in fold(x) for x in a)
            if isinstance(a, list) else fold(operand) in fold(a))

    def compare(actual: Any) -> bool:
        try:
            return {"gt": actual > operand, "gte": actual >= operand,
                    "lt": actual < operand, "lte": actual <= operand}[op]
        except TypeError:
            return False
    return lambda a: a is not None and compare(a)
