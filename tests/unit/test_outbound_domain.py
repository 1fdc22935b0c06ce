"""outbound's pure rules: right-to-left marking, smart fields, sanitising, tracking injection, the
state machine, the size-limit sentence, addresses, the provider catalog and the tracker seam."""
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from maillink_outbound.adapters.tracker_urls import tracker_urls
from maillink_outbound.domain import rtl
from maillink_outbound.domain import smart_fields as sf
from maillink_outbound.domain.addresses import InvalidAddress, normalise
from maillink_outbound.domain.compose import limit_error
from maillink_outbound.domain.html import TextCollector, sanitise, text_from_html
from maillink_outbound.domain.states import CANCELLABLE, TERMINAL, TRANSITIONS, sources
from maillink_outbound.domain.tracking import TrackerUrls, inject
from maillink_schemas.mail import Address
from maillink_schemas.outbound import SendState as S
from maillink_schemas import tracking_token as tt
from maillink_schemas.providers import PROVIDERS, for_address, preset

SENTENCES = {
    "ar": "مرحباً، نود أن نشكركم على اهتمامكم بعرضنا الجديد. يرجى مراجعة التفاصيل المرفقة.",
    "he": "שלום, תודה רבה על הפגישה אתמול. מצורפת ההצעה המעודכנת לעיונכם.",
    "fa": "سلام، از جلسه دیروز بسیار سپاسگزاریم. پیشنهاد به‌روز شده پیوست شده است.",
    "ur": "السلام علیکم، کل کی ملاقات کا بہت شکریہ۔ تازہ ترین پیشکش منسلک ہے۔",
}


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_each_script_is_right_to_left_with_its_language(lang):
    html, whole = rtl.mark(f"<p>{SENTENCES[lang]}</p>")
    assert whole == "rtl" and rtl.language(SENTENCES[lang]) == lang
    assert f'<p dir="rtl" lang="{lang}">' in html


def test_a_mixed_paragraph_with_a_product_name_and_a_url_stays_right_to_left():
    text = "يسعدنا أن نقدم لكم منتجنا الجديد Acme Cloud Pro، التفاصيل على https://acme.example/cloud-pro/overview"
    assert rtl.direction(text) == "rtl"
    html, _ = rtl.mark(f"<p>{text}</p><p>Kind regards, the Acme team</p>")
    assert '<p dir="rtl" lang="ar">' in html and '<p dir="ltr">Kind regards' in html


def test_a_left_to_right_body_quoting_an_arabic_name_is_left_alone():
    html, whole = rtl.mark("<p>Please call Mr. محمد عبد الله tomorrow about the renewal contract.</p>")
    assert whole == "ltr" and "dir=" not in html


def test_an_authors_own_direction_wins_and_text_is_escaped_back():
    html, _ = rtl.mark(f'<p dir="ltr">{SENTENCES["he"]} &lt;b&gt;</p>')
    assert html.count("dir=") == 2 and '<p dir="ltr">' in html and "&lt;b&gt;" in html


def test_smart_fields_render_and_a_missing_one_is_named():
    ctx = {"person": sf.person_record("Jan Novák", ["jan@acme.cz"]), "deal": sf.Record("deal", {})}
    assert sf.render("Hi {{ person.first_name }}", ctx, html=False) == "Hi Jan"
    assert sf.render('{{ deal.title | default("your deal") }}', ctx, html=False) == "your deal"
    with pytest.raises(sf.MissingField) as missing:
        sf.render("{{ deal.title }}", ctx, html=False)
    assert missing.value.field == "deal.title"
    assert sf.render("{{ person.name }}", {"person": sf.person_record("<b>x</b>")}, html=True) == "&lt;b&gt;x&lt;/b&gt;"


def test_the_sandbox_refuses_reaching_into_python():
    for source in ("{{ ''.__class__.__mro__ }}", "{{ person.__init__.__globals__ }}", "{{ cycler.__init__ }}"):
        with pytest.raises((sf.MissingField, sf.TemplateInvalid)):
            sf.render(source, {"person": sf.Record("person", {})}, html=False)


def test_sanitising_removes_scripts_handlers_and_javascript_urls_and_keeps_cid_images():
    html = sanitise('<p onclick="steal()">x<script>steal()</script><a href="javascript:steal()">a</a>'
                    '<img src="cid:logo" onerror="steal()"><a href="https://ok.example">ok</a></p>')
    assert "steal" not in html and 'src="cid:logo"' in html and 'href="https://ok.example"' in html


def test_text_alternative_keeps_link_targets():
    text = text_from_html('<h1>Offer</h1><p>See <a href="https://acme.example/o">the offer</a>.</p><ul><li>a</li></ul>')
    assert "Offer" in text and "the offer (https://acme.example/o)" in text and "- a" in text


def test_tracking_rewrites_http_links_only():
    urls = TrackerUrls(click=lambda i: f"https://t.example/c/{i}", pixel="https://t.example/o.gif")
    html, links = inject('<a href="https://a.example/x?a=1&amp;b=2">x</a> <a href="mailto:s@a.example">m</a> '
                         '<a href="https://a.example/unsubscribe">u</a> <a href="https://a.example/p">Opt out</a> '
                         '<a href="http://b.example">b</a>', urls)
    assert [(l.index, l.url) for l in links] == [(0, "https://a.example/x?a=1&b=2"), (1, "http://b.example")]
    assert 'href="https://t.example/c/0"' in html and 'href="https://t.example/c/1"' in html
    assert "mailto:s@a.example" in html and "https://a.example/unsubscribe" in html and "https://a.example/p" in html
    assert html.endswith('<img src="https://t.example/o.gif" width="1" height="1" alt="" style="display:none">')


def test_tracker_urls_carry_tokens_the_tracker_verifies():
    ring = tt.parse_keys("1:2026-01-01:outbound-unit-test-key-0123", timedelta(days=30))
    date = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
    tid, urls = tracker_urls("https://t.example/", ring, "abc@example.com", date)
    assert len(tid) == 32 and urls.pixel.startswith("https://t.example/o/") and urls.click(3).startswith("https://t.example/c/")
    assert len(urls.click(65535)) < 200   # short enough for real mail clients
    read = lambda url: tt.read(ring, url.rsplit("/", 1)[1], max_age=timedelta(days=400), now=date)  # noqa: E731
    click, pixel = read(urls.click(3)), read(urls.pixel)
    assert (click.message_key, click.kind, click.link_index, click.sender_view) == (tid, "click", 3, False)
    assert (pixel.message_key, pixel.kind) == (tid, "open")
    # The same message gives the same URLs (a crashed send is rebuilt byte for byte) ...
    assert tracker_urls("https://t.example", ring, "abc@example.com", date)[1].click(3) == urls.click(3)
    # ... and another key's tokens are refused by the tracker.
    other = tt.parse_keys("1:2026-01-01:some-other-key-0123456789", timedelta(days=30))
    assert read(tracker_urls("https://t.example", other, "abc@example.com", date)[1].click(3)) is None


def test_the_state_machine():
    assert S.SENDING in TRANSITIONS[S.PENDING] and S.SENT not in TRANSITIONS[S.PENDING]
    assert TERMINAL == {S.SENT, S.FAILED, S.CANCELLED, S.UNKNOWN}
    assert CANCELLABLE == {S.SCHEDULED, S.PENDING} and sources(S.UNKNOWN) == [S.SENDING]


def test_the_size_limit_sentence():
    mb = 1024 * 1024
    assert limit_error(int(27.4 * mb), 25 * mb, "Gmail") == "this message is 27.4 MB; Gmail accepts at most 25 MB"
    assert limit_error(25 * mb + 1000, 25 * mb, "Gmail") == "this message is 25.00 MB; Gmail accepts at most 25 MB"
    assert limit_error(25 * mb, 25 * mb, "Gmail") is None


def test_addresses_idn_and_invalid():
    assert normalise(Address(email="Jan@Bücher.Example")).email == "Jan@xn--bcher-kva.example"
    for bad in ("no-at-sign", "a@b", "jan@acme..cz", "ján@acme.cz"):
        with pytest.raises(InvalidAddress):
            normalise(Address(email=bad))


def test_the_provider_catalog():
    assert {"gmail", "microsoft365", "outlook", "yahoo", "icloud", "fastmail", "generic"} <= set(PROVIDERS)
    assert preset("gmail").files_sent_mail and not preset("yahoo").files_sent_mail
    assert preset("nonexistent").id == "generic" and for_address("x@googlemail.com").id == "gmail"
    for p in PROVIDERS.values():
        assert p.attachment_limit_bytes > 0 and p.quirks
        # A preset with a fixed IMAP server has its fixed SMTP server too; self-hosted kinds (generic,
        # Exchange, Zimbra) have neither, and the user gives the hosts.
        if p.imap is not None and p.id not in ("generic", "local-test"):
            assert p.smtp is not None, p.id


async def test_the_per_minute_limit_waits_for_the_window_to_move(monkeypatch):
    from maillink_outbound.adapters import smtp
    from maillink_schemas.accounts import Security
    from maillink_schemas.providers import AuthMethod, Endpoint, SendLimits
    pool = smtp.AccountPool(Endpoint(host="127.0.0.1", port=1, security=Security.PLAIN), "u", "p",
                            AuthMethod.PASSWORD, SendLimits(messages_per_minute=2), None, 5)
    clock, sleeps = [1000.0], []

    async def sleep(seconds):
        sleeps.append(seconds)
        clock[0] += seconds

    # The smtp module's own names only: patching asyncio.sleep or time.monotonic themselves reaches
    # every coroutine on the loop (a pymongo client's periodic task left from an earlier test then
    # spun without ever yielding, and the whole run hung here once).
    monkeypatch.setattr(smtp, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(smtp, "asyncio", SimpleNamespace(sleep=sleep))
    await pool._pace()
    clock[0] += 10
    await pool._pace()
    assert sleeps == []
    await pool._pace()   # the third within a minute waits until the first is a minute old
    assert len(sleeps) == 1 and abs(sleeps[0] - 50.01) < 1e-6


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_the_text_alternative_from_the_marking_parse_is_the_one_from_the_marked_html(lang):
    # Building a message parses its HTML once, for the RTL marks and the text alternative together.
    body = sanitise(f"<p>{SENTENCES[lang]}</p><p>Kind regards, <b>Acme</b> &amp; co: "
                    f"<a href='https://acme.example/a?x=1&amp;y=2'>offer</a></p><br/><img alt='logo' src='cid:l'/>"
                    f"<ul><li>one</li><li>{SENTENCES[lang][:20]}</li></ul>")
    collected = TextCollector()
    marked, _ = rtl.mark(body, also=collected)
    assert marked == rtl.mark(body)[0]
    assert collected.text() == text_from_html(marked)
    assert "(https://acme.example/a?x=1&y=2)" in collected.text() and "[logo]" in collected.text()
