"""The corpus cases too big to keep as files: built at test time, byte for byte the same each run.

Each is a shape real mail has taken (a mailing-list blast with the whole list in To, a mail loop
nesting forwards 200 deep, a broken client writing a 1 MB Subject) at the size that broke someone.
"""
import base64
from collections.abc import Iterator
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent
HEAD = (b"From: Jan Novak <jan@acme.cz>\r\nTo: owner@corpus.test\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\n"
        b"MIME-Version: 1.0\r\n")


def nested_multipart(depth: int = 200) -> bytes:
    opening = b"".join(b"--n%d\r\nContent-Type: multipart/mixed; boundary=\"n%d\"\r\n\r\n" % (i, i + 1)
                       for i in range(depth))
    closing = b"".join(b"--n%d--\r\n" % i for i in reversed(range(depth + 1)))
    return (HEAD + b"Subject: nested %d levels\r\nMessage-ID: <nested-%d@corpus.test>\r\n"
            b"Content-Type: multipart/mixed; boundary=\"n0\"\r\n\r\n" % (depth, depth)
            + opening + b"--n%d\r\nContent-Type: text/plain\r\n\r\nthe innermost text\r\n" % depth + closing)


def giant_subject(size: int = 1_000_000) -> bytes:
    # Folded every 76 characters, as a client that at least folds would write it.
    words = b"\r\n ".join([b"S" * 75] * (size // 76))
    return HEAD + b"Subject: " + words + b"\r\nMessage-ID: <subject-1mb@corpus.test>\r\n\r\na giant subject\r\n"


def many_recipients(count: int = 40_000) -> bytes:
    to = b",\r\n ".join(b"Person %d <person%d@list.example.com>" % (i, i) for i in range(count))
    return (b"From: Jan Novak <jan@acme.cz>\r\nTo: " + to + b"\r\nCc: " + to[:200_000].rsplit(b",", 1)[0]
            + b"\r\nSubject: 40,000 recipients\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\n"
            b"Message-ID: <recipients-40000@corpus.test>\r\n\r\nhello everyone\r\n")


def many_headers(count: int = 10_000) -> bytes:
    lines = b"".join(b"X-Trace-%d: hop %d\r\n" % (i, i) for i in range(count))
    return HEAD + b"Subject: 10,000 header lines\r\nMessage-ID: <headers-10000@corpus.test>\r\n" + lines + b"\r\nbody\r\n"


def many_references(count: int = 5_000) -> bytes:
    refs = b"\r\n ".join(b"<ref-%d@thread.example.com>" % i for i in range(count))
    return (HEAD + b"Subject: Re: a very long thread\r\nMessage-ID: <references-5000@corpus.test>\r\n"
            b"In-Reply-To: " + refs[:50_000].rsplit(b"\r\n", 1)[0] + b"\r\nReferences: " + refs + b"\r\n\r\nreply\r\n")


def big_attachment(size: int = 4_000_000) -> bytes:
    data = base64.encodebytes(bytes(i % 251 for i in range(size))).replace(b"\n", b"\r\n")
    return (HEAD + b"Subject: a 4 MB attachment\r\nMessage-ID: <attachment-4mb@corpus.test>\r\n"
            b"Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            b"--big\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + data + b"--big--\r\n")


GENERATED = {"nested-multipart-200": nested_multipart, "subject-1mb": giant_subject,
             "recipients-40000": many_recipients, "headers-10000": many_headers,
             "references-5000": many_references, "attachment-4mb": big_attachment}


def corpus() -> Iterator[tuple[str, bytes]]:
    """Every case, (name, raw MIME): the files in tests/corpus/, then the generated ones."""
    for path in sorted(CORPUS_DIR.glob("*.eml")):
        yield path.stem, path.read_bytes()
    for name, make in GENERATED.items():
        yield name, make()
