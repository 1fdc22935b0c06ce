"""Open-redirect fuzz: generated tokens and paths against the real click and pixel routes.

The property: the only redirect ever answered is a 302 to the URL registered for the message and
link index of a valid click token; everything else is the pixel (on /o/) or a 404. Cases: valid
tokens, mutated signatures, swapped link indexes, truncations and extensions, URL-encoding tricks,
`//evil`, `javascript:`, CR/LF, and registrations that hold unsafe URLs.

`make test` runs a short version; the long run is
    TRACKER_FUZZ_EXAMPLES=100000 .venv/bin/python -m pytest tests/unit/test_tracker_redirect_fuzz.py -s
which prints the number of cases tried.
"""
import asyncio
import base64
import os
from urllib.parse import quote, unquote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maillink_schemas import tracking_token as tt
from test_tracker_edge import GOOD, MESSAGES, RING, make

EXAMPLES = int(os.environ.get("TRACKER_FUZZ_EXAMPLES", "1500"))
EVIL_BITS = ["//evil.example", "javascript:alert(1)", "\r\nLocation: https://evil.example", "%0d%0a", "%2F%2Fevil",
             "/\\evil.example", "https:evil.example", "..%2f..%2f", "%00", "@evil.example", "?next=//evil", "#",
             "\u202e", "%E2%80%AE", "\\", "/", "%", " ", "\t", "A", "_", "-", "="]

# Every valid token and what it may redirect to (None: a valid token that must not redirect).
VALID: dict[str, str | None] = {}
for key, links in MESSAGES.items():
    for index in list(links) + [9, 65535]:
        good = links.get(index) if links is GOOD or key == "a" * 64 else None
        VALID[tt.mint(RING, key, "click", index)] = good
        VALID[tt.mint(RING, key, "click", index, sender_view=True)] = good
    VALID[tt.mint(RING, key, "open")] = None
BASES = sorted(VALID)


def swap_index(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[5:7] = index.to_bytes(2, "big")
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@st.composite
def token_texts(draw) -> str:
    base = draw(st.sampled_from(BASES))
    how = draw(st.sampled_from(["as is", "flip", "swap index", "truncate", "extend", "insert", "evil", "random",
                                "case", "encode"]))
    if how == "flip":
        i = draw(st.integers(0, len(base) - 1))
        return base[:i] + draw(st.sampled_from("AQgw09-_/%")) + base[i + 1:]
    if how == "swap index":
        return swap_index(base, draw(st.integers(0, 65535)))
    if how == "truncate":
        return base[: draw(st.integers(0, len(base) - 1))]
    if how == "extend":
        return base + draw(st.text(min_size=1, max_size=8))
    if how == "insert":
        i = draw(st.integers(0, len(base)))
        return base[:i] + draw(st.sampled_from(EVIL_BITS)) + base[i:]
    if how == "evil":
        return "".join(draw(st.lists(st.sampled_from(EVIL_BITS), min_size=1, max_size=5)))
    if how == "random":
        return draw(st.text(max_size=80))
    if how == "case":
        return base.swapcase()
    if how == "encode":
        return "".join(f"%{ord(c):02X}" if draw(st.booleans()) else c for c in base)
    return base


class Run:
    cases = 0
    redirects = 0


LOOP = asyncio.new_event_loop()
CLIENT, EDGE, _, PUBLISHER = make()
SEEN: list[str] = []
_click = EDGE.click


async def _recording_click(token, *args):
    SEEN.append(token)  # the token exactly as the server decoded it from the path
    return await _click(token, *args)


EDGE.click = _recording_click


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
          suppress_health_check=list(HealthCheck))
@given(text=token_texts(), endpoint=st.sampled_from(["/c/", "/o/", "/c//", "//c/", "/c/../c/"]),
       safe=st.sampled_from(["", "/", "/%", ":/?#[]@!$&'()*+,;=%", "%"]), method=st.sampled_from(["GET", "HEAD"]))
def test_no_redirect_except_to_the_registered_url_of_a_valid_click_token(text, endpoint, safe, method):
    Run.cases += 1
    SEEN.clear()
    path = endpoint + quote(text, safe=safe)
    try:
        response = LOOP.run_until_complete(CLIENT.request(method, path))
    except Exception as exc:  # noqa: BLE001 - httpx refusing to send a malformed URL is not an answer
        assert "URL" in type(exc).__name__ or "url" in str(exc).lower(), repr(exc)
        return
    assert response.status_code < 500, (path, response.status_code)
    if 300 <= response.status_code < 400:
        Run.redirects += 1
        assert response.status_code == 302, path
        [token] = SEEN
        assert token in VALID and VALID[token] is not None, (path, token)
        assert response.headers["location"] == VALID[token]
        assert VALID[token] in GOOD.values() or VALID[token] == MESSAGES["a" * 64][7]
    else:
        assert response.status_code in (200, 404, 405), (path, response.status_code)
        assert "location" not in response.headers
        if response.status_code == 200:
            assert unquote(path).startswith("/o/") and response.headers["content-type"] == "image/gif"


def test_zz_report_the_number_of_cases():
    # Runs after the property (file order); prints what it covered.
    print(f"\nopen-redirect fuzz: {Run.cases} cases, {Run.redirects} redirects, all to registered URLs of "
          f"valid tokens")
    assert Run.cases >= min(EXAMPLES, 100)
