"""Which registered URLs the click endpoint may redirect to. Checked when a registration arrives
and again before every redirect, so not even a bad record in the store can make an open redirect
or a header injection."""
from urllib.parse import urlsplit

MAX_URL = 4096


def safe_target(url: object) -> str | None:
    """The URL itself when it is an absolute http(s) URL with a host, printable ASCII only (no space,
    CR, LF or other control character: it becomes a Location header), no backslash (browsers read
    `\\` as `/`), and no user:password@ part (a classic way to dress up a host); otherwise None.
    Outbound percent-encodes non-ASCII before registering."""
    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL:
        return None
    if any(not 0x21 <= ord(c) <= 0x7E for c in url) or "\\" in url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not url[: len(parts.scheme) + 3].lower() == f"{parts.scheme}://":
        return None
    if not host or "@" in parts.netloc:
        return None
    return url
