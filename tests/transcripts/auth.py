"""Recorded login dialogues of real providers, as the scripted server replays them.

Sources: the providers' documented exchanges (Google's "IMAP XOAUTH2 protocol" page shows the
error challenge below byte for byte; Microsoft's "Authenticate an IMAP, POP or SMTP connection
using OAuth" page and Exchange Online's greeting and capability lines) and RFC 5530 response
codes as Dovecot sends them. Server ids in greetings are shortened.
"""
import base64
import json

GMAIL_GREETING = b"* OK Gimap ready for requests from 203.0.113.5 q7mb123456789abc"
GMAIL_CAPS_PREAUTH = (b"* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY "
                      b"SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER AUTH=XOAUTH")
GMAIL_CAPS = (b"* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS "
              b"COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED LIST-STATUS LITERAL- "
              b"SPECIAL-USE APPENDLIMIT=35651584")
GMAIL_AUTH_OK = [GMAIL_CAPS, b"{tag} OK alice@gmail.com authenticated (Success)"]
# Google's documented failure: a continuation with base64 JSON, the client's empty line, then NO.
GMAIL_ERROR_JSON = {"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}
GMAIL_ERROR_CHALLENGE = b"+ " + base64.b64encode(json.dumps(GMAIL_ERROR_JSON, separators=(",", ":")).encode())
GMAIL_AUTH_NO = b"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"

MS_GREETING = (b"* OK The Microsoft Exchange IMAP4 service is ready. "
               b"[TQBXADQAUABSADAAMQBDAEEAMAAwADAANQAuAG4AYQBtAHAAcgBkADAAMQAuAHAAcgBvAGQA]")
MS_CAPS = (b"* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN "
           b"IDLE NAMESPACE LITERAL+")
MS_AUTH_OK = [b"{tag} OK AUTHENTICATE completed."]
MS_AUTH_NO = [b"{tag} NO AUTHENTICATE failed."]

# RFC 5530 codes as Dovecot words them.
RFC5530_FAILED = [b"{tag} NO [AUTHENTICATIONFAILED] Authentication failed."]
RFC5530_UNAVAILABLE = [b"{tag} NO [UNAVAILABLE] Temporary authentication failure."]


def capability(caps: bytes) -> list[bytes]:
    return [caps, b"{tag} OK CAPABILITY completed."]

# The example printed on Google's XOAUTH2 page (older scheme list, trailing newline inside the JSON).
GMAIL_DOC_CHALLENGE = (b"+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5j"
                       b"b20vIn0K")
