"""User accounts: the username rule, passwords, saving a user. Callers commit."""

import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ROLES, User, utcnow
from .passwords import hash_password
from .sessions import end_user_sessions

USERNAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
USERNAME_RULE = "1-64 of A-Z a-z 0-9 _ . @ -"
MIN_PASSWORD = 10


class UserInputError(ValueError):
    """A username, role or password a user cannot have."""


def generated_password() -> str:
    """A password for a user who was given none (shown once)."""
    return secrets.token_urlsafe(12)


def check_password_rule(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserInputError(f"Passwords need at least {MIN_PASSWORD} characters")


def save_user(session: Session, username: str, role: str, password: str | None) -> tuple[User, str]:
    """Create a user, or reset an existing one's password and role and make it active again; return it
    and its password (generated when none is given). A new password ends the sessions signed in with
    the old one."""
    if not USERNAME.fullmatch(username):
        raise UserInputError(f"Username: {USERNAME_RULE}")
    if role not in ROLES:
        raise UserInputError(f"Role: one of {', '.join(ROLES)}")
    password = password or generated_password()
    user = session.scalar(select(User).where(User.username == username)) or User(username=username)
    if user.id is not None:
        end_user_sessions(session, user.id, utcnow())
    user.password_hash = hash_password(password)
    user.role = role
    user.active = True
    session.add(user)
    return user, password
