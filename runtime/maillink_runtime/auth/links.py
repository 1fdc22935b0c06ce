"""Short-lived signed links to one raw message, made for one viewer (ARCHITECTURE.md, "Trust").

The matcher, which decides who may see a message, signs a link for that viewer and that blob;
the blob's owner (ingest) checks the signature, the expiry and that the caller's token names the
same viewer. So a user never needs a general blob scope. HMAC-SHA256 with a secret both services
share (`MAILLINK_LINK_KEYS`): the first key signs, every listed key verifies, which is how the
secret rotates without breaking links already handed out.
"""
import base64
import hashlib
import hmac
import time
from urllib.parse import urlencode


def _mac(secret: bytes, blob_id: str, viewer: str, expires: int) -> str:
    message = "\x1f".join(("blob", blob_id, viewer, str(expires))).encode()
    return base64.urlsafe_b64encode(hmac.new(secret, message, hashlib.sha256).digest()).rstrip(b"=").decode()


def blob_link(base_url: str, secret: bytes, blob_id: str, viewer: str, ttl_s: int = 300,
              now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + ttl_s)
    query = urlencode({"viewer": viewer, "exp": expires, "sig": _mac(secret, blob_id, viewer, expires)})
    return f"{base_url.rstrip('/')}/blobs/{blob_id}?{query}"


def link_is_valid(secrets: list[bytes], blob_id: str, viewer: str, expires: int, signature: str,
                  now: float | None = None) -> bool:
    if expires < (now if now is not None else time.time()):
        return False
    return any(hmac.compare_digest(_mac(s, blob_id, viewer, expires), signature) for s in secrets)
