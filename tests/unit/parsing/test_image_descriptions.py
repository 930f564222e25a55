"""Images read by OCR and, when a vision model is configured, described
(pipeline/content_reader.ContentReader with fake engines): the description in the image's turn
and so in the memory, and a describer failure as a warning, never the item's failure."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from engram.errors import CapabilityUnavailable, ImageDescriptionFailed
from engram.extraction.images import image_description, image_turns
from engram.extraction.rules.extractor import RuleBasedExtractor
from engram.models.content import ContentItem, ItemStatus
from engram.models.domain import MessageRecord, Role, Task
from engram.pipeline.content_reader import ContentReader, parse_items

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 20


class Objects:
    def __init__(self, files: dict[str, bytes]):
        self.files = files

    def get_bytes(self, key: str) -> bytes:
        return self.files[key]


class Tasks:
    def __init__(self):
        self.saved = 0

    def save(self, task: Task) -> None:
        self.saved += 1


class Ocr:
    name = "fake-ocr"

    def __init__(self, text: str):
        self.text = text

    def image_text(self, image: bytes) -> str:
        return self.text


class Describer:
    name = "fake-vision"

    def __init__(self, answer: str | BaseException):
        self.answer = answer
        self.seen: list[tuple[bytes, str]] = []

    def describe(self, image: bytes, content_type: str) -> str:
        self.seen.append((image, content_type))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def read(reader: ContentReader, data: bytes = PNG):
    """One image item through parse_items, then image_turns and the extractor."""
    task = Task(tenant_id="t", user_id="u")
    item = ContentItem(message_id="m1", index=1, type="image", name="bike.png", key="k")
    parsed = parse_items(reader, Objects({"k": data}), Tasks(), task, [item])
    message = MessageRecord(tenant_id="t", user_id="u", conversation_id="c",
                            message_id="m1", seq=0, role=Role.user, text="")
    turns = image_turns([message], parsed.blocks, task.items, parsed.descriptions)
    memories = [c.memory_value for c in RuleBasedExtractor().statements(turns)]
    return task.items[0], turns, memories


def test_the_description_and_the_ocr_text_make_the_memory():
    describer = Describer("A photo of a red bicycle leaning on a wall.")
    status, turns, memories = read(ContentReader(ocr=Ocr("Bike for sale"),
                                                 describer=describer))
    assert status.state == "completed" and status.warnings == []
    assert [t.text for t in turns] == [
        '[image: a photo of a red bicycle leaning on a wall; text reading "Bike for sale"]']
    assert memories == ['The user shared an image of a photo of a red bicycle leaning on a '
                        'wall; text reading "Bike for sale".']
    assert describer.seen == [(PNG, "image/png")]


def test_a_picture_without_text_is_described_alone():
    reader = ContentReader(ocr=Ocr(""), describer=Describer("The image shows a sunset."))
    status, turns, memories = read(reader)
    assert status.state == "completed" and status.warnings == ["OCR found no text in the image"]
    assert memories == ["The user shared an image of a sunset."]


@pytest.mark.parametrize("failure", [
    ImageDescriptionFailed("the vision endpoint answered HTTP 500"),
    ImageDescriptionFailed("the vision endpoint timed out"),
    RuntimeError("a bug in a describer")])
def test_a_failed_description_leaves_the_ocr_text_and_a_warning(failure):
    status, turns, memories = read(ContentReader(ocr=Ocr("Bike for sale"),
                                                 describer=Describer(failure)))
    assert status.state == "completed" and status.error is None
    (warning,) = status.warnings
    assert warning.startswith("image description unavailable: ")
    assert memories == ['The user shared an image of text reading "Bike for sale".']


def test_without_a_describer_nothing_changes():
    status, turns, memories = read(ContentReader(ocr=Ocr("Bike for sale")))
    assert status.state == "completed" and status.warnings == []
    assert memories == ['The user shared an image of text reading "Bike for sale".']


def test_no_ocr_engine_the_description_alone_and_both_missing_fail():
    status, _, memories = read(ContentReader(ocr=None, describer=Describer("a cat")))
    assert status.state == "completed"
    assert status.warnings == ["image text recognition unavailable: no OCR engine configured"]
    assert memories == ["The user shared an image of a cat."]
    status, _, _ = read(ContentReader(ocr=None, describer=Describer(
        ImageDescriptionFailed("the vision endpoint timed out"))))
    assert status.state == "failed"
    assert "no OCR engine" in status.error and "timed out" in status.error


def test_limits_and_formats_still_come_first():
    describer = Describer("a cat")
    status, _, _ = read(ContentReader(ocr=Ocr("x"), describer=describer), b"%PDF-1.4 x")
    assert status.state == "failed" and "not an image" in status.error
    assert describer.seen == []


def test_other_formats_reach_the_model_as_png():
    bmp = io.BytesIO()
    Image.new("RGB", (3, 3), "blue").save(bmp, format="BMP")
    describer = Describer("a blue square")
    read(ContentReader(ocr=Ocr(""), describer=describer), bmp.getvalue())
    ((image, content_type),) = describer.seen
    assert content_type == "image/png" and image.startswith(b"\x89PNG")


@pytest.mark.parametrize("said, phrase", [
    ("A red bicycle leaning on a wall.", "a red bicycle leaning on a wall"),
    ("This image shows two dogs [playing] in snow.", "two dogs (playing) in snow"),
    ("An image of the Eiffel Tower at night", "the Eiffel Tower at night"),
    ('"Screenshot of a login form."', "screenshot of a login form"),
    ("MemOS architecture diagram", "MemOS architecture diagram"),
])
def test_the_models_sentence_reads_after_shared_an_image_of(said, phrase):
    assert image_description("", "x.png", said) == phrase


def test_long_descriptions_are_clipped():
    text = image_description("", "", "a " + "very " * 100 + "long thing")
    assert len(text) <= 300 and text.endswith("…")


def test_image_turns_without_descriptions_as_before():
    status = ItemStatus(message_id="m1", index=1, type="image", state="completed",
                        kind="image")
    message = MessageRecord(tenant_id="t", user_id="u", conversation_id="c",
                            message_id="m1", seq=0, role=Role.user, text="Look")
    assert image_turns([message], [], [status])[1].text == \
        "[image: something with no text in it]"


def test_no_ocr_and_no_describer_is_unavailable_as_before():
    with pytest.raises(CapabilityUnavailable):
        ContentReader(ocr=None).parse(Objects({"k": PNG}), ContentItem(
            message_id="m", index=0, type="image", key="k"))
