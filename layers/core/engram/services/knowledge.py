"""Knowledge bases: create and delete them, add files (uploaded, base64 or fetched from a
URL), list and delete files. A file goes through the parse pipeline of message files
(engram.parsing: PDF, DOCX/DOC, TXT/MD, HTML, the seeds' limits) and its text becomes
passages: memories owned by the knowledge base's scope (models/knowledge.py), each citing
its file and page, searchable through search/memory's `knowledgebase_ids`.

Files are read while the request waits, all of a request's files before any is stored: a
file over a limit (size, pages, files per request) or unreadable is a 4xx naming it, and
nothing of the request is kept. A file that parses but holds no text is kept as "failed"
with the reason, so get/knowledgebase-file shows why it gives no passages.

Deleting a knowledge base (or a file) erases its passages (rows and index rows) and its
stored files. Memories that users' adds wrote into it stay theirs, unlinked from it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from engram.config import Limits
from engram.errors import LimitExceeded, NotFound, ParseError, PayloadTooLarge, Unprocessable
from engram.models.domain import Memory, MemoryType, content_hash, now_ms
from engram.models.filters import FilterNode
from engram.models.identifiers import plain_identifier
from engram.models.knowledge import KnowledgeBase, KnowledgeFile, is_shared_scope, kb_scope
from engram.models.parsed import ParseResult
from engram.models.pipeline import segment
from engram.ports import (
    Embedder,
    KnowledgeStore,
    MemoryIndex,
    MemoryStore,
    ObjectStore,
    Ocr,
    UrlFetcher,
)
from engram.retrieval.vectors import memory_vectors
from engram.services.url_policy import SsrfPolicy

KB_KINDS = {"pdf": "PDF", "doc": "DOCX/DOC", "text": "TXT/MD", "html": "HTML"}
ACCEPTED = "PDF, DOCX, DOC, TXT, MD and HTML files"
EMBED_BATCH = 64
# A file still "running" after this was left by a process that died: requests read their
# files while they wait (API Gateway gives them 29 s), so none runs this long.
RUNNING_LEASE_MS = 5 * 60_000
UNLINK_BATCH = 500  # users' memories taken out of a deleted knowledge base per round


def file_id(knowledgebase_id: str, name: str, data: bytes) -> str:
    """A file's id from what it is: the same name and bytes in one knowledge base are one
    file (the tenant is the store's partition already)."""
    digest = hashlib.sha256(data).hexdigest()
    key = hashlib.sha256(f"{knowledgebase_id}\x1f{name}\x1f{digest}".encode()).hexdigest()
    return str(uuid.UUID(key[:32]))


def knowledge_prefix(tenant_id: str, knowledgebase_id: str) -> str:
    """Every stored file of a knowledge base is under this."""
    return f"knowledgebases/{segment(tenant_id)}/{segment(knowledgebase_id)}"


@dataclass
class FileInput:
    """One file of add/knowledgebase-file, as sent: bytes (a form upload or base64), or a
    URL to fetch."""

    where: str  # "file[0]": how errors name it
    name: str = ""
    data: bytes | None = None
    url: str | None = None
    content_type: str | None = None
    source: str = "upload"  # "upload" | "base64" (a URL: the URL itself)


@dataclass
class _Read:
    input: FileInput
    data: bytes
    name: str
    content_type: str | None
    kind: str
    result: ParseResult


def _nothing() -> None:
    return None


@dataclass
class KnowledgeService:
    store: KnowledgeStore
    objects: ObjectStore
    memories: MemoryStore
    index: MemoryIndex
    embedder: Embedder
    # what the parse step reads with (its parsers are imported by the first file read)
    limits: Limits = field(default_factory=Limits)
    ocr: Ocr | None = None
    fetcher: UrlFetcher | None = None
    url_policy: SsrfPolicy = field(default_factory=SsrfPolicy)
    after_erase: Callable[[], None] = _nothing  # locally: SQLite WAL checkpoints

    # --- knowledge bases -------------------------------------------------------------
    def create(self, tenant_id: str, name: str, description: str | None) -> KnowledgeBase:
        base = KnowledgeBase(tenant_id=tenant_id, name=name, description=description)
        self.store.put_base(base)
        return base

    def require(self, tenant_id: str, knowledgebase_id: str,
                field_name: str = "knowledgebase_id") -> KnowledgeBase:
        """The tenant's knowledge base, or a 404 (another tenant's id is not found either)."""
        base = self.store.get_base(tenant_id, knowledgebase_id)
        if base is None:
            raise NotFound(f"{field_name}: knowledge base {knowledgebase_id} not found")
        return base

    def require_all(self, tenant_id: str, ids: Sequence[str], field_name: str) -> None:
        for i, knowledgebase_id in enumerate(ids):
            self.require(tenant_id, knowledgebase_id, f"{field_name}[{i}]")

    def delete(self, tenant_id: str, knowledgebase_id: str) -> int:
        """The knowledge base, its files' records, passages and stored bytes: how many
        files it had."""
        self.require(tenant_id, knowledgebase_id)
        files = self.store.list_files(tenant_id, knowledgebase_id)
        # passages the file records name, and any other row its scope owns
        ids = dict.fromkeys([*(i for f in files for i in f.passage_ids),
                             *self.memories.ids_for_user(tenant_id, kb_scope(knowledgebase_id))])
        self._erase_passages(tenant_id, list(ids))
        self._unlink_memories(tenant_id, knowledgebase_id)
        self.objects.delete_prefix(knowledge_prefix(tenant_id, knowledgebase_id))
        self.store.delete_files(files)
        self.store.delete_base(tenant_id, knowledgebase_id)
        self.after_erase()
        return len(files)

    def _unlink_memories(self, tenant_id: str, knowledgebase_id: str) -> None:
        """Users' memories that adds wrote into the knowledge base stay theirs, out of it:
        their rows lose its id and their index rows leave its scope."""
        scope, seen = kb_scope(knowledgebase_id), set()
        while True:
            ids = [i for i in self.index.matching_ids(tenant_id, FilterNode(), UNLINK_BATCH,
                                                      scope=scope) if i not in seen]
            if not ids:
                return
            seen.update(ids)
            linked = [m for m in self.memories.get_many(tenant_id, ids)
                      if not is_shared_scope(m.user_id)
                      and knowledgebase_id in m.knowledgebase_ids]
            for memory in linked:
                memory.knowledgebase_ids.remove(knowledgebase_id)
            if linked:
                self.memories.put_many(linked)
                self.index.upsert(linked, memory_vectors(self.embedder, linked))

    # --- files ----------------------------------------------------------------------
    def add_files(self, tenant_id: str, knowledgebase_id: str,
                  inputs: Sequence[FileInput]) -> list[KnowledgeFile]:
        base = self.require(tenant_id, knowledgebase_id)
        limits = self.limits
        if not inputs:
            raise Unprocessable("file: give at least one file")
        if len(inputs) > limits.max_files_per_request:
            raise Unprocessable(f"file: the request has {len(inputs)} files; the limit is "
                                f"{limits.max_files_per_request} per request")
        read = [self._read(one) for one in inputs]  # every file, before any is stored
        return [self._keep(base, one) for one in read]

    def files(self, tenant_id: str, file_ids: Sequence[str]) -> list[KnowledgeFile]:
        found = self.store.get_files(tenant_id, file_ids)
        if not found:
            raise NotFound("file_ids: none of these files was found")
        return found

    def list_files(self, tenant_id: str, knowledgebase_id: str) -> list[KnowledgeFile]:
        self.require(tenant_id, knowledgebase_id)
        return self.store.list_files(tenant_id, knowledgebase_id)

    def delete_files(self, tenant_id: str, file_ids: Sequence[str]) -> int:
        files = self.files(tenant_id, file_ids)
        self._erase_passages(tenant_id, [i for f in files for i in f.passage_ids])
        for f in files:
            if f.object_key:
                self.objects.delete_prefix(f.object_key.rsplit("/", 1)[0])
        self.store.delete_files(files)
        self.after_erase()
        return len(files)

    # --- reading and keeping -------------------------------------------------------------
    def _read(self, one: FileInput) -> _Read:
        from engram.parsing import detect_kind, parse_item
        from engram.pipeline.content_reader import URL_SAFE

        limits = self.limits
        data, name, content_type = one.data, one.name, one.content_type
        if one.url is not None:
            refusal = self.url_policy.accept_refusal(one.url)
            if refusal:
                raise Unprocessable(f"{one.where}: {one.url[:200]} {refusal}")
            if self.fetcher is None:
                raise Unprocessable(f"{one.where}: fetching URLs is not configured here")
            try:
                fetched = self.fetcher.fetch(quote(one.url, safe=URL_SAFE))
            except Exception as exc:  # noqa: BLE001 - the fetcher's reason is the client's
                raise Unprocessable(f"{one.where}: {one.url[:200]} could not be fetched: "
                                    f"{exc}") from None
            data, content_type = fetched.data, content_type or fetched.content_type
            name = name or fetched.name or one.url.rstrip("/").rsplit("/", 1)[-1]
        assert data is not None
        try:  # a name is shown, logged and part of the stored file's key
            plain_identifier(name)
        except ValueError as exc:
            raise Unprocessable(f"{one.where}.name: {exc}") from None
        shown = f"{one.where} ({name})" if name else one.where
        if len(data) > limits.max_document_bytes:
            raise PayloadTooLarge(
                f"{shown} is {len(data)} bytes; the limit for documents is "
                f"{limits.max_document_bytes} bytes ({limits.max_document_bytes // 2**20} MB)")
        if not data:
            raise Unprocessable(f"{shown} is empty")
        try:
            kind = detect_kind(name, content_type, data)
        except ParseError as exc:
            raise Unprocessable(f"{shown}: {exc}; a knowledge base takes {ACCEPTED}") from None
        if kind not in KB_KINDS:
            raise Unprocessable(f"{shown} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
                                f"file; a knowledge base takes {ACCEPTED}")
        try:
            result = parse_item(data, kind=kind, name=name, ocr=self.ocr, limits=limits)
        except LimitExceeded as exc:
            raise PayloadTooLarge(f"{shown}: {exc}") from None
        except ParseError as exc:
            raise Unprocessable(f"{shown} could not be read: {exc}") from None
        return _Read(one, data, name or f"file-{one.where}", content_type, kind, result)

    def _keep(self, base: KnowledgeBase, read: _Read) -> KnowledgeFile:
        from engram.extraction.context import detect_language
        from engram.extraction.documents import passages
        from engram.pipeline.content_reader import block_refs

        tenant_id, knowledgebase_id = base.tenant_id, base.knowledgebase_id
        source = read.input.url or read.input.source
        record = KnowledgeFile(tenant_id=tenant_id, knowledgebase_id=knowledgebase_id,
                               file_id=file_id(knowledgebase_id, read.name, read.data),
                               name=read.name, size=len(read.data),
                               content_type=read.content_type, kind=read.kind, source=source,
                               pages=read.result.pages)
        record.object_key = (f"{knowledge_prefix(tenant_id, knowledgebase_id)}/"
                             f"{segment(record.file_id)}/{segment(read.name)}")
        # "running" while its passages are made. The same file (name and bytes) added to
        # this knowledge base again, by a client's retry or at the same moment, answers
        # the record there instead of making its passages twice. A failed one is redone,
        # and so is one left running past any request's life (its process died): what
        # it had written is erased first.
        there = self.store.claim_file(record)
        if there is not None and (there.status == "completed" or (
                there.status == "running" and now_ms() - there.update_time < RUNNING_LEASE_MS)):
            return there
        if there is not None:
            self._erase_passages(tenant_id, self._passages_of(tenant_id, knowledgebase_id,
                                                              record.file_id))
            record.create_time = there.create_time
            self.store.put_file(record)
        self.objects.put_bytes(record.object_key, read.data)
        blocks = block_refs("file", read.kind, read.name, record.object_key, record.file_id,
                            0, read.result)
        now = now_ms()
        scope = kb_scope(knowledgebase_id)
        made = []
        for passage in passages(blocks):
            text = " ".join(" ".join(b.text.split()) for b in passage)
            page = passage[0].page
            info = {"knowledgebase_id": knowledgebase_id, "file_id": record.file_id,
                    "file_name": read.name}
            if page is not None:
                info["page"] = str(page)
            made.append(Memory(
                tenant_id=tenant_id, user_id=scope, memory_type=MemoryType.long_term,
                memory_key=f"{read.name}, page {page}" if page is not None else read.name,
                memory_value=text,
                tags=["knowledgebase", read.kind], info=info, confidence=1.0,
                sources=[record.file_id, record.object_key], create_time=now, update_time=now,
                valid_from=now, content_hash=content_hash(MemoryType.long_term, text),
                language=detect_language(text), context=read.name,
                knowledgebase_ids=[knowledgebase_id]))
        try:
            for start in range(0, len(made), EMBED_BATCH):
                chunk = made[start:start + EMBED_BATCH]
                self.memories.put_many(chunk)
                self.index.upsert(chunk, memory_vectors(self.embedder, chunk))
        except Exception as exc:
            # nothing half-made stays searchable; the record says the file failed
            self._erase_passages(tenant_id, [m.id for m in made])
            record.status, record.update_time = "failed", now_ms()
            record.error = f"Processing Failed: {type(exc).__name__}"
            self.store.put_file(record)
            raise
        record.passage_ids = [m.id for m in made]
        if made:
            record.status = "completed"
        else:
            record.status = "failed"
            record.error = "Processing Failed: no text could be read from the file" + (
                f" ({'; '.join(read.result.warnings)})" if read.result.warnings else "")
        record.update_time = now_ms()
        self.store.put_file(record)
        return record

    def _passages_of(self, tenant_id: str, knowledgebase_id: str, file_id: str) -> list[str]:
        """Every passage a file's reading wrote, recorded on its file or not."""
        scope = kb_scope(knowledgebase_id)
        ids = self.memories.ids_for_user(tenant_id, scope)
        return [m.id for m in self.memories.get_many(tenant_id, ids)
                if m.user_id == scope and file_id in m.sources]

    def _erase_passages(self, tenant_id: str, ids: list[str]) -> None:
        if ids:
            self.index.remove(tenant_id, ids)
            self.memories.erase(tenant_id, ids)
