"""Profiles: a tenant's templates, and per subject (user or agent) instances bound to
them, edited by hand and filled from the subject's memories.

A field's value as read is its stored value, unless the field is algorithm-updatable and
one of the user's current memories states it (extraction/profile_fields.py, by the
field's name) and is newer than the field's last edit (a template's default gives way to
any): then the newest such memory's value. Filling at read time keeps a profile in step
with the memories it comes from: a memory updated, corrected by feedback or deleted
changes or clears the value with it, and erasing the user's memories leaves nothing
derived behind.

With an LLM configured, each task of the user that changes their memories also has the
LLM fill the updatable fields of their profiles (any field name), the values stored with
the memory each cites (fill_from_llm); such a value is cleared when its memory is no
longer current, and gives way, as an edit does, to a newer memory read as above."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from engram.errors import EngramError, NotFound, Unprocessable
from engram.models.domain import Memory, MemoryStatus, MemoryType, now_ms
from engram.models.profiles import (
    FilledField,
    Profile,
    ProfileField,
    ProfileTemplate,
    ProfileView,
    SubjectKind,
    Tree,
    is_field,
    leaves,
)
from engram.ports import LanguageModel, MemoryStore, ProfileStore

log = logging.getLogger(__name__)
MEMORIES_READ = 500  # the newest current memories a profile is filled from
# Extracted facts and preferences; raw turns (working memories) are not read.
FILLED_FROM = (MemoryType.long_term, MemoryType.user, MemoryType.preference)


def describe(kind: str, subject_id: str) -> str:
    return f"{kind} {subject_id!r}"


@dataclass
class ProfileService:
    store: ProfileStore
    memories: MemoryStore
    llm: LanguageModel | None = None  # fills any field after a task (fill_from_llm)

    # --- templates ------------------------------------------------------------------
    def add_template(self, tenant_id: str, name: str, metadata: Tree) -> ProfileTemplate:
        now = now_ms()
        template = ProfileTemplate(
            tenant_id=tenant_id, profile_template_id=f"tpl_{uuid.uuid4().hex[:16]}",
            name=name.strip(), metadata=_template_tree(metadata), create_time=now,
            update_time=now)
        self.store.put_template(template)
        return template

    def template(self, tenant_id: str, template_id: str) -> ProfileTemplate:
        template = self.store.get_template(tenant_id, template_id)
        if template is None:
            raise NotFound(f"profile template {template_id!r} not found")
        return template

    def templates(self, tenant_id: str) -> list[ProfileTemplate]:
        return self.store.list_templates(tenant_id)

    # --- instances ------------------------------------------------------------------
    def bind(self, tenant_id: str, binds: list[tuple[SubjectKind, str, str]]) -> list[Profile]:
        """A profile for each (kind, subject, template); one bound already is kept as it
        is. Every template is checked before anything is written."""
        templates = {tid: self.template(tenant_id, tid) for _, _, tid in binds}
        bound = []
        for kind, subject_id, template_id in binds:
            profile = self.store.get_profile(tenant_id, kind, subject_id, template_id)
            if profile is None:
                now = now_ms()
                tree: Tree = {}
                for path, leaf in leaves(templates[template_id].metadata):
                    _set(tree, path, ProfileField(
                        value=leaf.get("value", ""),
                        algorithm_updatable=leaf.get("algorithm_updatable", True),
                        update_time=now).model_dump())
                profile = Profile(tenant_id=tenant_id, profile_template_id=template_id,
                                  subject_kind=kind, subject_id=subject_id, metadata=tree,
                                  create_time=now, update_time=now)
                self.store.put_profile(profile)
            bound.append(profile)
        return bound

    def edit(self, tenant_id: str, kind: SubjectKind, subject_id: str, template_id: str,
             metadata: Tree | None, remove_fields: list[str]) -> ProfileView:
        """Set (or add) the fields in `metadata`, then remove `remove_fields` (a field's
        path joined by ".", or its name wherever it is)."""
        profile = self._profile(tenant_id, kind, subject_id, template_id)
        now = now_ms()
        for path, leaf in leaves(metadata or {}):
            old = _get(profile.metadata, path)
            _set(profile.metadata, path, ProfileField(
                value=leaf.get("value", old.get("value", "") if old else ""),
                algorithm_updatable=leaf.get(
                    "algorithm_updatable", old.get("algorithm_updatable", True) if old else True),
                update_time=now, source="edit").model_dump())
        for i, name in enumerate(remove_fields):
            paths = [p for p, _ in leaves(profile.metadata) if ".".join(p) == name] or \
                    [p for p, _ in leaves(profile.metadata) if p[-1] == name]
            if not paths:
                raise Unprocessable(f"remove_fields.{i}: the profile has no field {name!r}")
            for path in paths:
                _remove(profile.metadata, path)
        profile.update_time = now
        self.store.put_profile(profile)
        return self._view(profile)

    def delete(self, tenant_id: str, kind: SubjectKind, subject_id: str,
               template_id: str) -> None:
        if not self.store.delete_profile(tenant_id, kind, subject_id, template_id):
            raise NotFound(f"no profile of template {template_id!r} for "
                           f"{describe(kind, subject_id)}")

    def views(self, tenant_id: str, kind: SubjectKind, subject_id: str) -> list[ProfileView]:
        return [self._view(p) for p in self.store.profiles_of(tenant_id, kind, subject_id)]

    def fill_from_llm(self, tenant_id: str, user_id: str) -> int:
        """After a task of the user completed (with an LLM configured): the LLM fills the
        updatable fields of each of the user's profiles from their current memories, the
        values stored as from those memories. How many fields changed. Failures are
        logged, never raised: the task that triggered this is already complete."""
        if self.llm is None:
            return 0
        profiles = self.store.profiles_of(tenant_id, "user", user_id)
        if not profiles:
            return 0
        from engram.extraction.profile_llm import fill_with_llm  # not for a status request

        memories = self._newest(tenant_id, user_id)
        changed = 0
        for profile in profiles:
            open_fields = [(path, ProfileField.model_validate(raw).value)
                           for path, raw in leaves(profile.metadata)
                           if raw.get("algorithm_updatable")]
            try:
                filled, _ = fill_with_llm(self.llm, open_fields, memories)
            except EngramError as exc:  # the LLM down, or no valid reply
                log.warning("profile %s of a user not filled: %s",
                            profile.profile_template_id, exc.message)
                continue
            # Read again after the LLM's answer: an edit, a delete or an erasure made
            # meanwhile wins (a profile deleted meanwhile is not brought back).
            fresh = self.store.get_profile(tenant_id, "user", user_id,
                                           profile.profile_template_id)
            if fresh is None or not filled:
                continue
            now, count = now_ms(), 0
            for path, raw in leaves(fresh.metadata):
                stored, found = ProfileField.model_validate(raw), filled.get(path)
                # a locked field, or an edit newer than the memory, stays (as on read)
                if found is None or not stored.algorithm_updatable \
                        or found[0] == stored.value or (
                        stored.source == "edit" and found[1].update_time <= stored.update_time):
                    continue
                _set(fresh.metadata, path, ProfileField(
                    value=found[0], algorithm_updatable=True, update_time=now,
                    source="memory", memory_id=found[1].id).model_dump())
                count += 1
            if count:
                fresh.update_time = now
                self.store.put_profile(fresh)
                changed += count
        return changed

    def erase_user(self, tenant_id: str, user_id: str) -> int:
        return self.store.erase_subject(tenant_id, "user", user_id)

    # --- helpers --------------------------------------------------------------------
    def _profile(self, tenant_id: str, kind: SubjectKind, subject_id: str,
                 template_id: str) -> Profile:
        profile = self.store.get_profile(tenant_id, kind, subject_id, template_id)
        if profile is None:
            self.template(tenant_id, template_id)  # an unknown template says so first
            raise NotFound(f"no profile of template {template_id!r} for "
                           f"{describe(kind, subject_id)}: bind it with "
                           "bind/profile_template first")
        return profile

    def _newest(self, tenant_id: str, user_id: str) -> list[Memory]:
        """The user's facts and preferences among their newest MEMORIES_READ memories: one
        bounded read (a profile is shown with every search; reading a 10,000-memory user
        whole made that search 100× slower). Episodes retell those facts: not read."""
        return [m for m in self.memories.page_active(tenant_id, user_id, None, MEMORIES_READ)
                if m.memory_type in FILLED_FROM and not m.episode]

    def _view(self, profile: Profile) -> ProfileView:
        from engram.extraction.profile_fields import derive  # its rules: not for a status

        template = self.store.get_template(profile.tenant_id, profile.profile_template_id)
        fields = leaves(profile.metadata)
        derived: dict[str, Any] = {}
        if profile.subject_kind == "user" and any(f.get("algorithm_updatable") for _, f in fields):
            derived = derive([path[-1] for path, _ in fields],
                             self._newest(profile.tenant_id, profile.subject_id))
        # A value the LLM took from a memory goes when that memory does (deleted, or
        # replaced by an update: then the memory filling it is the newer one).
        cited = [f["memory_id"] for _, f in fields if f.get("memory_id")]
        current = {m.id for m in self.memories.get_many(profile.tenant_id, cited)
                   if m.status == MemoryStatus.activated} if cited else set()
        filled = []
        for path, raw in fields:
            stored = ProfileField.model_validate(raw)
            if stored.memory_id and stored.memory_id not in current:
                stored = ProfileField(algorithm_updatable=stored.algorithm_updatable)
            found = derived.get(path[-1])
            # A template's default gives way to any memory; an edit only to a newer one.
            if stored.algorithm_updatable and found and (
                    stored.source == "template" or found[1].update_time > stored.update_time):
                value, memory = found
                filled.append(FilledField(path=list(path), value=value, source="memory",
                                          algorithm_updatable=True, memory_id=memory.id,
                                          update_time=memory.update_time))
            else:
                filled.append(FilledField(path=list(path), value=stored.value,
                                          source=stored.source, update_time=stored.update_time,
                                          algorithm_updatable=stored.algorithm_updatable,
                                          memory_id=stored.memory_id))
        return ProfileView(profile=profile, template_name=template.name if template else "",
                           fields=filled)


def _template_tree(metadata: Tree) -> Tree:
    tree: Tree = {}
    for path, leaf in leaves(metadata):
        _set(tree, path, {"value": leaf.get("value", ""),
                          "algorithm_updatable": leaf.get("algorithm_updatable", True)})
    return tree


def _get(tree: Tree, path: tuple[str, ...]) -> dict | None:
    node: Any = tree
    for name in path:
        if not isinstance(node, dict) or name not in node:
            return None
        node = node[name]
    return node if is_field(node) else None


def _set(tree: Tree, path: tuple[str, ...], leaf: dict) -> None:
    node = tree
    for name in path[:-1]:
        child = node.get(name)
        if not isinstance(child, dict) or is_field(child):
            # a field where a category is asked for becomes the category
            child = node[name] = {}
        node = child
    node[path[-1]] = leaf


def _remove(tree: Tree, path: tuple[str, ...]) -> None:
    """Remove the field, and categories left empty by it."""
    trail = [tree]
    for name in path[:-1]:
        trail.append(trail[-1][name])
    del trail[-1][path[-1]]
    for depth in range(len(path) - 1, 0, -1):
        if not trail[depth]:
            del trail[depth - 1][path[depth - 1]]
