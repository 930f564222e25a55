"""Real files for parsing tests, made here so no binary fixture is checked in: PDFs (text
layer, scanned page, many pages), PNGs of text, DOCX, legacy DOC, HTML, .eml, WAV speech.

Every generator returns bytes. The PDF, DOC and image writers need nothing outside the
venv (Pillow renders text, with DejaVu Sans when Debian's fonts-dejavu-core is there);
`speech_wav` needs Debian's espeak-ng and returns None without it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from io import BytesIO
from pathlib import Path

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

# --- images --------------------------------------------------------------------------------


def text_image(lines: list[str], *, size: int = 36, fmt: str = "PNG", margin: int = 40):
    """Black text on white, at a size tesseract reads reliably. Returns (bytes, PIL image)."""
    from PIL import Image, ImageDraw, ImageFont

    font = (
        ImageFont.truetype(str(DEJAVU), size) if DEJAVU.exists()
        else ImageFont.load_default(size=size)
    )
    line_height = int(size * 1.5)
    width = max(int(font.getlength(line)) for line in lines) + 2 * margin
    image = Image.new("L", (width, line_height * len(lines) + 2 * margin), 255)
    draw = ImageDraw.Draw(image)
    for n, line in enumerate(lines):
        draw.text((margin, margin + n * line_height), line, font=font, fill=0)
    out = BytesIO()
    image.save(out, format=fmt)
    return out.getvalue(), image


def text_png(lines: list[str], **kwargs) -> bytes:
    return text_image(lines, **kwargs)[0]


# --- PDF -----------------------------------------------------------------------------------


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def text_page(lines: list[str]) -> dict:
    """A page whose text is drawn in Helvetica (a standard Type1 font: no font file needed)."""
    ops = ["BT", "/F1 14 Tf", "72 720 Td", "18 TL"]
    for line in lines:
        ops += [f"{_pdf_string(line)} Tj", "T*"]
    ops.append("ET")
    return {"content": "\n".join(ops).encode("latin-1")}


def scanned_page(lines: list[str]) -> dict:
    """A page that is only a picture of text (a scan): no text layer at all."""
    _, image = text_image(lines, size=40)
    width, height = image.size
    scale = 500 / width  # draw it 500 pt wide, whatever its pixel size
    drawn = f"q {500:.2f} 0 0 {height * scale:.2f} 56 {740 - height * scale:.2f} cm /Im1 Do Q"
    return {
        "content": drawn.encode(),
        "image": {"width": width, "height": height, "gray": image.tobytes()},
    }


def blank_page() -> dict:
    return {"content": b""}


def pdf(pages: list[dict]) -> bytes:
    """A minimal valid PDF 1.4 written by hand: catalog, page tree, Helvetica, one content
    stream per page and a Flate-compressed grey image XObject for scanned pages."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    def stream(header: str, data: bytes) -> bytes:
        return f"<< {header} /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream"

    catalog = add(b"")  # filled in once the page tree's number is known
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    page_ids = []
    tree = len(objects) + 1 + 3 * len(pages)  # after every page's objects
    for page in pages:
        content = add(stream("", page["content"]))
        resources = f"/Font << /F1 {font} 0 R >>"
        image = page.get("image")
        if image:
            pixels = zlib.compress(image["gray"])
            xobject = add(stream(
                f"/Type /XObject /Subtype /Image /Width {image['width']} "
                f"/Height {image['height']} /ColorSpace /DeviceGray /BitsPerComponent 8 "
                "/Filter /FlateDecode", pixels))
            resources += f" /XObject << /Im1 {xobject} 0 R >>"
        else:
            add(b"null")  # keeps three objects per page, so the tree's number is known
        page_ids.append(add(
            f"<< /Type /Page /Parent {tree} 0 R /MediaBox [0 0 612 792] "
            f"/Resources << {resources} >> /Contents {content} 0 R >>".encode()))
    kids = " ".join(f"{n} 0 R" for n in page_ids)
    assert add(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode()) == tree
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {tree} 0 R >>".encode()

    out = BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R >>\n"
              f"startxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


PAGE2_TEXT = ["Quarterly report for the Falcon project.", "The launch moved to March 14."]
SCANNED_TEXT = ["Invoice number 4711", "Total due 250 EUR"]


def pdf_text_on_page_two() -> bytes:
    """Three pages; only page 2 has text."""
    return pdf([blank_page(), text_page(PAGE2_TEXT), blank_page()])


def pdf_scanned() -> bytes:
    """Page 1 has a text layer; page 2 is a scan (an image of text, nothing else)."""
    return pdf([text_page(["Cover letter from Acme Corp."]), scanned_page(SCANNED_TEXT)])


def pdf_pages(count: int) -> bytes:
    return pdf([text_page([f"Page {n}"]) for n in range(1, count + 1)])


# --- Word ----------------------------------------------------------------------------------


def docx_document() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Travel preferences", level=1)
    document.add_paragraph("Alice prefers window seats and vegetarian meals.")
    table = document.add_table(rows=2, cols=2)
    cells = [("Airline", "Seat"), ("Lufthansa", "12A")]
    for row, (left, right) in zip(table.rows, cells, strict=True):
        row.cells[0].text, row.cells[1].text = left, right
    document.add_heading("Loyalty", level=2)
    document.add_paragraph("Frequent flyer number: LH-99812.")
    out = BytesIO()
    document.save(out)
    return out.getvalue()


def legacy_doc(paragraphs: list[str]) -> bytes:
    """A Word 97 .doc as catdoc reads it: an OLE compound file holding a WordDocument
    stream whose FIB points (fcMin, fcMac) at 8-bit text, '\\r' ending each paragraph."""
    text = "\r".join(paragraphs).encode("cp1252") + b"\r"
    fib = bytearray(1024)
    struct.pack_into("<HH", fib, 0, 0xA5EC, 0x00C1)  # wIdent, nFib (Word 97)
    struct.pack_into("<II", fib, 24, 1024, 1024 + len(text))  # fcMin, fcMac
    word = bytes(fib) + text
    word += b"\x00" * (4096 + 512 - len(word) % 512)  # ≥ 4096: a regular, not a mini, stream
    return _compound_file(b"WordDocument", word)


def _compound_file(name: bytes, data: bytes) -> bytes:
    """An OLE2 / CFB v3 file with one stream: FAT in sector 0, directory in 1, data after."""
    sector = 512
    free, end, fat_sect, nostream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    data_sectors = len(data) // sector
    fat = [fat_sect, end] + [2 + i + 1 for i in range(data_sectors - 1)] + [end]
    fat += [free] * (128 - len(fat))
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    # directory/FAT sector counts, first directory sector, mini stream cutoff, no mini FAT,
    # no DIFAT sectors; then the 109 DIFAT slots in the header: the FAT is sector 0
    struct.pack_into("<IIIIIIIII", header, 40, 0, 1, 1, 0, 4096, end, 0, end, 0)
    header[76:512] = struct.pack("<I", 0) + b"\xff" * 432

    def entry(entry_name: str, kind: int, child: int, start: int, size: int) -> bytes:
        encoded = entry_name.encode("utf-16-le") + b"\x00\x00" if entry_name else b""
        raw = bytearray(128)
        raw[: len(encoded)] = encoded
        struct.pack_into("<HBBIII", raw, 64, len(encoded), kind, 1, nostream, nostream, child)
        struct.pack_into("<II", raw, 116, start, size)
        return bytes(raw)

    directory = (
        entry("Root Entry", 5, 1, end, 0)
        + entry(name.decode(), 2, nostream, 2, len(data))
        + _empty_entry() * 2  # a directory sector holds four entries
    )
    return bytes(header) + struct.pack("<128I", *fat) + directory + data


def _empty_entry() -> bytes:
    raw = bytearray(128)
    struct.pack_into("<III", raw, 68, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    return bytes(raw)


# --- HTML and email ------------------------------------------------------------------------

HTML_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Lisbon trip notes</title>
<style>body { font-family: sans-serif }</style><script>track('visit')</script></head>
<body>
<header><a href="/">Home</a> <a href="/blog">Blog</a> <a href="/login">Sign in</a></header>
<nav><ul><li>Recipes</li><li>Travel</li><li>Contact</li></ul></nav>
<main>
  <h1>Three days in Lisbon</h1>
  <p>We stayed in <b>Alfama</b>, two streets from the Miradouro de Santa Luzia.</p>
  <h2>Food</h2>
  <p>The best pastel de nata was at Manteigaria, caf\xc3\xa9 included.</p>
  <ul><li>Tram 28 early in the morning</li><li>Bel\xc3\xa9m on day two</li></ul>
</main>
<aside>Related posts: Porto in winter</aside>
<footer>Copyright 2024 Example Blog. All rights reserved.</footer>
</body></html>
"""


def eml_with_pdf_attachment(attachment: bytes | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "Carol Diaz <carol@example.com>"
    message["To"] = "Alice Smith <alice@example.com>"
    message["Subject"] = "Falcon project report"
    message["Date"] = format_datetime(datetime(2025, 3, 3, 9, 30, tzinfo=UTC))
    message.set_content("Hi Alice,\n\nthe quarterly report is attached.\n\nCarol\n")
    message.add_alternative(
        "<html><body><p>Hi Alice,</p><p>the <b>quarterly report</b> is attached.</p>"
        "</body></html>", subtype="html")
    message.add_attachment(
        attachment if attachment is not None else pdf_text_on_page_two(),
        maintype="application", subtype="pdf", filename="report.pdf")
    return message.as_bytes()


# --- audio ---------------------------------------------------------------------------------


def speech_wav(text: str, *, words_per_minute: int = 120) -> bytes | None:
    """Synthetic speech (espeak-ng, US English voice) as WAV; None without espeak-ng."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        subprocess.run([espeak, "-v", "en-us", "-s", str(words_per_minute), "-w", out.name, text],
                       check=True, capture_output=True, timeout=60)
        return Path(out.name).read_bytes()


def encoded_media(wav: bytes | None, fmt: str) -> bytes | None:
    """WAV → "mp3" audio, or "mp4" video (a black picture, the speech as AAC); "mp4-silent"
    is a video with no audio track. None without ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    picture = ["-f", "lavfi", "-i", "color=c=black:s=64x64:r=5:d=10"]
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.wav"), Path(folder, f"out.{fmt.split('-')[0]}")
        source.write_bytes(wav or b"")
        args = {
            "mp3": ["-i", str(source), "-c:a", "libmp3lame", "-b:a", "64k"],
            "mp4": [*picture, "-i", str(source), "-c:v", "mpeg4", "-c:a", "aac", "-shortest"],
            "mp4-silent": [*picture, "-c:v", "mpeg4"],
        }[fmt]
        subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", *args, str(target)],
                       check=True, capture_output=True, timeout=60)
        return target.read_bytes()
