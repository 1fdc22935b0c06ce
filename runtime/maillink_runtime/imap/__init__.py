"""IMAP protocol plumbing shared by the services that talk IMAP (ingest syncs, outbound files sent
copies): safe LOGIN (quoted strings or literals), modified UTF-7 mailbox names, IMAP strings.
What a sync does with a mailbox stays in ingest."""


class UnsendableCredentials(ValueError):
    """The username or password cannot travel over IMAP at all (CR, LF, NUL, not text).
    `str(exc)` is worded for a person."""
