"""Loads messages into an IMAP folder with stdlib imaplib (APPEND; MULTIAPPEND-free, portable)."""
import imaplib
import time
from collections.abc import Iterable


def login(conn: imaplib.IMAP4, user: str, password: str) -> None:
    # SASL PLAIN is base64 on the wire: any character of the user or password travels safely
    # (imaplib's LOGIN quotes ASCII only).
    conn.authenticate("PLAIN", lambda _: b"\0" + user.encode() + b"\0" + password.encode())


def append(host: str, port: int, user: str, password: str, folder: str, messages: Iterable[bytes],
           flags: str = "", when: float | None = None) -> int:
    count = 0
    conn = imaplib.IMAP4(host, port)
    try:
        login(conn, user, password)
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
        login(conn, user, password)
        typ, _ = conn.select(folder)
        if typ == "OK":
            conn.uid("STORE", "1:*", "+FLAGS.SILENT", r"(\Deleted)")
            conn.expunge()
    finally:
        conn.logout()
