"""Signed links to a read's image for LINE's image message (SPEC §11 "Delivery": "a signed link that
expires").

LINE fetches `originalContentUrl` and `previewImageUrl` itself, over https and without signing in, so the
link carries its own permission: an HMAC-SHA256 of the record id, the kind (`full` or `preview`) and the
expiry time, with a key derived from SECRET_KEY for this one purpose. web/alert_images.py serves them.
"""

import base64
import hashlib
import hmac
from datetime import datetime

KINDS = ("full", "preview")
_PURPOSE = b"lprserver alert-image link v1"


def _key(secret_key: str) -> bytes:
    """A key for image links only, so a link's signature is of no use to SECRET_KEY's other users."""
    return hmac.new(secret_key.encode(), _PURPOSE, hashlib.sha256).digest()


def signature(secret_key: str, record_id: int, kind: str, expires: int) -> str:
    mac = hmac.new(_key(secret_key), f"{record_id}:{kind}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def image_links(public_url: str, secret_key: str, record_id: int, now: datetime,
                hours: float) -> tuple[str, str] | None:
    """The (full image, preview) links of a record valid for `hours` from `now`, or None unless PUBLIC_URL
    is https (LINE accepts https only)."""
    if not public_url or not public_url.startswith("https://"):
        return None
    expires = int(now.timestamp() + hours * 3600)
    base = public_url.rstrip("/")
    full, preview = (f"{base}/alert-images/{record_id}/{kind}?expires={expires}"
                     f"&sig={signature(secret_key, record_id, kind, expires)}" for kind in KINDS)
    return full, preview


def verify(secret_key: str, record_id: int, kind: str, expires: int, sig: str, now: datetime) -> bool:
    """Whether a link's signature is ours and it has not expired (compared in constant time)."""
    if kind not in KINDS or expires < now.timestamp():
        return False
    return hmac.compare_digest(signature(secret_key, record_id, kind, expires).encode(), sig.encode())
