"""Who is calling: session users (Flask-Login) and Bearer API tokens."""

from datetime import timedelta
from functools import wraps

from flask import Flask, Request, abort, current_app, g, jsonify, redirect, request, session, url_for
from flask_login import current_user
from sqlalchemy import select

from .extensions import db, login_manager
from .models import ApiToken, User, utcnow
from .sessions import check_session
from .sites import current_scope
from .tokens import hash_token

LAST_USED_RESOLUTION = timedelta(minutes=1)
SESSION_TOKEN_KEY = "_lpr_session"  # the server-side session (see sessions.py) this cookie belongs to


def init_app(app: Flask) -> None:
    login_manager.user_loader(load_user)
    login_manager.request_loader(load_user_from_bearer)
    login_manager.unauthorized_handler(unauthorized)


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def unauthorized():
    """Answer a request that needs a signed-in user: JSON 401 for the API, the sign-in page otherwise."""
    if is_api_request() or "auth.login" not in current_app.view_functions:
        body = {"error": {"code": "unauthorized", "message": "sign in or send Authorization: Bearer <token>"}}
        return jsonify(body), 401, {"WWW-Authenticate": 'Bearer realm="lprserver"'}
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def require_role(*roles: str):
    """Let only signed-in users with one of `roles` through (403 otherwise)."""
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


def require_every_site(view):
    """Let only users without a site limit through (403 otherwise), after `require_role`.

    For what sends data off the server for every site at once: webhooks, alert rules and channel
    settings (SPEC §15 "Sites"). A site-limited admin would otherwise route other sites' reads out."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_scope().limited:
            abort(403, "only an admin without a site limit may manage deliveries (every site's data)")
        return view(*args, **kwargs)
    return wrapped


def load_user(user_id: str) -> User | None:
    """Return the user of a signed-in session, if the user is active and the session not ended."""
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not user.active:
        return None
    idle = timedelta(hours=current_app.config["SESSION_IDLE_HOURS"])
    live = check_session(db.session, user.id, session.get(SESSION_TOKEN_KEY), utcnow(), idle)
    return user if live else None


def bearer_token(request: Request) -> str | None:
    """Return the token of an `Authorization: Bearer` header, if there is one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def load_user_from_bearer(request: Request) -> User | None:
    """Return the user of a valid, unrevoked API token presented as a Bearer token on an /api/ path.

    Tokens are for the API only (docs/api.md, "Authentication"): a page, its forms and the live channel
    take the session cookie alone, so a leaked read-only token can never become a session that writes."""
    token = bearer_token(request) if is_api_request() else None
    if not token:
        return None
    api_token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if api_token is None or api_token.revoked_at is not None or not api_token.user.active:
        return None
    g.api_token = api_token  # its scope decides whether this request may write
    now = utcnow()
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
        api_token.last_used_at = now
        db.session.commit()
    return api_token.user
