"""Reading, editing, deleting and erasing a user's memories, and reading back raw
messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from engram.errors import NotFound, Unprocessable
from engram.models.domain import (
    ErasureReceipt,
    Memory,
    MemoryStatus,
    MemoryVersion,
    MessageRecord,
    Task,
    TaskStatus,
    content_hash,
    now_ms,
)
from engram.models.filters import FilterNode
from engram.models.knowledge import is_shared_scope
from engram.models.pipeline import segment, upload_prefix, user_prefix, work_prefix
from engram.models.requests import MemoryEdit, PageSpec
from engram.ports import (
    Embedder,
    MemoryIndex,
    MemoryPage,
    MemoryStore,
    MessageStore,
    ObjectStore,
    TaskStore,
)
from engram.retrieval.vectors import memory_vectors
from engram.services.uploads import INBOX_PREFIX

SIGNED_FOLDER = re.compile(r"[0-9a-f]{32}")  # the one-file folder object/sign makes per key
MATCH_BATCH = 500  # memories deleted per round of a delete by agent_id or filter


def _no_hold(tenant_id: str, user_id: str) -> AbstractContextManager[object]:
    return nullcontext()


def _nothing() -> None:
    return None


@dataclass
class MemoryService:
    memories: MemoryStore
    messages: MessageStore
    index: MemoryIndex
    embedder: Embedder
    objects: ObjectStore
    tasks: TaskStore
    # Removes an item's content-job record (tenant, task, message id, item index) and
    # answers the keys removed: the pipeline's own bookkeeping (pipeline/content_jobs.py
    # forget_job), handed in so that erasure need not know its layout.
    forget_content_job: Callable[[str, str, str, int], list[str]]
    # Held while a user is erased so that no task of theirs runs meanwhile (locally the
    # runner's per-user lock). On AWS there is none: each step checks its task instead.
    hold_user: Callable[[str, str], AbstractContextManager[object]] = field(
        default=_no_hold)
    # Run after an erasure (locally: SQLite WAL checkpoints, so no deleted page stays
    # in a -wal file).
    after_erase: Callable[[], None] = field(default=_nothing)
    # Drops what other services keep about an erased user (tenant, user): the EverOS v2
    # record of which conversations they wrote to (services/directory.py forget_owner).
    forget_owner: Callable[[str, str], None] = field(default=lambda tenant, user: None)
    # Erases a user's profiles (tenant, user) and answers how many: ProfileService's.
    erase_profiles: Callable[[str, str], int] = field(default=lambda tenant, user: 0)
    # Told of each memory a client edited or deleted (memory, "updated" / "deleted"): the
    # webhook events (services/webhooks.py). The pipeline's changes are told by its task.
    on_change: Callable[[Memory, str], None] = field(default=lambda memory, kind: None)

    def page(self, tenant_id: str, spec: PageSpec) -> MemoryPage:
        return self.memories.list_active(tenant_id, spec.user_id, spec.types, spec.offset,
                                         spec.limit, spec.where)

    def get(self, tenant_id: str, memory_id: str) -> Memory:
        found = self.memories.get_many(tenant_id, [memory_id])
        if not found:
            raise NotFound(f"memory {memory_id} not found")
        return found[0]

    def update(self, tenant_id: str, edit: MemoryEdit) -> Memory:
        memory = self.get(tenant_id, edit.memory_id)
        if edit.user_id is not None and memory.user_id != edit.user_id:
            raise NotFound(f"memory {edit.memory_id} not found for user {edit.user_id}")
        _not_a_passage(memory)
        if memory.status == MemoryStatus.deleted:
            raise NotFound(f"memory {edit.memory_id} was deleted")
        now = now_ms()
        reworded = edit.content is not None and edit.content != memory.memory_value
        if reworded:
            memory.history.append(MemoryVersion(
                version=memory.version, memory_value=memory.memory_value,
                valid_from=memory.valid_from, valid_to=now, change="edit",
                reason="edited through update/memory"))
            memory.memory_value, memory.version, memory.valid_from = edit.content, \
                memory.version + 1, now
            memory.content_hash = content_hash(memory.memory_type, edit.content)
            memory.context = ""  # the old neighbouring text no longer describes it
        if edit.title is not None:
            memory.memory_key = edit.title
        if edit.info is not None:
            memory.info = dict(edit.info)
        if edit.status is not None:
            memory.status = edit.status
            memory.valid_to = now if memory.status == MemoryStatus.archived else None
        memory.update_time = now
        self.memories.put_many([memory])
        if memory.episode_ids and (reworded or memory.status != MemoryStatus.activated):
            self._retire_episodes(tenant_id, [memory])  # they tell what it no longer says
        if memory.status == MemoryStatus.activated:
            self.index.upsert([memory], memory_vectors(self.embedder, [memory]))
        else:
            self.index.remove(tenant_id, [memory.id])
        self.on_change(memory, "deleted" if memory.status == MemoryStatus.deleted
                       else "updated")
        return memory

    def delete(self, tenant_id: str, memory_ids: list[str]) -> int:
        """Memories taken out of search (their rows and history stay): how many."""
        found = [m for m in self.memories.get_many(tenant_id, memory_ids)
                 if m.status != MemoryStatus.deleted]
        if not found:
            raise NotFound("none of memory_ids was found")
        for memory in found:
            _not_a_passage(memory)
        return self._retire(tenant_id, found)

    def delete_matching(self, tenant_id: str, where: FilterNode) -> int:
        """Every current memory of the tenant's users that `where` admits (delete/memory by
        agent_id or filter), taken out of search as a delete by id does: how many.
        Knowledge-base passages are never among them (delete their file instead)."""
        deleted, seen = 0, set()
        while True:
            ids = [i for i in self.index.matching_ids(tenant_id, where, MATCH_BATCH)
                   if i not in seen]
            if not ids:
                return deleted
            seen.update(ids)
            # the store decides: an index may lag behind it
            found = [m for m in self.memories.get_many(tenant_id, ids)
                     if m.status == MemoryStatus.activated and not is_shared_scope(m.user_id)
                     and where.matches(m)]
            if found:
                deleted += self._retire(tenant_id, found)

    def _retire(self, tenant_id: str, found: list[Memory]) -> int:
        now = now_ms()
        for memory in found:
            memory.status, memory.valid_to, memory.update_time = MemoryStatus.deleted, now, now
        self.memories.put_many(found)
        self.index.remove(tenant_id, [m.id for m in found])
        for memory in found:
            self.on_change(memory, "deleted")
        self._retire_episodes(tenant_id, found)
        return len(found)

    def _retire_episodes(self, tenant_id: str, found: list[Memory]) -> None:
        """The episodes that tell any of `found` (pipeline/episodes.py) are deleted with
        it: none keeps text its user deleted or changed."""
        gone = {m.id for m in found}
        ids = list(dict.fromkeys(i for m in found for i in m.episode_ids if i not in gone))
        told_in = [e for e in self.memories.get_many(tenant_id, ids)
                   if e.status == MemoryStatus.activated] if ids else []
        if told_in:
            self._retire(tenant_id, told_in)

    def erase_user(self, tenant_id: str, user_id: str) -> ErasureReceipt:
        """Everything of a user, for good: memories in every status (their history with
        them), raw messages, stored requests with their inline files, uploads (signed for
        the user, or named by their adds), index rows, and their tasks (get/status then
        answers 404) with the step outputs of those still unfinished."""
        with self.hold_user(tenant_id, user_id):
            receipt = self._erase(tenant_id, user_id)
            self.forget_owner(tenant_id, user_id)
        self.after_erase()
        return receipt

    def _erase(self, tenant_id: str, user_id: str) -> ErasureReceipt:
        receipt = ErasureReceipt()
        tasks = self.tasks.tasks_of_user(tenant_id, user_id)
        own = self._own_upload_folders(tenant_id, user_id)
        # What only the task rows lead to goes before them, so that an erase cut short
        # and tried again still finds it: uploads the adds named, and step outputs.
        uploads = {key for prefix in self._named_uploads(tenant_id, tasks, own)
                   for key in self.objects.delete_prefix(prefix)}
        work = self._forget_work(tenant_id, tasks)
        # Task rows go before anything they point to: a step still running then finds
        # its task gone and removes what it wrote (pipeline/steps.py).
        erased = self.tasks.erase_tasks(tasks)
        receipt.tasks = len(erased)
        work |= self._forget_work(tenant_id, erased)  # what a step wrote meanwhile
        receipt.work_objects = len(work)

        # The tasks' views name memories a lagging user index (DynamoDB's GSI) may miss.
        ids = dict.fromkeys([*self.memories.ids_for_user(tenant_id, user_id),
                             *(i for task in erased for i in task.memory_views.memory_ids)])
        memories = [m for m in self.memories.get_many(tenant_id, list(ids))
                    if m.user_id == user_id]
        receipt.memories = len(memories)
        receipt.versions = sum(len(m.history) for m in memories)
        receipt.index_rows = self.index.remove_user(tenant_id, user_id, [m.id for m in memories])
        self.memories.erase(tenant_id, [m.id for m in memories])
        receipt.messages = self.messages.delete_user(tenant_id, user_id)
        receipt.profiles = self.erase_profiles(tenant_id, user_id)

        for key in self.objects.delete_prefix(user_prefix(tenant_id, user_id)):
            if "/items/" in key:
                receipt.files += 1
            else:
                receipt.requests += 1
        for folder in own:
            uploads.update(self.objects.delete_prefix(folder))
        receipt.uploads = len(uploads)
        return receipt

    @staticmethod
    def _own_upload_folders(tenant_id: str, user_id: str) -> list[str]:
        """The folder of uploads signed for the user, and their AWS inbox folder."""
        folders = [f"{upload_prefix(tenant_id)}{segment(user_id)}"]
        # Inbox folders are raw user ids: one with a "/" would name another user's subfolder.
        if "/" not in user_id and user_id not in (".", ".."):
            folders.append(f"{INBOX_PREFIX}{tenant_id}/{user_id}")
        return folders

    @staticmethod
    def _named_uploads(tenant_id: str, tasks: list[Task], own: list[str]) -> list[str]:
        """Uploads the user's adds read, outside their own folders: one signed without
        userId (EverOS's SDK sends none) sits in the tenant's shared folder; named by the
        user's add, it is theirs. Each with the one-file folder object/sign made for it."""
        uploads, inbox = upload_prefix(tenant_id), f"{INBOX_PREFIX}{tenant_id}/"
        keys = {item.uri for task in tasks for item in task.items
                if item.uri.startswith((uploads, inbox)) and ".." not in item.uri.split("/")}
        prefixes = []
        for key in sorted(keys):
            if any(key.startswith(folder + "/") for folder in own):
                continue
            owner, _, rest = key.removeprefix(uploads).partition("/")
            folder, _, name = rest.partition("/")
            signed = key.startswith(uploads) and SIGNED_FOLDER.fullmatch(folder)
            prefixes.append(f"{uploads}{owner}/{folder}" if signed and name and "/" not in name
                            else key)
        return prefixes

    def _forget_work(self, tenant_id: str, tasks: list[Task]) -> set[str]:
        """Step outputs and content-job records of tasks not completed (a completed task
        removed its own)."""
        removed: set[str] = set()
        for task in tasks:
            if task.status == TaskStatus.completed:
                continue
            removed.update(self.objects.delete_prefix(work_prefix(tenant_id, task.task_id)))
            for item in task.items:
                removed.update(self.forget_content_job(tenant_id, task.task_id,
                                                       item.message_id, item.index))
        return removed

    def conversation(self, tenant_id: str, user_id: str, conversation_id: str,
                     limit: int | None) -> list[MessageRecord]:
        return self.messages.list_conversation(tenant_id, user_id, conversation_id,
                                               limit or 1000)


def _not_a_passage(memory: Memory) -> None:
    if is_shared_scope(memory.user_id):
        raise Unprocessable(f"memory {memory.id} is a knowledge-base passage: it changes with "
                            "its file (delete/knowledgebase-file), not through memory routes")
