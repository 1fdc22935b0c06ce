"""Human or machine: one pure function over what a request and the message's history show.

Each rule is its own small function that answers the name of its signal or None, so each has its
own test. The verdict is "machine" when any machine signal fired; the two image proxies are
signals too, but of a proxied open that is probably human (Gmail and Yahoo fetch the image when the
recipient opens the message; Google caches it, so only the first open is ever seen).

Where the rules come from (MISSION.md, "Opens are a weak signal"; issue 10):
- Apple Mail Privacy Protection fetches every image at delivery through Apple's egress ranges,
  whether or not the message is ever read: an MPP open says nothing about a human.
- Security gateways (Microsoft Safe Links, Proofpoint, Mimecast, Barracuda, Cisco) fetch links to
  scan them: seconds after delivery, every link at once, often without loading images, sometimes
  with a HEAD first, from their own networks and sometimes under their own user agent.
- The sender's own views are never classified: their tokens carry the sender-view flag and the
  tracker answers them without recording anything (see entrypoints/public.py).

Known limit, on purpose: a human whose client blocks images (Outlook's default) and who clicks
gets `click_without_open`. The issue counts it as a scanner sign; the stats show it by name.
"""
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from .networks import IPAddress, NetworkSet
from .user_agents import family

Kind = Literal["open", "click"]

# Signals of a proxied open that is probably human: they never make a request "machine" alone.
PROXY_SIGNALS = frozenset({"google_image_proxy", "yahoo_mail_proxy"})

# Substrings of user agents that link-rewriting gateways announce themselves with (case-insensitive).
REWRITER_AGENTS: tuple[tuple[str, str], ...] = (
    ("barracuda", "barracuda"),
    ("mimecast", "mimecast"),
    ("proofpoint", "proofpoint"),
    ("ironport", "cisco"),
    ("cisco", "cisco"),
    ("safelinks", "microsoft"),
    # Office apps probe a link before handing it to the browser. Not "ms-office" alone: Outlook for
    # Windows fetches images (a human open) under a user agent that contains it too.
    ("microsoft office existence discovery", "microsoft"),
)


@dataclass(frozen=True)
class Hit:
    """One request on a valid token, as the rules see it. `ip` is the full address, used here and
    nowhere else; what is stored is `network`."""

    kind: Kind
    method: str
    user_agent: str
    ip: IPAddress | None
    network: str
    at: datetime
    link_index: int = 0


@dataclass(frozen=True)
class Past:
    """What the tracker recorded for the message before this request."""

    kind: Kind | Literal["head"]
    at: datetime
    link_index: int = 0
    network: str = ""


@dataclass(frozen=True)
class Context:
    sent_at: datetime | None = None
    link_count: int = 0
    # None: the history could not be read (store down); the rules that need it then stay silent
    # rather than guess (an empty history would make every click one "without an open").
    history: tuple[Past, ...] | None = ()


@dataclass(frozen=True)
class Lists:
    apple: NetworkSet = field(default_factory=NetworkSet)
    rewriters: NetworkSet = field(default_factory=NetworkSet)


@dataclass(frozen=True)
class Windows:
    click_after_delivery_s: float = 10
    burst_s: float = 5
    head_s: float = 60


# --- rules on the request alone ---------------------------------------------------------------

def apple_mpp(hit: Hit, lists: Lists) -> str | None:
    return "apple_mpp" if lists.apple.lookup(hit.ip) else None


def google_image_proxy(hit: Hit, _: Lists) -> str | None:
    return "google_image_proxy" if "GoogleImageProxy" in hit.user_agent else None


def yahoo_mail_proxy(hit: Hit, _: Lists) -> str | None:
    return "yahoo_mail_proxy" if "YahooMailProxy" in hit.user_agent else None


def head_request(hit: Hit, _: Lists) -> str | None:
    return "head_request" if hit.method == "HEAD" else None


def rewriter_agent(hit: Hit, _: Lists) -> str | None:
    lowered = hit.user_agent.lower()
    for needle, vendor in REWRITER_AGENTS:
        if needle in lowered:
            return f"link_scanner_agent:{vendor}"
    return None


def rewriter_network(hit: Hit, lists: Lists) -> str | None:
    vendor = lists.rewriters.lookup(hit.ip)
    return f"link_scanner_network:{vendor}" if vendor else None


REQUEST_RULES: tuple[Callable[[Hit, Lists], str | None], ...] = (
    apple_mpp, google_image_proxy, yahoo_mail_proxy, head_request, rewriter_agent, rewriter_network)


# --- rules on the request in the message's history (clicks) -----------------------------------

def click_soon_after_delivery(hit: Hit, ctx: Context, w: Windows) -> str | None:
    if hit.kind != "click" or ctx.sent_at is None:
        return None
    return "click_soon_after_delivery" if (hit.at - ctx.sent_at).total_seconds() < w.click_after_delivery_s else None


def click_without_open(hit: Hit, ctx: Context, _: Windows) -> str | None:
    if hit.kind != "click" or ctx.history is None:
        return None
    opened = any(p.kind == "open" and p.at <= hit.at for p in ctx.history)
    return None if opened else "click_without_open"


def all_links_in_burst(hit: Hit, ctx: Context, w: Windows) -> str | None:
    """Every link of the message clicked within `burst_s` of this click (before or after it: the
    stats apply the rule in hindsight, over the whole history)."""
    if hit.kind != "click" or ctx.link_count < 2 or ctx.history is None:
        return None
    near = {p.link_index for p in ctx.history
            if p.kind == "click" and abs((p.at - hit.at).total_seconds()) <= w.burst_s}
    return "all_links_in_burst" if len(near | {hit.link_index}) >= ctx.link_count else None


def after_head(hit: Hit, ctx: Context, w: Windows) -> str | None:
    """A GET on the same token from the same network shortly after a HEAD on it: the scanner's follow-up."""
    if hit.method == "HEAD" or ctx.history is None:
        return None
    for p in ctx.history:
        if (p.kind == "head" and p.network == hit.network and p.link_index == hit.link_index
                and 0 <= (hit.at - p.at).total_seconds() <= w.head_s):
            return "after_head"
    return None


CONTEXT_RULES: tuple[Callable[[Hit, Context, Windows], str | None], ...] = (
    click_soon_after_delivery, click_without_open, all_links_in_burst, after_head)


@dataclass(frozen=True)
class Verdict:
    classification: Literal["human", "machine"]
    signals: tuple[str, ...]
    user_agent_family: str


def verdict_of(signals: list[str] | tuple[str, ...]) -> Literal["human", "machine"]:
    return "machine" if any(s not in PROXY_SIGNALS for s in signals) else "human"


def classify(hit: Hit, ctx: Context, lists: Lists, windows: Windows) -> Verdict:
    signals = [s for rule in REQUEST_RULES if (s := rule(hit, lists))]
    if hit.kind == "click":  # the history rules are about clicks (a pixel HEAD is never a link's)
        signals += [s for rule in CONTEXT_RULES if (s := rule(hit, ctx, windows))]
    return Verdict(verdict_of(signals), tuple(signals), family(hit.user_agent))
