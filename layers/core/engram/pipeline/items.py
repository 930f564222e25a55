"""Non-text items in the pipeline.

parse: each item's bytes (object store, or the URL fetcher) → `engram.parsing.parse_item`
→ text blocks with provenance; the item's status (state, pages or seconds, error) is
saved as it goes, so get/status shows progress. An item that fails (over a limit, no
engine for it, unreadable) is marked "Processing Failed" with the reason; the other
items and the text of the message are processed all the same.

Images are read twice: OCR for their text and, when a vision model is configured (the
`ImageDescriber` port), a one-sentence description; a describer that fails leaves the
item completed with its OCR text and a warning.

extract: an image becomes a turn "[image: <what it shows>; text reading "..."]" of its
message's speaker, which extraction turns into "The user shared an image of ..."; a
document becomes a memory that it was shared plus one memory per passage of its text
(page or time span in the title and in `sources`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from engram.config import Limits
from engram.errors import CapabilityUnavailable, ImageDescriptionFailed, ParseError
from engram.extraction.rules.extractor import detect_language
from engram.models.content import (
    FAILED_PREFIX,
    ContentItem,
    ItemStatus,
    TextBlockRef,
)
from engram.models.domain import Candidate, MemoryType, MessageRecord, Role, Task
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

PASSAGE_CHARS = 900  # a document passage: long enough to say something, short to embed well
IMAGE_DESCRIPTION_CHARS = 200  # OCR text quoted in an image's turn
IMAGE_VISION_CHARS = 300  # a vision model's description in an image's turn
IMAGE_TEXT_AS_PASSAGES = 300  # OCR text longer than this is also kept as passages
CONFIDENCE_DOCUMENT = 0.9
KIND_NAMES = {"pdf": "PDF document", "doc": "document", "html": "web page",
              "email": "email", "audio": "audio recording", "video": "video",
              "text": "text file", "image": "image"}


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
    # What each described image shows, by (message id, item index): for image_turns.
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


# --- extract -------------------------------------------------------------------------

def image_turns(messages: Sequence[MessageRecord], blocks: Sequence[TextBlockRef],
                statuses: Sequence[ItemStatus],
                descriptions: Mapping[tuple[str, int], str] | None = None
                ) -> list[MessageRecord]:
    """The messages with, after each, a turn per image it held: "[image: ...]" in the
    voice of the message's speaker (extraction makes that "<speaker> shared an image of
    ..."), with the image's own reference as message id. `descriptions`: what a vision
    model said each image shows, by (message id, item index)."""
    descriptions = descriptions or {}
    texts: dict[tuple[str, int], list[str]] = {}
    for block in blocks:
        if block.item_type == "image" or block.kind == "image":
            texts.setdefault((block.message_id, block.index), []).append(block.text)
    images = [s for s in statuses if s.state == "completed" and s.kind == "image"]
    out: list[MessageRecord] = []
    for message in messages:
        if message.text.strip():
            out.append(message)
        for status in images:
            if status.message_id != message.message_id:
                continue
            key = (status.message_id, status.index)
            description = image_description(" ".join(texts.get(key, [])), status.name,
                                            descriptions.get(key, ""))
            out.append(message.model_copy(update={
                "message_id": f"{message.message_id}#item={status.index}",
                "text": f"[image: {description}]"}))
    return out


def image_description(text: str, name: str, seen: str = "") -> str:
    """What an image shows: a vision model's description (`seen`) and the text OCR
    read on it — "a red bicycle by a wall; text reading "…"" — or the OCR text alone."""
    words = _bracket_free(text)
    seen = vision_phrase(seen)
    if words:
        if len(words) > IMAGE_DESCRIPTION_CHARS:
            words = words[:IMAGE_DESCRIPTION_CHARS - 1].rstrip() + "…"
        return f'{seen}; text reading "{words}"' if seen else f'text reading "{words}"'
    if seen:
        return seen
    return f"{name} (no text in it)" if name else "something with no text in it"


# "This image shows …", "An image of …": said already by "shared an image of".
_PREAMBLE = re.compile(
    r"^(?:(?:this|the)\s+(?:image|picture|photo(?:graph)?|screenshot)\s+"
    r"(?:shows|depicts|contains|features|is\s+of)\s*:?\s+|(?:an?\s+)?(?:image|picture)\s+"
    r"(?:of|showing)\s+)", re.I)
_LOWER_FIRST = re.compile(r"^(?:A|An|The|Two|Three|Several|Some|Close-up|Screenshot|Photo)\b")


def vision_phrase(sentence: str) -> str:
    """A model's sentence as the phrase after "shared an image of": no preamble, no
    brackets (they end the turn's "[image: …]"), no final stop, an article in lower case."""
    phrase = _bracket_free(sentence).strip("\"' ")
    phrase = _PREAMBLE.sub("", phrase).rstrip(". ")
    if _LOWER_FIRST.match(phrase):
        phrase = phrase[0].lower() + phrase[1:]
    return _clip(phrase, IMAGE_VISION_CHARS)


def _bracket_free(text: str) -> str:
    return " ".join(text.split()).replace("[", "(").replace("]", ")")


def document_candidates(task: Task, messages: Sequence[MessageRecord],
                        blocks: Sequence[TextBlockRef]) -> list[Candidate]:
    """For each parsed non-image item: that it was shared, and its text in passages."""
    by_id = {m.message_id: m for m in messages}
    candidates: list[Candidate] = []
    for status in task.items:
        if status.state != "completed" or status.kind == "image":
            continue
        message = by_id.get(status.message_id)
        if message is None:
            continue
        item_blocks = [b for b in blocks
                       if (b.message_id, b.index) == (status.message_id, status.index)]
        candidates.append(_shared_candidate(status, message, item_blocks))
        candidates += _passage_candidates(status.name, message, item_blocks)
    for status in task.items:  # long text on an image: searchable as passages too
        if status.state == "completed" and status.kind == "image":
            item_blocks = [b for b in blocks
                           if (b.message_id, b.index) == (status.message_id, status.index)]
            message = by_id.get(status.message_id)
            if message and sum(len(b.text) for b in item_blocks) > IMAGE_TEXT_AS_PASSAGES:
                candidates += _passage_candidates(f"text in {status.name or 'an image'}",
                                                  message, item_blocks)
    return candidates


def _who(message: MessageRecord) -> str:
    speaker = (message.speaker or "").strip()
    if speaker and speaker.lower() not in ("user", "assistant", "system", "tool"):
        return speaker
    return {Role.assistant: "The assistant", Role.tool: "A tool",
            Role.system: "The system"}.get(message.role, "The user")


def _shared_candidate(status: ItemStatus, message: MessageRecord,
                      blocks: Sequence[TextBlockRef]) -> Candidate:
    what = KIND_NAMES.get(status.kind or "", "file")
    size = (f" ({status.pages} page{'s' if status.pages != 1 else ''})"
            if status.pages and status.kind in ("pdf", "doc")
            else f" ({status.seconds:.0f} s)" if status.seconds else "")
    article = "an" if what[0] in "aeiou" else "a"
    first = " ".join(" ".join(b.text.split()) for b in blocks[:2])
    about = f', which begins: "{_clip(first, 160)}"' if first else ""
    name = f' "{status.name}"' if status.name else ""
    ref = f"{status.message_id}#item={status.index}"
    return Candidate(
        memory_type=MemoryType.user, memory_key=f"Shared {what}",
        memory_value=f"{_who(message)} shared {article} {what}{name}{size}{about}.",
        tags=["document", status.kind or "file"], confidence=CONFIDENCE_DOCUMENT,
        sources=[ref, status.uri] if status.uri else [ref], event_time=message.event_time,
        language=detect_language(first or status.name or "x"), context=message.text[:300])


def _passage_candidates(title: str, message: MessageRecord,
                        blocks: Sequence[TextBlockRef]) -> list[Candidate]:
    out = []
    for passage in passages(blocks):
        first = passage[0]
        text = " ".join(" ".join(b.text.split()) for b in passage)
        refs = list(dict.fromkeys(r for b in passage for r in (b.ref, b.location_ref)))
        out.append(Candidate(
            memory_type=MemoryType.long_term, memory_key=_passage_title(title, first),
            memory_value=text, tags=["document", first.kind],
            confidence=CONFIDENCE_DOCUMENT, sources=refs, event_time=message.event_time,
            language=detect_language(text), context=title))
    return out


def passages(blocks: Sequence[TextBlockRef]) -> list[list[TextBlockRef]]:
    """Consecutive blocks of the same page (or origin) joined up to PASSAGE_CHARS; a
    longer block is split at sentence ends."""
    out: list[list[TextBlockRef]] = []
    current: list[TextBlockRef] = []
    size = 0
    for block in blocks:
        for piece in _split(block):
            same_place = current and (current[-1].page, current[-1].origin) == (
                piece.page, piece.origin) and current[-1].start_s is None
            if current and (not same_place or size + len(piece.text) > PASSAGE_CHARS):
                out.append(current)
                current, size = [], 0
            current.append(piece)
            size += len(piece.text) + 1
    if current:
        out.append(current)
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def _split(block: TextBlockRef) -> list[TextBlockRef]:
    if len(block.text) <= PASSAGE_CHARS:
        return [block]
    pieces, current = [], ""
    for sentence in _SENTENCE_END.split(block.text):
        while len(sentence) > PASSAGE_CHARS:  # no sentence end for too long: cut at a space
            cut = sentence.rfind(" ", 0, PASSAGE_CHARS)
            cut = cut if cut > PASSAGE_CHARS // 2 else PASSAGE_CHARS
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut])
            sentence = sentence[cut:].lstrip()
        if current and len(current) + len(sentence) + 1 > PASSAGE_CHARS:
            pieces.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return [block.model_copy(update={"text": p}) for p in pieces]


def _passage_title(title: str, block: TextBlockRef) -> str:
    where = ""
    if block.page is not None:
        where = f", page {block.page}"
    elif block.start_s is not None:
        where = f", {_clock(block.start_s)}–{_clock(block.end_s or block.start_s)}"
    origin = f" ({block.origin})" if block.origin else ""
    return f"{title}{origin}{where}"


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def add_locations(candidates: Sequence[Candidate], blocks: Sequence[TextBlockRef],
                  statuses: Sequence[ItemStatus]) -> None:
    """Where a candidate cites an item (`m#item=k`), cite the object key or URL too."""
    where = {f"{s.message_id}#item={s.index}": s.uri for s in statuses if s.uri}
    for block in blocks:
        where.setdefault(block.ref, block.location_ref)
    for candidate in candidates:
        extra = [where[s] for s in candidate.sources if s in where]
        if extra:
            candidate.sources = list(dict.fromkeys([*candidate.sources, *extra]))
