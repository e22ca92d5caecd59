"""Personal API tokens of the signed-in user: list, create (shown once), revoke."""

from flask import abort, current_app, request
from flask_login import current_user, login_required
from sqlalchemy import select

from ..audit import audit
from ..extensions import db, limiter
from ..models import ApiToken, utcnow
from ..tokens import create_api_token, revoke_api_token
from . import bp
from .schemas import NewTokenSchema, TokenIn, TokenList


def token_limit() -> str:
    return current_app.config.get("RATELIMIT_TOKENS", "30 per minute")


def _user():
    return current_user._get_current_object()


@bp.get("/tokens")
@login_required
@limiter.limit(token_limit)
@bp.response(200, TokenList)
@bp.doc(tags=["tokens"])
def list_tokens():
    """List your API tokens (never the tokens themselves)."""
    rows = db.session.scalars(select(ApiToken).where(ApiToken.user_id == _user().id).order_by(ApiToken.id))
    return {"tokens": list(rows)}


@bp.post("/tokens")
@login_required
@limiter.limit(token_limit)
@bp.arguments(TokenIn)
@bp.response(201, NewTokenSchema)
@bp.doc(tags=["tokens"])
def create_token(data: dict):
    """Create a token for yourself; the answer is the only time the token is shown."""
    row, token = create_api_token(db.session, _user(), data["name"], data["scope"])
    audit(db.session, "token.create", user=_user(), target=f"token:{row.id}",
          detail={"name": row.name, "scope": row.scope}, ip=request.remote_addr)
    db.session.commit()
    row.token = token
    return row


@bp.delete("/tokens/<id:token_id>")
@login_required
@limiter.limit(token_limit)
@bp.response(204)
@bp.doc(tags=["tokens"])
def delete_token(token_id: int):
    """Revoke one of your tokens; it stops working at once."""
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != _user().id:
        abort(404, "you have no token with this id")
    if revoke_api_token(row, utcnow()):
        audit(db.session, "token.revoke", user=_user(), target=f"token:{row.id}", ip=request.remote_addr)
        db.session.commit()
