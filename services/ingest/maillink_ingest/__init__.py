"""ingest: connects mailboxes over IMAP, stores raw MIME, publishes received-message events."""
