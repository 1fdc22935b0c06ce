"""Gmail's IMAP dialect, replayed by the scripted server: the response shapes Google documents
for X-GM-EXT-1 (https://developers.google.com/gmail/imap/imap-extensions) and that Gmail sends
(LIST with SPECIAL-USE flags, SELECT of [Gmail]/All Mail, FETCH with X-GM-THRID, X-GM-MSGID and
X-GM-LABELS before UID, tagged answers ending in "(Success)"). The mailbox itself is made up.
"""
import re
from dataclasses import dataclass

from tests.scripted_imap import ScriptedImap
from tests.transcripts.auth import GMAIL_CAPS, GMAIL_CAPS_PREAUTH, GMAIL_GREETING, capability

LIST = [
    b'* LIST (\\HasNoChildren) "/" "INBOX"',
    b'* LIST (\\HasNoChildren) "/" "Work"',
    b'* LIST (\\HasNoChildren) "/" "Newsletters"',
    b'* LIST (\\HasNoChildren) "/" "&BB8EQAQ+BDUEOgRCBEs-"',   # "Проекты"
    b'* LIST (\\HasChildren \\Noselect) "/" "[Gmail]"',
    b'* LIST (\\All \\HasNoChildren) "/" "[Gmail]/All Mail"',
    b'* LIST (\\Drafts \\HasNoChildren) "/" "[Gmail]/Drafts"',
    b'* LIST (\\HasNoChildren \\Important) "/" "[Gmail]/Important"',
    b'* LIST (\\HasNoChildren \\Sent) "/" "[Gmail]/Sent Mail"',
    b'* LIST (\\HasNoChildren \\Junk) "/" "[Gmail]/Spam"',
    b'* LIST (\\Flagged \\HasNoChildren) "/" "[Gmail]/Starred"',
    b'* LIST (\\HasNoChildren \\Trash) "/" "[Gmail]/Trash"',
    b"{tag} OK Success",
]


@dataclass(frozen=True)
class GmailMessage:
    uid: int
    msgid: int
    thrid: int
    labels: bytes        # as on the wire, inside X-GM-LABELS ( )
    flags: bytes
    raw: bytes


def _raw(n: int, sender: str, to: str, subject: str, refs: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Fri, 27 Nov 2026 06:0{n}:00 +0000\r\n"
            f"Message-ID: <m{n}@mail.gmail.com>\r\n{refs}MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
            f"Body of message {n}.\r\n").encode()


MAILBOX = [
    GmailMessage(1, 1517500000000000001, 1517500000000000001, b"\\Inbox Work", b"\\Seen",
                 _raw(1, "Bob <bob@client.example>", "alice@gmail.com", "Offer")),
    GmailMessage(2, 1517500000000000002, 1517500000000000001, b"\\Sent", b"\\Seen",
                 _raw(2, "Alice <alice@gmail.com>", "bob@client.example", "Re: Offer",
                      "In-Reply-To: <m1@mail.gmail.com>\r\nReferences: <m1@mail.gmail.com>\r\n")),
    GmailMessage(3, 1517500000000000003, 1517500000000000003, b"\\Draft", b"\\Draft",
                 _raw(3, "alice@gmail.com", "carol@client.example", "unfinished")),
    GmailMessage(4, 1517500000000000004, 1517500000000000004, b"Newsletters", b"",
                 _raw(4, "news@shop.example", "alice@gmail.com", "Sale")),
    GmailMessage(5, 1517500000000000005, 1517500000000000005, b'\\Important \\Inbox "&BB8EQAQ+BDUEOgRCBEs-" "Q4 plans"',
                 b"", _raw(5, "dan@client.example", "alice@gmail.com", "Plans")),
]


def _uids(spec: bytes, highest: int) -> list[int]:
    out = []
    for part in spec.split(b","):
        lo, _, hi = part.partition(b":")
        lo_n = highest if lo == b"*" else int(lo)
        hi_n = lo_n if not hi else (highest if hi == b"*" else int(hi))
        lo_n, hi_n = min(lo_n, hi_n), max(lo_n, hi_n)
        out.extend(range(lo_n, hi_n + 1))
    return out


def server(mailbox: list[GmailMessage] = MAILBOX) -> ScriptedImap:
    by_uid = {m.uid: m for m in mailbox}
    highest = max(by_uid)

    async def search(session, tag, m):
        # "n:*" includes the highest UID even when it is below n (RFC 3501 6.4.8), as Gmail does.
        found = [u for u in _uids(m.group(1), highest) if u in by_uid]
        session.write(b"* SEARCH" + b"".join(b" %d" % u for u in found), b"{tag} OK SEARCH completed (Success)",
                      tag=tag)

    async def fetch(session, tag, m):
        items = m.group(2)
        for seq, uid in enumerate(u for u in _uids(m.group(1), highest) if u in by_uid):
            msg = by_uid[uid]
            seq_no = uid  # nothing expunged: sequence numbers equal UIDs here
            if b"X-GM-LABELS" in items:
                session.write(b"* %d FETCH (X-GM-THRID %d X-GM-MSGID %d X-GM-LABELS (%s) UID %d RFC822.SIZE %d)"
                              % (seq_no, msg.thrid, msg.msgid, msg.labels, uid, len(msg.raw)))
            elif b"BODY.PEEK[]" in items:
                session.write(b'* %d FETCH (UID %d FLAGS (%s) INTERNALDATE "27-Nov-2026 06:0%d:00 +0000" '
                              b"RFC822.SIZE %d BODY[] {%d}\r\n" % (seq_no, uid, msg.flags, uid, len(msg.raw),
                                                                   len(msg.raw)) + msg.raw + b")")
            else:
                session.write(b"* %d FETCH (UID %d RFC822.SIZE %d)" % (seq_no, uid, len(msg.raw)))
        session.write(b"{tag} OK Success", tag=tag)

    select = [b"* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing)",
              b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing \\*)] "
              b"Flags permitted.",
              b"* OK [UIDVALIDITY 11] UIDs valid.", b"* %d EXISTS" % len(mailbox), b"* 0 RECENT",
              b"* OK [UIDNEXT %d] Predicted next UID." % (highest + 1), b"* OK [HIGHESTMODSEQ 4511522]",
              b"{tag} OK [READ-WRITE] [Gmail]/All Mail selected. (Success)"]
    return ScriptedImap(GMAIL_GREETING, [
        (r"CAPABILITY", capability(GMAIL_CAPS_PREAUTH)),
        (r"LOGIN ", [GMAIL_CAPS, b"{tag} OK alice@gmail.com authenticated (Success)"]),
        (r'LIST "" "?\*"?', LIST),
        (r'SELECT "\[Gmail\]/All Mail"', select),
        (r"UID SEARCH UID (\S+)", search),
        (r"UID FETCH (\S+) (\(.*\))", fetch),
        (r"LOGOUT", [b"* BYE LOGOUT Requested", b"{tag} OK 73 good day (Success)"]),
    ])


def sent_commands(srv: ScriptedImap) -> list[bytes]:
    return [re.sub(rb"\s+", b" ", c) for c in srv.commands()]
