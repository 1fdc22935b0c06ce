"""The identity of a message record. The key itself is part of the contract (outbound computes it
for what it sends), so it lives in maillink_schemas.message_identity; see the rules there."""
import hashlib

from maillink_schemas.message_identity import body_digest, message_key

__all__ = ["blob_id", "body_digest", "message_key"]


def blob_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
