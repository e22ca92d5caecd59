"""Password hashing with bcrypt, for passphrases of any length."""

import base64
import hashlib

import bcrypt

BCRYPT_ROUNDS = 12


def _prehash(password: str) -> bytes:
    # bcrypt reads at most 72 bytes (and bcrypt 5 raises past that); a SHA-256
    # pre-hash keeps every character of a long Thai passphrase significant.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """Return the bcrypt hash to store for a password."""
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def check_password(password: str, stored: str) -> bool:
    """Tell whether a password matches a stored hash."""
    try:
        return bcrypt.checkpw(_prehash(password), stored.encode("ascii"))
    except ValueError:
        return False
