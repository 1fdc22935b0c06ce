"""Per-account CA (AccountConfigured.ca_pem) against Dovecot's IMAPS, with its self-signed certificate."""
import pytest

from maillink_ingest.imap.connection import close_session, open_session
from maillink_ingest.imap.errors import SyncError
from maillink_schemas.accounts import ImapEndpoint, Security
from tests.conftest import IMAPS_PORT, RUN_DIR

pytestmark = pytest.mark.integration


async def test_the_accounts_own_ca_is_trusted_for_that_account_only(mailbox):
    email, password = mailbox
    endpoint = ImapEndpoint(host="127.0.0.1", port=IMAPS_PORT, security=Security.SSL)
    with pytest.raises(SyncError, match="certificate"):
        await open_session(endpoint, email, password, timeout=10)  # never trusted without being told
    client = await open_session(endpoint, email, password, timeout=10,
                                ca_pem=(RUN_DIR / "dovecot/tls/cert.pem").read_text())
    await close_session(client)
