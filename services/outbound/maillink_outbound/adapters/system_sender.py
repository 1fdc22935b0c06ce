"""The system sender: mail maillink sends itself (`purpose="system"`, e.g. the Smart Bcc address
confirmation that bcc-gateway requests) goes out from a configured address and SMTP server, never
from a user's account. It is presented to the send path as an account of its own (a single
SMTP pool), built from settings; it has no mailbox, so there is no Sent folder to search or fill."""
import uuid

from cryptography.fernet import Fernet

from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security, SmtpEndpoint
from maillink_schemas.base import utcnow

SYSTEM = "system"


class SystemSender:
    def __init__(self, settings) -> None:
        self.account_id = settings.system_account_id
        self._email, self._username = settings.system_from, settings.system_smtp_username or ""
        password = settings.system_smtp_password.get_secret_value() if settings.system_smtp_password else ""
        # Encrypted like any account's secret, so the send path decrypts (and redacts) it the same way.
        self._ciphertext = Fernet(settings.credentials_key.encode()).encrypt(password.encode()).decode()
        self._smtp = SmtpEndpoint(host=settings.system_smtp_host, port=settings.system_smtp_port,
                                  security=settings.system_smtp_security, files_sent=False)

    def account(self, user_id: str) -> AccountConfigured:
        """The sender as an account acting for `user_id` (the user the system mail is about)."""
        return AccountConfigured(
            event_id=uuid.uuid4().hex, occurred_at=utcnow(), account_id=self.account_id, user_id=user_id,
            email=self._email, username=self._username, secret_ciphertext=self._ciphertext,
            # No mailbox: never contacted (recovery and the Sent copy skip system mail).
            imap=ImapEndpoint(host=self._smtp.host, port=993, security=Security.SSL),
            provider=None, smtp=self._smtp)
