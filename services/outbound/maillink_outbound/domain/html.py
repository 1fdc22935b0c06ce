"""HTML bodies: sanitising (nh3) and the plain-text alternative generated from the HTML. Pure.

nh3 (Rust's ammonia) removes script and style elements, every on* event handler and any URL whose
scheme is not allowed (javascript: included). cid: is allowed so inline images keep working.
"""
import re
from html.parser import HTMLParser

import nh3

_ATTRIBUTES = {k: set(v) for k, v in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES.setdefault("img", set()).update({"src", "alt", "width", "height"})
# No style attribute: CSS can carry url(javascript:...) and expression() for older clients.
_ATTRIBUTES["*"] = {"dir", "lang", "title", "align"}
_SCHEMES = {"http", "https", "mailto", "tel", "cid"}


def sanitise(html: str) -> str:
    return nh3.clean(html, attributes=_ATTRIBUTES, url_schemes=_SCHEMES, link_rel="noopener noreferrer",
                     strip_comments=True)


_BREAK_BEFORE = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "pre", "hr"}
_SPACES = re.compile(r"[ \t\u00a0]+")
_LINES = re.compile(r"\n{3,}")


class TextCollector:
    """Builds the text alternative from parse events; fed by `text_from_html`, or by rtl.mark's own
    parse (one parse of the body for both: the parse is a good part of building a message)."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.href: list[str | None] = []
        self.skip = 0

    def starttag(self, tag, attrs) -> None:
        if tag in ("style", "script", "head", "title"):
            self.skip += 1
        if tag in _BREAK_BEFORE:
            self.out.append("\n\n" if tag in ("p", "h1", "h2", "h3", "blockquote") else "\n")
        if tag == "li":
            self.out.append("- ")
        if tag == "a":
            self.href.append(dict(attrs).get("href"))
        if tag == "img" and (alt := dict(attrs).get("alt")):
            self.out.append(f"[{alt}]")

    def endtag(self, tag) -> None:
        if tag in ("style", "script", "head", "title"):
            self.skip = max(0, self.skip - 1)
        if tag == "a" and self.href:
            href = self.href.pop()
            # The text part carries the original URL (never a tracked one): readers see where it goes.
            if href and not href.startswith(("cid:", "#")):
                target = href.removeprefix("mailto:")
                if target not in (self.out[-1] if self.out else ""):
                    self.out.append(f" ({target})")

    def data(self, data) -> None:
        if not self.skip:
            self.out.append(_SPACES.sub(" ", data.replace("\n", " ")))

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self.out).split("\n")]
        return _LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"


class _Text(HTMLParser):
    def __init__(self, sink: TextCollector) -> None:
        super().__init__(convert_charrefs=True)
        self.sink = sink

    def handle_starttag(self, tag, attrs) -> None:
        self.sink.starttag(tag, attrs)

    def handle_endtag(self, tag) -> None:
        self.sink.endtag(tag)

    def handle_data(self, data) -> None:
        self.sink.data(data)


def text_from_html(html: str) -> str:
    sink = TextCollector()
    parser = _Text(sink)
    parser.feed(html)
    parser.close()
    return sink.text()
