"""make bench-imap-reader: aioimaplib's response reader alone, stock 2.0.3 vs ours (imap/fast_reader.py).

A synthetic UID FETCH answer of N messages of 2 KB each, as Dovecot shapes it, is fed in 64 KiB
chunks to a protocol's data_received (no socket, no server), timed from the first chunk to the
command's completion. Three readers: stock; stock with only FetchCommand.wait_data fixed; ours.
Best of 5 runs (1 for stock at 8,000, ~10-30 s). Then ours again with the 30 s command timeout that
ingest's FETCH carries (IMAP4.uid passes it): upstream's Command re-arms that timer for every line,
a cost outside the reader that this shows. Results go to .run/bench/imap-reader.json; the last line is the ratio ours/stock at 8,000 messages.
"""
import asyncio
import json
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path

from aioimaplib import aioimaplib as stock

from maillink_ingest.imap.fast_reader import FastFetchCommand, FastReaderProtocol

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("MAILLINK_RUN_DIR", ROOT / ".run"))
SIZES = (500, 8_000)
MESSAGE_BYTES = 2048
CHUNK = 64 * 1024
TARGET = 10


class StockWithFixedWaitData(stock.IMAP4ClientProtocol):
    async def fetch(self, message_set, message_parts, by_uid=False, timeout=None):
        return await self.execute(FastFetchCommand(self.new_tag(), message_set, message_parts,
                                                   prefix="UID" if by_uid else "", loop=self.loop, timeout=timeout))


READERS = {"stock": (stock.IMAP4ClientProtocol, None), "wait_data_fixed": (StockWithFixedWaitData, None),
           "ours": (FastReaderProtocol, None), "ours_with_timeout": (FastReaderProtocol, 30)}


def message(uid: int) -> bytes:
    head = (f"From: jan@acme.cz\r\nTo: eva@example.com\r\nSubject: message {uid}\r\n"
            f"Message-ID: <{uid}@acme.cz>\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000\r\n\r\n").encode()
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"
    body = (line * (MESSAGE_BYTES // len(line) + 1))[:MESSAGE_BYTES - len(head) - 2] + b"\r\n"
    return head + body


def fetch_answer(count: int, tag: bytes) -> bytes:
    parts = []
    for uid in range(1, count + 1):
        raw = message(uid)
        parts.append(b'* %d FETCH (UID %d FLAGS (\\Seen) INTERNALDATE "27-Nov-2026 08:00:00 +0000" '
                     b"RFC822.SIZE %d BODY[] {%d}\r\n%s)\r\n" % (uid, uid, len(raw), len(raw), raw))
    parts.append(b"%s OK Fetch completed (0.010 + 0.000 secs).\r\n" % tag)
    return b"".join(parts)


async def time_reader(protocol_class, answer: bytes, count: int, timeout: float | None = None) -> float:
    proto = protocol_class(asyncio.get_running_loop())
    proto.tagpre = "A"
    proto.connection_made(_NullTransport())
    proto.state = stock.SELECTED
    command = asyncio.ensure_future(proto.fetch(f"1:{count}", "(UID FLAGS BODY.PEEK[])", by_uid=True, timeout=timeout))
    await asyncio.sleep(0)
    view = memoryview(answer)
    started = time.perf_counter()
    for pos in range(0, len(answer), CHUNK):
        proto.data_received(bytes(view[pos:pos + CHUNK]))
    response = await command
    elapsed = time.perf_counter() - started
    if response.result != "OK" or len(response.lines) != 3 * count + 1:
        raise RuntimeError(f"{protocol_class.__name__} parsed {len(response.lines)} lines for {count} messages")
    return elapsed


class _NullTransport(asyncio.Transport):
    def write(self, data):
        pass


async def measure() -> dict:
    results = {}
    for count in SIZES:
        answer = fetch_answer(count, b"A0")
        rates = {}
        for name, (protocol_class, timeout) in READERS.items():
            runs = 5 if count <= 500 or name != "stock" else 1  # stock at 8,000 takes ~10 s a run
            best = min([await time_reader(protocol_class, answer, count, timeout) for _ in range(runs)])
            rates[name] = count / best
        results[str(count)] = {**{k: round(v) for k, v in rates.items()}, "ratio": round(rates["ours"] / rates["stock"], 1)}
        print(f"{count:>6} messages: " + ", ".join(f"{k} {v / 1000:.1f}k msg/s" for k, v in rates.items())
              + f"; ours/stock {rates['ours'] / rates['stock']:.1f}x", flush=True)
    return results


def main() -> None:
    results = asyncio.run(measure())
    ratio = results[str(SIZES[-1])]["ratio"]
    report = {"what": "aioimaplib response reader only: synthetic UID FETCH answer fed to data_received",
              "message_bytes": MESSAGE_BYTES, "chunk_bytes": CHUNK, "python": platform.python_version(),
              "aioimaplib": version("aioimaplib"), "msg_per_s": results, "ratio": ratio, "target": TARGET}
    out = RUN_DIR / "bench" / "imap-reader.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    print(f"bench imap-reader: ratio={ratio} target={TARGET}")


if __name__ == "__main__":
    main()
