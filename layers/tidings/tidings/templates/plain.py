"""The plain-text part of an e-mail, derived from its rendered HTML (the one source a receipt has).

Blocks (paragraphs, rows, list items, headings, breaks) become lines, table cells are separated by
tabs, a link keeps its address in brackets, and ``head``, ``style`` and ``script`` are dropped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {"p", "div", "tr", "table", "thead", "tbody", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "section"}
)
_DROPPED = frozenset({"head", "style", "script", "title"})
_SPACES = re.compile(r"[ \r\f\v]+")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.dropped = 0
        self.links: list[str | None] = []
        self.cell = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self.dropped += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS or tag == "li":
            self.parts.append("\n")
            self.cell = 0
            if tag == "li":
                self.parts.append("- ")
        elif tag in ("td", "th"):
            if self.cell:
                self.parts.append("\t")
            self.cell += 1
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self.dropped = max(0, self.dropped - 1)
        elif tag in _BLOCKS or tag == "li":
            self.parts.append("\n")
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith("#"):
                self.parts.append(f" ({href})")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        if not self.dropped:
            self.parts.append(data.replace("\n", " ").replace("\t", " "))


def html_to_text(html: str) -> str:
    """``html`` as plain text: one line per block, no markup, entities decoded."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = [_SPACES.sub(" ", line).strip(" ") for line in "".join(parser.parts).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
