"""Secret tokens for cameras and API users: random, shown once, stored only as SHA-256."""

import hashlib
import hmac
import secrets


def generate_token(prefix: str) -> str:
    """Return a new token with 256 random bits and a prefix that tells what it is for."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """Return the hex SHA-256 under which a token is stored.

    A fast hash is right here: the tokens carry 256 random bits, so there is
    nothing for a slow hash to protect against, and ingest checks one per read.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_matches(token: str | None, stored_hash: str | None) -> bool:
    """Compare a presented token with a stored hash in constant time."""
    if not token or not stored_hash:
        return False
    return hmac.compare_digest(hash_token(token), stored_hash)
