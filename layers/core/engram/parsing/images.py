"""Images: the text on them, read by the OCR port. (What an image shows — a vision
model's description — is the pipeline's business, not this module's; `vision_ready_image`
only puts the bytes in a format such models take.)"""

from __future__ import annotations

from io import BytesIO

from engram.errors import CapabilityUnavailable, ParseError
from engram.models.parsed import ParseResult, paragraphs_to_blocks
from engram.parsing.text import clean_lines, split_paragraphs
from engram.ports import Ocr

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"
GIF = (b"GIF87a", b"GIF89a")


def parse_image(data: bytes, *, ocr: Ocr | None, origin: str = "") -> ParseResult:
    if ocr is None:
        raise CapabilityUnavailable("image text recognition unavailable: no OCR engine configured")
    text = clean_lines(ocr.image_text(ocr_ready_image(data)))
    result = ParseResult(
        kind="image", blocks=paragraphs_to_blocks(split_paragraphs(text), origin=origin)
    )
    if not result.blocks:
        result.warnings.append("OCR found no text in the image")
    return result


def ocr_ready_image(data: bytes, *, pil_image=None) -> bytes:
    """PNG or JPEG bytes as they are; anything else (GIF, WebP, TIFF, JPEG 2000 from a
    PDF…) re-encoded as PNG, the format every OCR engine here reads."""
    if data.startswith((PNG, JPEG)):
        return data
    from PIL import Image, UnidentifiedImageError

    try:
        image = pil_image or Image.open(BytesIO(data))
        if image.mode not in ("1", "L", "RGB", "RGBA"):
            image = image.convert("RGB")
        out = BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ParseError(f"the image could not be decoded: {exc}") from exc


def vision_ready_image(data: bytes) -> tuple[bytes, str]:
    """(bytes, MIME type) in a format OpenAI-compatible vision models accept: PNG, JPEG,
    GIF and WebP as they are, anything else (BMP, TIFF…) re-encoded as PNG."""
    if data.startswith(PNG):
        return data, "image/png"
    if data.startswith(JPEG):
        return data, "image/jpeg"
    if data.startswith(GIF):
        return data, "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return data, "image/webp"
    return ocr_ready_image(data), "image/png"
