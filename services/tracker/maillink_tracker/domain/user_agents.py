"""The user agent's family: the only part of the user agent an event keeps."""
from functools import lru_cache

# (substring, family), first match wins. Proxies and known machines first: their strings also
# contain a browser's name (Gmail's proxy claims to be Firefox 11).
_FAMILIES: tuple[tuple[str, str], ...] = (
    ("GoogleImageProxy", "GoogleImageProxy"),
    ("YahooMailProxy", "YahooMailProxy"),
    ("Barracuda", "Barracuda"),
    ("Mimecast", "Mimecast"),
    ("Proofpoint", "Proofpoint"),
    ("IronPort", "Cisco"),
    ("Cisco", "Cisco"),
    ("Outlook", "Outlook"),  # before ms-office: Outlook for Windows names both
    ("ms-office", "MicrosoftOffice"),
    ("Microsoft Office", "MicrosoftOffice"),
    ("Thunderbird", "Thunderbird"),
    ("HeadlessChrome", "HeadlessChrome"),
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chrome"),
    ("Version/", "Safari"),
    ("AppleWebKit/", "AppleMail"),  # Apple Mail sends a bare WebKit string without Version/
    ("curl/", "curl"),
    ("python-requests", "python-requests"),
    ("Wget", "Wget"),
)


@lru_cache(maxsize=4096)
def family(user_agent: str) -> str:
    if not user_agent:
        return "none"
    for needle, name in _FAMILIES:
        if needle in user_agent:
            return name
    if user_agent.strip() == "Mozilla/5.0":
        return "Mozilla"  # what Apple's MPP proxy sends
    return "other"
