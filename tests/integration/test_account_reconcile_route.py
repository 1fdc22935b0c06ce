"""`POST /accounts/{id}/reconcile` against the real store: it marks every folder of the account for
reconciliation (the next pass audits it), for the owner or the company's admin only."""
from datetime import datetime, timezone

import httpx
import pytest
from cryptography.fernet import Fernet

from maillink_ingest.adapters.accounts import AccountStore
from maillink_ingest.adapters.folder_state import FolderState, FolderStateStore
from maillink_ingest.app import create_app
from maillink_ingest.settings import IngestSettings
from maillink_runtime import mongo
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security
from tests.conftest import MONGODB_URL, bearer

pytestmark = pytest.mark.integration


async def test_reconcile_marks_every_folder_of_the_account(monkeypatch, auth_env, token, namespace):
    for key, value in {**auth_env, "MAILLINK_CREDENTIALS_KEY": Fernet.generate_key().decode(),
                       "MONGODB_URL": MONGODB_URL, "MAILLINK_NAMESPACE": namespace}.items():
        monkeypatch.setenv(key, value)
    settings = IngestSettings()
    app = create_app(settings)  # no lifespan: the routes need only the store
    client = mongo.connect(MONGODB_URL)
    db = client[settings.database("ingest")]
    states = FolderStateStore(db)
    try:
        await AccountStore(db).save(AccountConfigured(
            event_id="e", occurred_at=datetime.now(timezone.utc), account_id="acc-r", user_id="u-alice",
            company_id="c-test", email="alice@example.com",
            imap=ImapEndpoint(host="127.0.0.1", port=10143, security=Security.PLAIN), username="alice",
            secret_ciphertext="x", version=1))
        for folder in ("INBOX", "Sent"):
            await states.save(FolderState("acc-r", folder, state="incremental"))
        await states.save(FolderState("acc-other", "INBOX", state="incremental"))
        alice = bearer(token("u-alice", "accounts:write"))
        bob = bearer(token("u-bob", "accounts:write"))
        reader = bearer(token("u-alice", "accounts:read"))
        admin = bearer(token(None, "accounts:write", "accounts:admin", company="c-test"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ingest") as http:
            assert (await http.post("/accounts/acc-r/reconcile")).status_code == 401
            assert (await http.post("/accounts/acc-r/reconcile", headers=reader)).status_code == 403
            assert (await http.post("/accounts/acc-r/reconcile", headers=bob)).status_code == 403
            assert not any(s.reconcile_requested for s in await states.for_account("acc-r"))
            assert (await http.post("/accounts/acc-nope/reconcile", headers=alice)).status_code == 404
            answer = await http.post("/accounts/acc-r/reconcile", headers=alice)
            assert answer.status_code == 202, answer.text
            assert answer.json() == {"account_id": "acc-r", "folders": ["INBOX", "Sent"]}
            assert all(s.reconcile_requested for s in await states.for_account("acc-r"))
            assert not (await states.load("acc-other", "INBOX")).reconcile_requested  # only this account's
            again = await http.post("/accounts/acc-r/reconcile", headers=admin)  # the company's admin may too
            assert again.status_code == 202 and again.json()["folders"] == ["INBOX", "Sent"]
    finally:
        await client.drop_database(db.name)
        await client.close()
