"""The user's own settings: personal API tokens at /account/tokens, the page language (SPEC §13)."""

from flask import Blueprint, abort, redirect, render_template, request, session
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from .audit import audit
from .extensions import db, limiter
from .i18n import LANGUAGES, SESSION_KEY
from .models import ApiToken, utcnow
from .tokens import TOKEN_SCOPES, create_api_token, revoke_api_token
from .web.auth import safe_next

bp = Blueprint("account", __name__, url_prefix="/account")


def _token_limit() -> str:
    from flask import current_app

    return current_app.config.get("RATELIMIT_TOKENS", "30 per minute")


def _page(new_token: str | None = None, error: str | None = None, status: int = 200):
    user = current_user._get_current_object()
    tokens = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    return render_template("account_tokens.html", tokens=list(tokens), new_token=new_token,
                           scopes=TOKEN_SCOPES, error=error), status


@bp.get("/tokens")
@login_required
def tokens():
    """Show the user's tokens and the form to make one."""
    return _page()


@bp.post("/tokens")
@login_required
@limiter.limit(_token_limit)
def create_token():
    """Make a token and show it once, on this answer only."""
    name = request.form.get("name", "").strip()
    scope = request.form.get("scope", "read")
    if not 1 <= len(name) <= 128 or scope not in TOKEN_SCOPES:
        return _page(error=_("Give the token a name (1-128 characters) and a scope."), status=400)
    user = current_user._get_current_object()
    row, token = create_api_token(db.session, user, name, scope)
    audit(db.session, "token.create", user=user, target=f"token:{row.id}",
          detail={"name": row.name, "scope": row.scope}, ip=request.remote_addr)
    db.session.commit()
    return _page(new_token=token, status=201)


@bp.post("/tokens/<id:token_id>/revoke")
@login_required
@limiter.limit(_token_limit)
def revoke_token(token_id: int):
    """Revoke one of the user's tokens."""
    user = current_user._get_current_object()
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        abort(404)
    if revoke_api_token(row, utcnow()):
        audit(db.session, "token.revoke", user=user, target=f"token:{row.id}", ip=request.remote_addr)
        db.session.commit()
    return _page()


@bp.post("/language")
def language():
    """Show the pages in `language` (th or en): kept on the account when signed in, else in the session
    (the sign-in page's switch). Goes back to the page it came from (`next`, a path on this site)."""
    chosen = request.form.get("language", "")
    if chosen not in LANGUAGES:
        abort(400, description=f"language must be one of {', '.join(LANGUAGES)}")
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        if user.language != chosen:
            user.language = chosen
            db.session.commit()
    session[SESSION_KEY] = chosen
    return redirect(safe_next(request.form.get("next")), code=303)

