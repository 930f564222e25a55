"""Images as words for the extractors: each becomes a turn "[image: <what it shows>; text
reading "..."]" in the voice of its message's speaker, which extraction turns into "The
user shared an image of ...". What it shows is a vision model's description (when one is
configured) and the text OCR read on it. The parse step stores these turns with the
messages, so the extractor reads them like any other turn."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from engram.extraction.context import clip
from engram.models.content import ItemStatus, TextBlockRef
from engram.models.domain import MessageRecord

IMAGE_DESCRIPTION_CHARS = 200  # OCR text quoted in an image's turn
IMAGE_VISION_CHARS = 300  # a vision model's description in an image's turn


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
    return clip(phrase, IMAGE_VISION_CHARS)


def _bracket_free(text: str) -> str:
    return " ".join(text.split()).replace("[", "(").replace("]", ")")
