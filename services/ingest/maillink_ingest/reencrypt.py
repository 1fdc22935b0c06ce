"""`python -m maillink_ingest.reencrypt`: re-encrypts every account's credentials with the newest key.

Run it after putting a new key first in MAILLINK_CREDENTIALS_KEY (see adapters/crypto.py). Each
account not yet under the newest key is republished on the compacted account topic with the new
ciphertext and a higher version; ingest's account consumer applies it like any update. Idempotent:
a rerun finds nothing left to do, and then the old key can be dropped. An account whose
credentials were refused by its server keeps that refusal (moved to the new record), so the
rotation never makes it try a known-bad password again.
"""
import asyncio
import sys
import time
import uuid

from maillink_runtime import bus, mongo
from maillink_runtime.kafka_conn import kafka_security
from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.base import utcnow
from maillink_schemas.topics import Topic

from .adapters.accounts import AccountStore
from .adapters.crypto import CredentialsCipher
from .settings import IngestSettings


def reencrypted(account: AccountConfigured, cipher: CredentialsCipher) -> AccountConfigured | None:
    """The account under the newest key, or None when it already is."""
    if cipher.is_current(account.secret_ciphertext):
        return None
    return account.model_copy(update={
        "event_id": str(uuid.uuid4()), "occurred_at": utcnow(),
        "secret_ciphertext": cipher.reencrypt(account.secret_ciphertext),
        "version": max(time.time_ns() // 1000, account.version + 1)})


async def reencrypt_all(accounts: AccountStore, cipher: CredentialsCipher, publish) -> tuple[int, list[str]]:
    done, failed = 0, []
    for account in await accounts.all():
        try:
            updated = reencrypted(account, cipher)
        except ValueError:
            failed.append(account.account_id)  # none of the keys reads it: only new credentials help
            continue
        if updated is None:
            continue
        if refusal := await accounts.refusal(account):
            await accounts.refused(updated, refusal["reason"], refusal["words"])
        await publish(updated)
        done += 1
    return done, failed


async def main() -> int:
    settings = IngestSettings()
    cipher = CredentialsCipher(settings.credentials_key)
    client = mongo.connect(settings.mongodb_url)
    broker = bus.make_broker(settings.kafka_bootstrap_servers, "ingest-reencrypt", kafka_security(settings))
    await broker.start()
    try:
        async def publish(account: AccountConfigured) -> None:
            await bus.publish(broker, settings.topic(Topic.ACCOUNT), account, key=account.account_id)

        done, failed = await reencrypt_all(AccountStore(client[settings.database("ingest")]), cipher, publish)
    finally:
        await broker.stop()
        await client.close()
    print(f"re-encrypted {done} account(s) with the newest key; {len(failed)} unreadable")
    for account_id in failed:
        print(f"  UNREADABLE {account_id}: none of the keys decrypts it; the owner must enter the password again",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
