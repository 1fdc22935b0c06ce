"""bcc-gateway: Smart Bcc SMTP gateway and alternative-address verification.

- entrypoints/smtp.py: the SMTP server (aiosmtpd, STARTTLS); senders checked at MAIL, recipients
  at RCPT, everything else at the end of DATA (intake.py), stored and published (commit.py);
- entrypoints/http.py: the caller's Smart Bcc address, alternative addresses, the public
  confirmation page; /blobs/{id} (raw MIME of accepted mail) is maillink_runtime.blobs.download's route;
- entrypoints/users.py: crm.users.v1 -> the gateway's own user projection;
- domain/: the rules, pure (addresses, senders, authentication verdicts, forwards, links, event);
- adapters/: the store (users, alternative addresses), the in-memory sender directory, the DNS
  cache and SPF/DKIM/DMARC checks, the blob store.
"""
