"""Machine or human: one test per rule, with user-agent strings real clients send."""
import ipaddress
from datetime import datetime, timedelta, timezone

import pytest

from maillink_tracker.domain import classify as c
from maillink_tracker.domain.networks import NetworkSet, anonymise, load_apple_egress, load_named_networks, parse_ip
from maillink_tracker.domain.redirects import safe_target
from maillink_tracker.domain.stats import Recorded, summarise
from maillink_tracker.domain.user_agents import family
from maillink_tracker.settings import DATA

# Real user agents, as these clients and proxies send them.
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
APPLE_MAIL = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
OUTLOOK_WINDOWS = ("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E; "
                   "Microsoft Outlook 16.0.5122; ms-office; MSOffice 16)")
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
APPLE_MPP = "Mozilla/5.0"  # Apple's MPP proxy sends only this
BARRACUDA = "Barracuda Sentinel (EE)"
OFFICE_DISCOVERY = "Microsoft Office Existence Discovery"

LISTS = c.Lists(apple=load_apple_egress(DATA / "apple-egress-sample.csv"),
                rewriters=load_named_networks(DATA / "link-rewriter-networks.txt"))
W = c.Windows(click_after_delivery_s=10, burst_s=5, head_s=60)
SENT = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)
LATER = SENT + timedelta(hours=2)
HOME = "198.51.100.23"


def hit(kind="open", ua=CHROME, ip=HOME, at=LATER, method="GET", link=0):
    address = parse_ip(ip)
    return c.Hit(kind, method, ua, address, anonymise(address), at, link)


def opened_before(at=LATER - timedelta(minutes=5)):
    return (c.Past("open", at, 0, "198.51.100.0/24"),)


def run(h, ctx=c.Context(sent_at=SENT, link_count=3, history=opened_before())):
    return c.classify(h, ctx, LISTS, W)


def test_a_person_in_chrome_is_human_with_no_signal():
    assert run(hit()) == c.Verdict("human", (), "Chrome")
    assert run(hit("click", link=1)) == c.Verdict("human", (), "Chrome")


def test_outlook_for_windows_loading_images_is_a_human_open():
    assert run(hit(ua=OUTLOOK_WINDOWS)).classification == "human"
    assert family(OUTLOOK_WINDOWS) == "Outlook"


def test_apple_mail_on_its_own_network_is_human():
    assert run(hit(ua=APPLE_MAIL)).classification == "human"


@pytest.mark.parametrize("ip", ["172.224.224.5", "172.225.46.63", "2a02:26f7:b3c0:4000::1a", "::ffff:172.224.224.9"])
def test_apple_mail_privacy_protection(ip):
    verdict = run(hit(ua=APPLE_MPP, ip=ip))
    assert verdict.signals == ("apple_mpp",) and verdict.classification == "machine"
    assert c.apple_mpp(hit(ua=APPLE_MPP, ip="172.225.46.64"), LISTS) is None  # just outside the /26


def test_gmail_image_proxy_is_a_proxied_open_that_counts_as_human():
    verdict = run(hit(ua=GMAIL_PROXY, ip="66.249.84.10"))
    assert verdict == c.Verdict("human", ("google_image_proxy",), "GoogleImageProxy")


def test_yahoo_mail_proxy_is_a_proxied_open():
    verdict = run(hit(ua=YAHOO_PROXY, ip="98.137.11.1"))
    assert verdict == c.Verdict("human", ("yahoo_mail_proxy",), "YahooMailProxy")


def test_a_head_request_is_a_scanner():
    verdict = run(hit("click", method="HEAD", link=1))
    assert "head_request" in verdict.signals and verdict.classification == "machine"


@pytest.mark.parametrize("ua,vendor", [(BARRACUDA, "barracuda"), (OFFICE_DISCOVERY, "microsoft")])
def test_link_rewriter_user_agents(ua, vendor):
    verdict = run(hit("click", ua=ua, link=1))
    assert f"link_scanner_agent:{vendor}" in verdict.signals and verdict.classification == "machine"


@pytest.mark.parametrize("ip,vendor", [("40.107.22.51", "microsoft"), ("104.47.1.9", "microsoft"),
                                       ("148.163.140.1", "proofpoint"), ("207.211.30.77", "mimecast"),
                                       ("209.222.82.4", "barracuda"), ("68.232.140.2", "cisco")])
def test_link_rewriter_networks(ip, vendor):
    # Safe Links and the others fetch with an ordinary browser's user agent: only the network tells.
    verdict = run(hit("click", ua=CHROME, ip=ip, link=1))
    assert verdict.signals == (f"link_scanner_network:{vendor}",) and verdict.classification == "machine"


def test_a_click_seconds_after_delivery_is_a_scanner():
    verdict = run(hit("click", at=SENT + timedelta(seconds=3), link=1),
                  c.Context(sent_at=SENT, link_count=3, history=opened_before(SENT + timedelta(seconds=1))))
    assert verdict.signals == ("click_soon_after_delivery",) and verdict.classification == "machine"
    later = run(hit("click", at=SENT + timedelta(seconds=30), link=1),
                c.Context(sent_at=SENT, link_count=3, history=opened_before(SENT + timedelta(seconds=20))))
    assert later.classification == "human"


def test_a_click_without_an_open_before_it_is_a_scanner():
    verdict = run(hit("click", link=1), c.Context(sent_at=SENT, link_count=3, history=()))
    assert verdict.signals == ("click_without_open",) and verdict.classification == "machine"
    # An open after the click does not count as before it.
    after = (c.Past("open", LATER + timedelta(seconds=1)),)
    assert run(hit("click", link=1), c.Context(sent_at=SENT, link_count=3, history=after)).signals == \
        ("click_without_open",)


def test_every_link_clicked_within_seconds_is_a_scanner():
    history = opened_before() + (c.Past("click", LATER - timedelta(seconds=1), 0),
                                 c.Past("click", LATER - timedelta(seconds=2), 2))
    verdict = run(hit("click", link=1), c.Context(sent_at=SENT, link_count=3, history=history))
    assert verdict.signals == ("all_links_in_burst",) and verdict.classification == "machine"
    # Two of three links within seconds is what people do too.
    partial = opened_before() + (c.Past("click", LATER - timedelta(seconds=1), 0),)
    assert run(hit("click", link=1), c.Context(sent_at=SENT, link_count=3, history=partial)).classification == "human"


def test_a_get_right_after_a_head_from_the_same_network_is_the_scanner_that_sent_it():
    head = (c.Past("head", LATER - timedelta(seconds=2), 1, "198.51.100.0/24"),)
    verdict = run(hit("click", link=1), c.Context(sent_at=SENT, link_count=3, history=opened_before() + head))
    assert verdict.signals == ("after_head",) and verdict.classification == "machine"
    elsewhere = (c.Past("head", LATER - timedelta(seconds=2), 1, "203.0.113.0/24"),)
    assert run(hit("click", link=1), c.Context(sent_at=SENT, link_count=3,
                                               history=opened_before() + elsewhere)).classification == "human"


def test_stats_apply_the_burst_rule_in_hindsight_to_the_first_clicks_too():
    t = LATER
    recorded = [Recorded("open", t - timedelta(minutes=1)), Recorded("open", SENT, ("apple_mpp",)),
                Recorded("click", t, (), 0), Recorded("click", t + timedelta(seconds=1), (), 1),
                Recorded("click", t + timedelta(seconds=2), ("all_links_in_burst",), 2),
                Recorded("click", t + timedelta(hours=1), (), 1), Recorded("head", t, ("head_request",), 1)]
    stats = summarise(recorded, [0, 1, 2], W)
    assert (stats.opens_human, stats.opens_machine, stats.head_requests) == (1, 1, 1)
    assert stats.first_human_open == stats.last_human_open == t - timedelta(minutes=1)
    assert [(s.link_index, s.human, s.machine) for s in stats.clicks] == [(0, 0, 1), (1, 1, 1), (2, 0, 1)]
    assert stats.first_human_click == (t + timedelta(hours=1), 1)


def test_proxied_opens_count_as_human_opens_in_the_stats():
    stats = summarise([Recorded("open", LATER, ("google_image_proxy",))], [], W)
    assert stats.opens_human == 1 and stats.first_human_open == LATER


@pytest.mark.parametrize("ip,network", [("203.0.113.77", "203.0.113.0/24"), ("2001:db8:4a00:12::1", "2001:db8:4a00::/48"),
                                        ("::ffff:192.0.2.1", "192.0.2.0/24")])
def test_addresses_are_anonymised_to_a_24_or_a_48(ip, network):
    assert anonymise(parse_ip(ip)) == network


def test_network_sets_name_the_most_specific_match():
    nets = NetworkSet.of([("10.0.0.0/8", "wide"), ("10.1.2.0/24", "narrow"), ("2001:db8::/32", "v6")])
    assert nets.lookup(ipaddress.ip_address("10.1.2.3")) == "narrow"
    assert nets.lookup(ipaddress.ip_address("10.9.9.9")) == "wide"
    assert nets.lookup(ipaddress.ip_address("2001:db8::1")) == "v6"
    assert nets.lookup(ipaddress.ip_address("11.0.0.1")) is None and nets.lookup(None) is None
    assert len(nets) == 3


@pytest.mark.parametrize("ua,name", [(CHROME, "Chrome"), (GMAIL_PROXY, "GoogleImageProxy"), (YAHOO_PROXY, "YahooMailProxy"),
                                     (APPLE_MAIL, "AppleMail"), (APPLE_MPP, "Mozilla"), (BARRACUDA, "Barracuda"),
                                     ("", "none"), ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 "
                                                    "Firefox/133.0", "Firefox")])
def test_user_agent_families(ua, name):
    assert family(ua) == name


@pytest.mark.parametrize("url", ["https://acme.example/offer?id=7", "http://acme.example:8080/a#b",
                                 "https://acme.example/%E2%82%AC"])
def test_safe_targets(url):
    assert safe_target(url) == url


@pytest.mark.parametrize("url", ["javascript:alert(1)", "//evil.example/", "/relative", "https:/evil.example",
                                 "https://good.example\r\nSet-Cookie: a=b", "https://evil.example\\@good.example",
                                 "https://user@evil.example", "ftp://acme.example/", "https://acme.example/ x",
                                 "data:text/html,hi", "https://", "https://acme.example/€", "", None, 7,
                                 "https://" + "a" * 5000, "HTTPS:\t//evil.example"])
def test_unsafe_targets(url):
    assert safe_target(url) is None
