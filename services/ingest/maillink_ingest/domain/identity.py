"""The identity of a message record: shared with bcc-gateway, so it lives in maillink_schemas.identity."""
from maillink_schemas.identity import account_id, blob_id, body_digest, message_key

__all__ = ["account_id", "blob_id", "body_digest", "message_key"]
