"""Tracking injection into the HTML part: an open pixel, and every http(s) link rewritten to a
signed tracker URL. Pure; the URL format is the tracker's, reached through one seam
(adapters/tracker_urls.py), passed in as `urls`.

Left alone, on purpose: the text part (it is generated from the untracked HTML), mailto: and
other non-http links, and the unsubscribe link (a rewritten one would count an opt-out as a click
and break one-click unsubscribe for filters that look at the visible URL). The unsubscribe link
is the one whose URL or text says unsubscribe / opt out.
"""
import html as htmllib
import re
from collections.abc import Callable
from dataclasses import dataclass

from maillink_schemas.tracking import TrackedLink

_A_HREF = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)("[^>]*>)(.*?)(</a>)', re.IGNORECASE | re.DOTALL)
_UNSUBSCRIBE = re.compile(r"unsubscribe|opt[-_ ]?out|abmelden|d[ée]sinscri|darse de baja", re.IGNORECASE)


@dataclass(frozen=True)
class TrackerUrls:
    click: Callable[[int], str]   # link index -> tracker URL
    pixel: str


def inject(html: str, urls: TrackerUrls) -> tuple[str, list[TrackedLink]]:
    links: list[TrackedLink] = []

    def rewrite(m: re.Match) -> str:
        url = htmllib.unescape(m.group(2))
        if not url.lower().startswith(("http://", "https://")) or _UNSUBSCRIBE.search(url + " " + m.group(4)):
            return m.group(0)
        index = len(links)
        links.append(TrackedLink(index=index, url=url))
        return m.group(1) + htmllib.escape(urls.click(index)) + m.group(3) + m.group(4) + m.group(5)

    tracked = _A_HREF.sub(rewrite, html)
    pixel = f'<img src="{htmllib.escape(urls.pixel)}" width="1" height="1" alt="" style="display:none">'
    at = tracked.lower().rfind("</body>")
    return (tracked[:at] + pixel + tracked[at:] if at >= 0 else tracked + pixel), links
