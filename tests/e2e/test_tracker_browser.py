"""A real browser: Debian's headless Chromium opens an HTML message with the open pixel and clicks two
of its three tracked links. The events are read back from Kafka and the stats from the API.

The message and the landing pages are served by a tiny local HTTP server, as a webmail would show
the message; the tracker runs as its own process on the real broker and store."""
import asyncio
import html
import shutil
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.async_api import async_playwright

from maillink_devtools.processes import ServiceSet
from maillink_schemas import tracking_token as tt
from tests.conftest import bearer

from test_tracker_service import events, register, start_tracker, stats
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Pages:
    """The message at /message.html, a landing page at /landing/<n>."""

    def __init__(self) -> None:
        self.message = b""
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                body = pages.message if self.path == "/message.html" else (
                    f"<html><title>landing {html.escape(self.path)}</title><body>ok</body></html>".encode())
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pages():
    served = Pages()
    yield served
    served.close()


def test_headless_chromium_opens_the_message_and_clicks_two_links(namespace, auth_env, token, pages):
    ring = tt.parse_keys(auth_env["MAILLINK_TRACKING_KEYS"], timedelta(days=30))
    procs = ServiceSet()
    tracker = start_tracker(namespace, auth_env, procs)
    try:
        links = [f"{pages.url}/landing/{n}?from=mail" for n in range(3)]
        key = register(namespace, links, user="u-alice")
        sender = bearer(token("u-alice", "tracking:read"))
        assert wait_for(lambda: stats(tracker, key, sender).status_code, lambda s: s == 200) == 200
        anchors = "".join(f'<p><a id="l{i}" href="{tracker}/c/{tt.mint(ring, key, "click", i)}">link {i}</a></p>'
                          for i in range(3))
        pages.message = (f'<html><head><title>Offer</title></head><body><p>Hello Jan,</p>{anchors}'
                         f'<img src="{tracker}/o/{tt.mint(ring, key, "open")}" width="1" height="1" alt="">'
                         f'</body></html>').encode()
        asyncio.run(browse(pages.url, tracker, key, sender))

        opened = events(namespace, "opened", expect=1)
        clicked = events(namespace, "clicked", expect=2)
        # Going back to the message may show it from the back-forward cache or fetch the pixel again
        # (no-store): one open at least, each a human one.
        assert opened and all(e["classification"] == "human" for e in opened)
        assert {(e["user_agent_family"], e["network"]) for e in opened} == {("HeadlessChrome", "127.0.0.0/24")}
        assert sorted((e["link_index"], e["url"], e["classification"]) for e in clicked) == [
            (0, links[0], "human"), (2, links[2], "human")]
        assert all(e["message_key"] == key and e["user_id"] == "u-alice" for e in opened + clicked)
        milestones = events(namespace, "milestone", expect=2)
        assert sorted(m["milestone"] for m in milestones) == ["first_human_click", "first_human_open"]

        body = wait_for(lambda: stats(tracker, key, sender).json(),
                        lambda b: sum(c["human"] for c in b["clicks"]) == 2)
        assert body["opens_human"] == len(opened) and body["opens_machine"] == 0
        assert body["first_human_open"] is not None and body["first_human_open"] <= body["last_human_open"]
        assert [(c["link_index"], c["human"], c["machine"]) for c in body["clicks"]] == [(0, 1, 0), (1, 0, 0), (2, 1, 0)]
    finally:
        procs.stop()


async def browse(site: str, tracker: str, key: str, sender: dict) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            page = await browser.new_page()
            async with page.expect_response(lambda r: "/o/" in r.url) as pixel:
                await page.goto(f"{site}/message.html")
            response = await pixel.value
            assert response.status == 200 and response.headers["content-type"] == "image/gif"
            # A person reads before clicking: wait until the open is recorded, so the click is not
            # one "without an open before it".
            await asyncio.to_thread(wait_for, lambda: httpx.get(f"{tracker}/messages/{key}/tracking",
                                                                headers=sender).json()["opens_human"],
                                    lambda n: n == 1)
            for link in ("#l0", "#l2"):
                async with page.expect_navigation():
                    await page.click(link)
                assert page.url.startswith(f"{site}/landing/{link[-1]}?from=mail"), page.url
                await page.go_back()
        finally:
            await browser.close()
