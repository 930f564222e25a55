"""The parse step's reading of non-text items: images, documents, audio and video. What
they become as memories is in extraction/images.py and extraction/documents.py.

Each item's bytes (object store, or the URL fetcher) → `engram.parsing.parse_item`
→ text blocks with provenance; the item's status (state, pages or seconds, error) is
saved as it goes, so get/status shows progress. An item that fails (over a limit, no
engine for it, unreadable) is marked "Processing Failed" with the reason; the other
items and the text of the message are processed all the same.

Images are read twice: OCR for their text and, when a vision model is configured (the
`ImageDescriber` port), a one-sentence description; a describer that fails leaves the
item completed with its OCR text and a warning.

On AWS, OCR of scanned PDFs and transcription go to asynchronous jobs instead
(`AsyncEngines`; pipeline/content_jobs.py runs them)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from engram.config import Limits
from engram.errors import CapabilityUnavailable, ImageDescriptionFailed, ParseError
from engram.models.content import (
    FAILED_PREFIX,
    ContentItem,
    ItemStatus,
    TextBlockRef,
)
from engram.models.domain import Task
from engram.models.parsed import ParseResult
from engram.models.pipeline import DeferredItem, content_key
from engram.parsing import detect_kind, parse_item
from engram.parsing.dispatch import check_size, expect_format
from engram.parsing.images import vision_ready_image
from engram.parsing.media import media_format
from engram.parsing.pdf import parse_pdf
from engram.ports import ImageDescriber, ObjectStore, Ocr, TaskStore, Transcriber, UrlFetcher

log = logging.getLogger(__name__)
URL_SAFE = ":/?#[]@!$&'()*+,;=%~"  # kept as they are when a URL is re-quoted


def never(_: BaseException) -> bool:
    return False


@dataclass
class Deferral:
    """An item (or part of it) that an asynchronous job reads: what was read now, and
    what the job needs."""

    engine: str  # "ocr" | "transcription"
    kind: str
    partial: ParseResult  # read already: a PDF's text layer; nothing for media
    data: bytes
    media_format: str | None = None


@dataclass(frozen=True)
class AsyncEngines:
    """Items this deployment hands to asynchronous jobs instead of reading them in the
    parse step (AWS: Textract, Transcribe; the state machine waits for their callbacks)."""

    ocr: bool = False  # a PDF with pages without a text layer → one OCR job
    transcription: bool = False  # audio and video → one transcription job each
    # Why audio/video cannot be read when transcription is off ("" : no reason to give,
    # the Transcriber port decides as it does locally).
    transcription_off: str = ""

    def plan(self, data: bytes, kind: str, name: str,
             limits: Limits) -> ParseResult | Deferral | None:
        """A Deferral, a ParseResult when the item needed no job after all (a PDF whose
        pages all have text), or None: parse it in the step as usual."""
        if kind == "pdf" and self.ocr:
            _check(data, kind, name, limits)
            partial = parse_pdf(data, ocr=None, limits=limits, ocr_later=True)
            return Deferral("ocr", kind, partial, data) if partial.ocr_pages else partial
        if kind in ("audio", "video"):
            if self.transcription:
                _check(data, kind, name, limits)
                return Deferral("transcription", kind, ParseResult(kind=kind, blocks=[]),
                                data, media_format(data, name))
            if self.transcription_off:
                raise CapabilityUnavailable(f"{kind} transcription unavailable: "
                                            f"{self.transcription_off}")
        return None


def _check(data: bytes, kind: str, name: str, limits: Limits) -> None:
    check_size(len(data), kind, limits)
    if not data:
        raise ParseError("the file is empty")
    if kind == "pdf":
        expect_format(data, kind, name)


@dataclass
class ContentReader:
    """What the parse step needs to read items: OCR, the URL fetcher, speech, a vision
    model, limits, and which items go to asynchronous jobs instead (`jobs`, the AWS
    path)."""

    ocr: Ocr | None = None
    fetcher: UrlFetcher | None = None
    limits: Limits = field(default_factory=Limits)
    transcriber: Transcriber | None = None
    jobs: AsyncEngines | None = None
    describer: ImageDescriber | None = None  # None: images are read by OCR alone

    def load(self, objects: ObjectStore, item: ContentItem) -> tuple[bytes, str | None, str]:
        """(bytes, content type, name)."""
        if item.key:
            try:
                return objects.get_bytes(item.key), item.content_type, item.name
            except KeyError:
                raise CapabilityUnavailable(
                    f"the object {item.key} is gone (deleted before it was read)") from None
        if item.url:
            if self.fetcher is None:
                raise CapabilityUnavailable("fetching URLs is not configured here")
            # Clients send URLs with spaces ("MemOS 2.pdf" in MemOS's own example).
            fetched = self.fetcher.fetch(quote(item.url, safe=URL_SAFE))
            return fetched.data, fetched.content_type, item.name or fetched.name
        raise CapabilityUnavailable("the item has no content")

    def parse(self, objects: ObjectStore, item: ContentItem) -> ParseResult | Deferral:
        data, content_type, name = self.load(objects, item)
        # A declared image or PDF is checked to be one (a mislabelled file is refused with a
        # clear reason); every other item is what its bytes say it is.
        kind = item.type if item.type in ("image", "pdf") else detect_kind(
            name, content_type, data)
        if self.jobs is not None:
            planned = self.jobs.plan(data, kind, name, self.limits)
            if planned is not None:
                return planned
        if kind == "image" and self.describer is not None:
            return self._read_image(data, name)
        return parse_item(data, kind=kind, name=name, ocr=self.ocr, limits=self.limits,
                          transcriber=self.transcriber)

    def _read_image(self, data: bytes, name: str) -> ParseResult:
        """OCR (when there is an engine), then the description. A description that
        fails is a warning; the item fails only when neither gave anything."""
        unread: CapabilityUnavailable | None = None
        try:
            result = parse_item(data, kind="image", name=name, ocr=self.ocr,
                                limits=self.limits)
        except CapabilityUnavailable as exc:  # no OCR engine: the description alone
            unread, result = exc, ParseResult(kind="image", blocks=[], warnings=[str(exc)])
        try:
            result.description = self._describe(data)
        except ImageDescriptionFailed as exc:
            if unread is not None:
                raise CapabilityUnavailable(f"{unread}; image description failed: {exc}") \
                    from exc
            result.warnings.append(f"image description unavailable: {exc}")
        return result

    def _describe(self, data: bytes) -> str:
        assert self.describer is not None
        try:
            image, content_type = vision_ready_image(data)
            return self.describer.describe(image, content_type)
        except ImageDescriptionFailed as exc:
            log.warning("image description failed: %s", exc)
            raise
        except Exception as exc:  # noqa: BLE001 - a describer's failure never fails the item
            # The type only: a message may quote a request (never a key, but no need).
            log.warning("image description failed: %s", type(exc).__name__)
            raise ImageDescriptionFailed(f"{type(exc).__name__}") from exc


@dataclass
class ParsedItems:
    blocks: list[TextBlockRef]
    deferred: list[DeferredItem]  # items still "processing": their jobs are to start
    # What each described image shows, by (message id, item index): for
    # extraction/images.image_turns.
    descriptions: dict[tuple[str, int], str] = field(default_factory=dict)


def parse_items(reader: ContentReader, objects: ObjectStore, tasks: TaskStore, task: Task,
                items: Sequence[ContentItem],
                transient: Callable[[BaseException], bool] = never) -> ParsedItems:
    """Every item → blocks; statuses saved on the task as each one starts and ends. A
    transient error (throttling, a timeout of an AWS call) is raised for the workflow to
    retry; any other failure is the item's own. An item handed to an asynchronous job
    stays "processing" (with its page count) until the collect step sees the result."""
    statuses = {(s.message_id, s.index): s for s in task.items}
    blocks: list[TextBlockRef] = []
    deferred: list[DeferredItem] = []
    descriptions: dict[tuple[str, int], str] = {}
    for item in items:
        status = statuses.get((item.message_id, item.index))
        if status is None:
            status = ItemStatus(message_id=item.message_id, index=item.index, type=item.type,
                                name=item.name, uri=item.location)
            task.items.append(status)
        status.state, status.error, status.warnings = "processing", None, []
        tasks.save(task)
        try:
            result = reader.parse(objects, item)
        except Exception as exc:  # noqa: BLE001 - an item's failure is reported, not raised
            if transient(exc):
                raise
            log.info("item %s of task %s failed: %s", item.ref, task.task_id, exc)
            status.state, status.error = "failed", f"{FAILED_PREFIX}: {exc}"
            tasks.save(task)
            continue
        if isinstance(result, Deferral):
            deferred.append(_defer(objects, task, item, result))
            status.kind, status.pages = result.kind, result.partial.pages
            status.warnings = list(result.partial.warnings)
            status.blocks = len(deferred[-1].blocks)
            tasks.save(task)
            continue
        status.state, status.kind = "completed", result.kind
        status.pages, status.seconds = result.pages, result.seconds
        status.warnings = list(result.warnings)
        status.blocks = len(result.blocks)
        status.name = status.name or item.name
        tasks.save(task)
        blocks += block_refs(item.type, result.kind, item.name, item.location,
                             item.message_id, item.index, result)
        if result.description:
            descriptions[(item.message_id, item.index)] = result.description
    return ParsedItems(blocks=blocks, deferred=deferred, descriptions=descriptions)


def block_refs(item_type: str, kind: str, name: str, location: str, message_id: str,
               index: int, result: ParseResult) -> list[TextBlockRef]:
    return [TextBlockRef(
        message_id=message_id, index=index, item_type=item_type, kind=kind,
        name=name or location.rsplit("/", 1)[-1], location=location, text=b.text,
        page=b.page, start_s=b.start_s, end_s=b.end_s, origin=b.origin)
        for b in result.blocks if b.text.strip()]


def _defer(objects: ObjectStore, task: Task, item: ContentItem,
           deferral: Deferral) -> DeferredItem:
    """What the job needs: the item's own object, or (a fetched URL) its bytes stored
    under the task's work prefix, since the job reads from the object store."""
    key = item.key
    if not key:
        key = content_key(task.tenant_id, task.task_id, item.message_id, item.index, "source")
        objects.put_bytes(key, deferral.data)
    return DeferredItem(
        message_id=item.message_id, index=item.index, engine=deferral.engine,
        item_type=item.type, kind=deferral.kind, name=item.name, location=item.location,
        key=key, pages=deferral.partial.pages, ocr_pages=deferral.partial.ocr_pages,
        media_format=deferral.media_format, warnings=list(deferral.partial.warnings),
        blocks=block_refs(item.type, deferral.kind, item.name, item.location,
                          item.message_id, item.index, deferral.partial))
