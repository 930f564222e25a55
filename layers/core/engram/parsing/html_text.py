"""HTML → the page's main text: headings and paragraphs kept, navigation, headers, footers,
sidebars, scripts and styles dropped. lxml (python-docx's own dependency) parses, because
it repairs the broken markup real pages are made of."""

from __future__ import annotations

import re

from engram.errors import ParseError
from engram.models.parsed import ParseResult, paragraphs_to_blocks
from engram.parsing.text import clean_lines, decode_text

NEVER_TEXT = {
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed",
    "button", "select", "option", "textarea", "input", "head",
}
CHROME = {"nav", "aside", "header", "footer", "menu", "dialog"}  # page furniture, not content
CHROME_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu",
                "menubar", "dialog", "alert"}
BLOCKS = {
    "p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "pre",
    "blockquote", "table", "tr", "figure", "figcaption", "address", "details", "summary",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "body", "form", "fieldset", "caption",
}
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)


def parse_html(data: bytes, *, origin: str = "") -> ParseResult:
    title, paragraphs = html_paragraphs(data)
    if title and (not paragraphs or paragraphs[0][0] != title):
        if paragraphs and paragraphs[0][1]:  # the title and the first heading: one block
            paragraphs[0] = (paragraphs[0][0], False)
        paragraphs.insert(0, (title, True))
    result = ParseResult(kind="html", blocks=paragraphs_to_blocks(paragraphs, origin=origin))
    if not result.blocks:
        result.warnings.append("the page has no readable text")
    return result


def html_to_text(html: str | bytes) -> str:
    """Main text of a page as paragraphs separated by blank lines (email bodies use this)."""
    _, paragraphs = html_paragraphs(html)
    return "\n\n".join(text for text, _ in paragraphs)


def html_paragraphs(html: str | bytes) -> tuple[str, list[tuple[str, bool]]]:
    """(title, [(paragraph, is_heading)]) of the page's main content."""
    import lxml.html
    from lxml import etree

    if isinstance(html, bytes):
        declared = META_CHARSET.search(html[:4096])
        html = decode_text(html, declared.group(1).decode("ascii") if declared else None)
    html = re.sub(r"^\s*<\?xml[^>]*\?>", "", html)  # lxml refuses str with an XML declaration
    if not html.strip():
        return "", []
    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"the HTML could not be read: {exc}") from exc
    title = clean_lines(" ".join(root.xpath("//title//text()")))
    _drop_furniture(root)
    return title, _paragraphs(_main_content(root))


def _drop_furniture(root) -> None:
    for element in list(root.iter()):
        if not isinstance(element.tag, str):  # comments, processing instructions
            if element.getparent() is not None:
                element.drop_tree()
            continue
        tag = element.tag.lower()
        inside_content = any(a.tag in ("article", "main") for a in element.iterancestors())
        if (
            tag in NEVER_TEXT
            or (tag in CHROME and not (tag in ("header", "footer") and inside_content))
            or (element.get("role") or "").lower() in CHROME_ROLES
            or element.get("aria-hidden") == "true"
            or element.get("hidden") is not None
            or re.search(r"display\s*:\s*none", element.get("style") or "")
        ):
            if element.getparent() is not None:
                element.drop_tree()


def _main_content(root) -> list:
    """<main> (or role=main) if the page marks one, else its <article>s, else the body."""
    for query in ("//main", "//*[@role='main']", "//article"):
        found = root.xpath(query)
        if found:
            return [el for el in found if not any(a in found for a in el.iterancestors())]
    body = root.find("body")
    return [body if body is not None else root]


def _paragraphs(roots: list) -> list[tuple[str, bool]]:
    from lxml import etree

    paragraphs: list[tuple[str, bool]] = []
    buffer: list[str] = []
    heading = False
    in_pre = 0

    def flush() -> None:
        nonlocal heading
        text = clean_lines("".join(buffer))
        if text:
            paragraphs.append((text, heading))
        buffer.clear()
        heading = False

    def add(text: str | None) -> None:
        # source line breaks are spaces, except in <pre>
        buffer.append((text or "") if in_pre else re.sub(r"\s+", " ", text or ""))

    for root in roots:
        for event, element in etree.iterwalk(root, events=("start", "end")):
            tag = element.tag.lower() if isinstance(element.tag, str) else ""
            if event == "start":
                if tag in BLOCKS:
                    flush()
                    heading = tag in HEADINGS
                in_pre += tag == "pre"
                if tag == "li":
                    buffer.append("- ")
                elif tag == "br":
                    buffer.append("\n")
                elif tag in ("td", "th") and element.getprevious() is not None:
                    buffer.append(" | ")
                add(element.text)
            else:
                in_pre -= tag == "pre"
                if tag in BLOCKS:
                    flush()
                if element is not root:
                    add(element.tail)
        flush()
    return paragraphs
