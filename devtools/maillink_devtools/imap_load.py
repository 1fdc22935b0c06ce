"""Loads messages into an IMAP folder with stdlib imaplib (APPEND; MULTIAPPEND-free, portable)."""
import imaplib
import time
from collections.abc import Iterable


def append(host: str, port: int, user: str, password: str, folder: str, messages: Iterable[bytes],
           flags: str = "", when: float | None = None) -> int:
    count = 0
    conn = imaplib.IMAP4(host, port)
    try:
        conn.login(user, password)
        conn.create(folder)  # harmless NO when it exists
        for raw in messages:
            typ, data = conn.append(folder, flags or None, imaplib.Time2Internaldate(when or time.time()), raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND to {folder} failed: {data!r}")
            count += 1
    finally:
        conn.logout()
    return count


def delete_all(host: str, port: int, user: str, password: str, folder: str) -> None:
    conn = imaplib.IMAP4(host, port)
    try:
        conn.login(user, password)
        typ, _ = conn.select(folder)
        if typ == "OK":
            conn.uid("STORE", "1:*", "+FLAGS.SILENT", r"(\Deleted)")
            conn.expunge()
    finally:
        conn.logout()
