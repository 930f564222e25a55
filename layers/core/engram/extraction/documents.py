"""Documents, audio and video in the extract step: each parsed item becomes a memory that
it was shared plus one memory per passage of its text (page or time span in the title and
in `sources`); long text on an image is kept as passages too. add_locations makes every
memory that cites an item cite its object key or URL as well."""

from __future__ import annotations

import re
from collections.abc import Sequence

from engram.extraction.context import clip, detect_language
from engram.models.content import ItemStatus, TextBlockRef
from engram.models.domain import Candidate, MemoryType, MessageRecord, Role, Task

PASSAGE_CHARS = 900  # a document passage: long enough to say something, short to embed well
IMAGE_TEXT_AS_PASSAGES = 300  # OCR text longer than this is also kept as passages
CONFIDENCE_DOCUMENT = 0.9
KIND_NAMES = {"pdf": "PDF document", "doc": "document", "html": "web page",
              "email": "email", "audio": "audio recording", "video": "video",
              "text": "text file", "image": "image"}


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
    about = f', which begins: "{clip(first, 160)}"' if first else ""
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
