"""Sign-in and sign-out, with per-account throttling and an audit entry for every attempt."""

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select

from ..audit import audit
from ..auth import SESSION_TOKEN_KEY
from ..extensions import db
from ..i18n import SESSION_KEY as LANGUAGE_KEY
from ..i18n import select_language
from ..models import AuditEntry, User, utcnow
from ..passwords import check_password, hash_password
from ..sessions import end_session, start_session
from . import client_ip

bp = Blueprint("auth", __name__)

MAX_FIELD = 256
FAILED_ANSWER = _l("Wrong username or password")
_dummy_hash: str | None = None


def dummy_hash() -> str:
    """A hash to check unknown users against, so that they take as long as wrong passwords."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password("not a password of anyone")
    return _dummy_hash


def recent_failures(username: str, ip: str | None) -> int:
    """Count this account's failed sign-ins from this address in the last minute."""
    since = utcnow() - timedelta(minutes=1)
    return db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "login.failed", AuditEntry.username == username,
        AuditEntry.ip == ip, AuditEntry.at >= since)) or 0


def safe_next(target: str | None) -> str:
    """Return `target` if it is a path on this site (no control characters: a header cannot carry
    them), else the overview."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and target.isprintable()):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("web.overview")


def authenticate(username: str, password: str) -> User | None:
    """Return the active user with these credentials, taking the same time when there is none."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        check_password(password, dummy_hash())
        return None
    return user if check_password(password, user.password_hash) else None


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(safe_next(request.args.get("next")))
        return render_template("login.html", next=request.args.get("next", ""))
    # No account has a NUL in its name, and no column could keep one: it is only ever a failed sign-in.
    username = (request.form.get("username") or "").strip()[:64].replace("\x00", "\ufffd")
    password = (request.form.get("password") or "")[:MAX_FIELD * 4]
    next_url = request.form.get("next", "")
    ip = client_ip()
    if recent_failures(username, ip) >= current_app.config["LOGIN_FAILURES_PER_MINUTE"]:
        audit(db.session, "login.throttled", username=username, ip=ip)
        db.session.commit()
        message = _("Too many failed sign-ins for this account. Wait a minute and try again.")
        return render_template("login.html", error=message, username=username, next=next_url), 429
    user = authenticate(username, password)
    if user is None:
        audit(db.session, "login.failed", username=username, ip=ip)
        db.session.commit()
        return render_template("login.html", error=FAILED_ANSWER, username=username, next=next_url), 401
    session.clear()  # a new session: nothing from before sign-in carries over
    session[SESSION_TOKEN_KEY] = start_session(db.session, user, utcnow(), ip,
                                               request.headers.get("User-Agent"))
    login_user(user, fresh=True)
    user.last_login_at = utcnow()
    audit(db.session, "login.success", user, ip=ip)
    db.session.commit()
    return redirect(safe_next(next_url))


@bp.post("/logout")
@login_required
def logout():
    audit(db.session, "logout", current_user, ip=client_ip())
    end_session(db.session, session.get(SESSION_TOKEN_KEY), utcnow())
    db.session.commit()
    from .live import disconnect_user

    disconnect_user(current_user.id)
    language = select_language()  # the signed-out pages keep the user's language (SPEC §13)
    logout_user()
    session.clear()
    session[LANGUAGE_KEY] = language
    flash(_("Signed out"), "info")
    return redirect(url_for("auth.login"))
