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


TOKEN_SCOPES = ("read", "read-write")


def create_api_token(session, user, name: str, scope: str = "read"):
    """Create a personal API token for a user; return the row and the token (shown once)."""
    from .models import ApiToken  # here: models import nothing from this module, keep it so

    if scope not in TOKEN_SCOPES:
        raise ValueError(f"scope must be one of {', '.join(TOKEN_SCOPES)}")
    token = generate_token("lpr")
    row = ApiToken(user_id=user.id, name=name[:128], token_hash=hash_token(token), scope=scope)
    session.add(row)
    session.flush()
    return row, token


def revoke_api_token(token_row, now) -> bool:
    """Revoke a token from now on; return False when it was revoked already."""
    if token_row.revoked_at is not None:
        return False
    token_row.revoked_at = now
    return True
