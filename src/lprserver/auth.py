"""Who is calling: session users (Flask-Login) and Bearer API tokens."""

from datetime import timedelta

from flask import Flask, Request
from sqlalchemy import select

from .extensions import db, login_manager
from .models import ApiToken, User, utcnow
from .tokens import hash_token

LAST_USED_RESOLUTION = timedelta(minutes=1)


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login" if "auth.login" in app.view_functions else None
    login_manager.user_loader(load_user)
    login_manager.request_loader(load_user_from_bearer)


def load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    return user if user is not None and user.active else None


def bearer_token(request: Request) -> str | None:
    """Return the token of an `Authorization: Bearer` header, if there is one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def load_user_from_bearer(request: Request) -> User | None:
    """Return the user of a valid, unrevoked API token presented as a Bearer token."""
    token = bearer_token(request)
    if not token:
        return None
    api_token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if api_token is None or api_token.revoked_at is not None or not api_token.user.active:
        return None
    now = utcnow()
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
        api_token.last_used_at = now
        db.session.commit()
    return api_token.user
