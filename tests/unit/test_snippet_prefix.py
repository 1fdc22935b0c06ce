"""The snippet is read from prefixes of the body (mime._snippet_of); it must equal what cleaning
the whole body gives, for any body: whitespace runs and control bytes across the prefix's end,
tags cut by it, bodies shorter and far longer than the snippet."""
from hypothesis import given, settings, strategies as st

from maillink_schemas.mime import _TAGS, SNIPPET_CHARS, _snippet
from maillink_schemas.mime_headers import CONTROL, clean

# Few distinct characters, so runs of spaces, control bytes and tags are common.
ALPHABET = st.sampled_from(list("ab <>/\t\r\n\x01\x0b\x7fé") + ["<p>", "</div>", "   ", "\x00\n", "word "])
BODY = st.lists(ALPHABET, max_size=3000).map("".join)


def reference(plain: list[str] | None, html: list[str] | None) -> str:
    text = " ".join(plain or [])
    if not text.strip() and html:
        text = _TAGS.sub(" ", " ".join(html))
    return CONTROL.sub("", clean(text))[:SNIPPET_CHARS]


@settings(max_examples=400, deadline=None)
@given(st.lists(BODY, max_size=3), st.lists(BODY, max_size=3))
def test_snippet_equals_cleaning_the_whole_body(plain, html):
    assert _snippet(plain, html) == reference(plain, html)


def test_snippet_of_long_bodies():
    for body in ["x" * 10 + " \x01 " * 5000 + "y" * 1000, "<" + "a" * 5000 + ">tail " * 200, "\x01" * 100_000 + "z"]:
        for plain, html in (([body], None), ([" "], [body])):
            assert _snippet(plain, html) == reference(plain, html)
