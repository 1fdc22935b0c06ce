"""Right-to-left bodies: which blocks are mostly Arabic, Hebrew, Persian or Urdu, marked with
dir="rtl" and the language where the letters tell it. Pure.

"Mostly" counts strong letters only: URLs and e-mail addresses are left out (an English product
name in an Arabic sentence stays Arabic; a URL never flips a paragraph). Arabic, Persian and Urdu
share one script, so the language comes from the letters only one of them uses: Urdu's retroflex
letters and ے ں ہ ھ, Persian's پ چ ژ گ with Farsi yeh/keheh; otherwise Arabic. Hebrew has its own
block.
"""
import re
from html.parser import HTMLParser

_RTL = re.compile(r"[\u0590-\u05FF\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF]")
_LTR = re.compile(r"[A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF]")
_HEBREW = re.compile(r"[\u0590-\u05FF\uFB1D-\uFB4F]")
_URDU = re.compile(r"[\u0679\u0688\u0691\u06BA\u06BE\u06C1\u06D2\u06D3]")
_PERSIAN = re.compile(r"[\u067E\u0686\u0698\u06AF\u06A9\u06CC]")
_SKIP = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+")
BLOCKS = frozenset({"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "td", "th", "pre"})


def direction(text: str) -> str | None:
    """'rtl', 'ltr', or None when the text has no strong letters."""
    text = _SKIP.sub(" ", text)
    rtl, ltr = len(_RTL.findall(text)), len(_LTR.findall(text))
    if not rtl and not ltr:
        return None
    return "rtl" if rtl > ltr else "ltr"


def language(text: str) -> str | None:
    if _HEBREW.search(text):
        return "he"
    if _URDU.search(text):
        return "ur"
    if _PERSIAN.search(text):
        return "fa"
    return "ar" if _RTL.search(text) else None


class _Blocks(HTMLParser):
    """Splits HTML into tokens and collects each block's own text (nested blocks count for themselves)."""

    def __init__(self, also=None) -> None:
        super().__init__(convert_charrefs=True)
        self.also = also   # another listener to the same parse events (html.TextCollector)
        self.tokens: list[str] = []
        self.stack: list[tuple[str, int, list[str]]] = []  # (tag, token index, text parts)
        self.blocks: list[tuple[int, str]] = []            # (token index of the start tag, text)
        self.loose: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if self.also:
            self.also.starttag(tag, attrs)
        self.tokens.append(self.get_starttag_text())
        if tag in BLOCKS:
            self.stack.append((tag, len(self.tokens) - 1, []))

    def handle_startendtag(self, tag, attrs) -> None:
        if self.also:
            self.also.starttag(tag, attrs)
            self.also.endtag(tag)
        self.tokens.append(self.get_starttag_text())

    def handle_endtag(self, tag) -> None:
        if self.also:
            self.also.endtag(tag)
        self.tokens.append(f"</{tag}>")
        if tag in BLOCKS and any(t == tag for t, _, _ in self.stack):
            while self.stack:
                t, index, parts = self.stack.pop()
                self.blocks.append((index, "".join(parts)))
                if t == tag:
                    break

    def handle_data(self, data) -> None:
        if self.also:
            self.also.data(data)
        self.tokens.append(_escape(data))
        (self.stack[-1][2] if self.stack else self.loose).append(data)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mark(html: str, also=None) -> tuple[str, str | None]:
    """The HTML with RTL blocks marked, and the whole body's direction ('rtl' wraps it in a div).
    `also` is told the same parse events (so the text alternative needs no second parse)."""
    parser = _Blocks(also)
    parser.feed(html)
    parser.close()
    for tag, index, parts in reversed(parser.stack):  # unclosed blocks still count
        parser.blocks.append((index, "".join(parts)))
    whole = direction(" ".join(t for _, t in parser.blocks) + " " + " ".join(parser.loose))
    tokens = parser.tokens
    for index, text in parser.blocks:
        own = direction(text)
        if own == "rtl":
            tokens[index] = _with_attrs(tokens[index], "rtl", language(text))
        elif own == "ltr" and whole == "rtl":
            tokens[index] = _with_attrs(tokens[index], "ltr", None)
    out = "".join(tokens)
    if whole == "rtl":
        lang = language(" ".join(t for _, t in parser.blocks) + " ".join(parser.loose))
        out = f'<div dir="rtl"{f" lang={chr(34)}{lang}{chr(34)}" if lang else ""}>{out}</div>'
    return out, whole


def _with_attrs(start_tag: str, dir_: str, lang: str | None) -> str:
    # The sanitiser keeps an author's own dir= (it is allowed); an explicit choice wins over ours.
    if re.search(r"\sdir\s*=", start_tag):
        return start_tag
    extra = f' dir="{dir_}"' + (f' lang="{lang}"' if lang else "")
    end = -2 if start_tag.endswith("/>") else -1
    return start_tag[:end] + extra + start_tag[end:]
