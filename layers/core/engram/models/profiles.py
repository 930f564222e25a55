"""Profiles (MemOS "属性记忆"): a tenant's template of fields, and per subject (a user or
an agent) an instance of it whose values come from the subject's memories or from edits.

A template's `metadata` is MemOS's tree: categories (at most MAX_DEPTH levels) whose
leaves are fields `{"value": str, "algorithm_updatable": bool}`. An instance keeps the
same tree, each field also with `update_time` (when it was last set) and `source`
("template", "edit"): a value derived from a memory replaces an updatable field's value
only when that memory is newer than the field's last edit."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

MAX_DEPTH = 3  # category levels above a field, MemOS's "最多三层嵌套"
MAX_FIELDS = 200
MAX_NAME_CHARS = 128
MAX_VALUE_CHARS = 2_000

SubjectKind = Literal["user", "agent"]


class ProfileField(BaseModel):
    value: str = ""
    algorithm_updatable: bool = True
    update_time: int = 0
    source: Literal["template", "edit", "memory"] = "template"
    memory_id: str | None = None  # source "memory": the memory the LLM took it from


# A category maps names to categories or fields; stored as plain JSON-able dicts.
Tree = dict[str, Any]


class ProfileTemplate(BaseModel):
    tenant_id: str
    profile_template_id: str
    name: str
    metadata: Tree  # leaves: {"value", "algorithm_updatable"}
    create_time: int
    update_time: int


class Profile(BaseModel):
    tenant_id: str
    profile_template_id: str
    subject_kind: SubjectKind
    subject_id: str
    metadata: Tree  # leaves: ProfileField as dicts
    create_time: int
    update_time: int


class FilledField(BaseModel):
    """One field as read: its value now, and where it came from."""

    path: list[str]
    value: str
    algorithm_updatable: bool
    source: str
    memory_id: str | None = None  # the memory a derived value came from
    update_time: int = 0


class ProfileView(BaseModel):
    """An instance as search and get/memory show it."""

    profile: Profile
    template_name: str
    fields: list[FilledField] = Field(default_factory=list)

    @property
    def filled(self) -> Tree:
        """The instance's tree with each field's current value."""
        tree: Tree = {}
        for f in self.fields:
            node = tree
            for name in f.path[:-1]:
                node = node.setdefault(name, {})
            node[f.path[-1]] = {"value": f.value, "algorithm_updatable": f.algorithm_updatable}
        return tree

    @property
    def text(self) -> str:
        """`Category / Field: value` lines of the fields that have a value."""
        return "\n".join(f"{' / '.join(f.path)}: {f.value}" for f in self.fields if f.value)


def is_field(node: Any) -> bool:
    return isinstance(node, dict) and "value" in node and not any(
        isinstance(v, dict) for v in node.values())


def leaves(tree: Tree, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict]]:
    """(path, field dict) of every field, in the tree's order."""
    out: list[tuple[tuple[str, ...], dict]] = []
    for name, node in tree.items():
        if is_field(node):
            out.append(((*prefix, name), node))
        elif isinstance(node, dict):
            out.extend(leaves(node, (*prefix, name)))
    return out


def check_tree(tree: Any, where: str = "metadata", depth: int = 0) -> int:
    """ValueError naming the first node that breaks the template tree's rules (names
    1-128 characters, at most MAX_DEPTH names deep, fields `{"value": str,
    "algorithm_updatable": bool}`); else the number of fields."""
    if not isinstance(tree, dict):
        raise ValueError(f"{where}: must be an object of categories or fields")
    count = 0
    for name, node in tree.items():
        path = f"{where}.{name}"
        if not name.strip() or len(name) > MAX_NAME_CHARS:
            raise ValueError(f"{path}: a name must be 1-{MAX_NAME_CHARS} characters")
        if isinstance(node, dict) and "value" in node:
            extra = set(node) - {"value", "algorithm_updatable"}
            if extra:
                raise ValueError(f"{path}: a field takes only value and algorithm_updatable "
                                 f"(not {', '.join(sorted(extra))})")
            if not isinstance(node["value"], str) or len(node["value"]) > MAX_VALUE_CHARS:
                raise ValueError(f"{path}.value: must be a string of at most "
                                 f"{MAX_VALUE_CHARS} characters")
            if not isinstance(node.get("algorithm_updatable", True), bool):
                raise ValueError(f"{path}.algorithm_updatable: must be true or false")
            count += 1
        elif isinstance(node, dict):
            if depth + 1 >= MAX_DEPTH:
                raise ValueError(f"{path}: nests deeper than {MAX_DEPTH} levels (a field is "
                                 '{"value": ..., "algorithm_updatable": ...})')
            count += check_tree(node, path, depth + 1)
        else:
            raise ValueError(f'{path}: must be a field {{"value": ..., '
                             '"algorithm_updatable": ...}} or a category object')
    if depth == 0 and count > MAX_FIELDS:
        raise ValueError(f"{where}: {count} fields; the limit is {MAX_FIELDS}")
    return count
