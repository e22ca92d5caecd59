"""The users page (admins only): create users, change roles, reset passwords, deactivate, delete."""

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..audit import audit
from ..auth import SESSION_TOKEN_KEY, require_role
from ..extensions import db
from ..models import ROLES, User, utcnow
from ..passwords import hash_password
from ..sessions import end_user_sessions
from ..users import USERNAME, USERNAME_RULE, UserInputError, check_password_rule, generated_password
from . import bp, client_ip
from .form_errors import USER, translated
from .live import disconnect_user


def _render(status: int = 200, **context):
    users = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template("users.html", users=users, roles=ROLES, **context), status


def _password(form) -> tuple[str, bool]:
    """Return the password typed, or a generated one (and whether it was generated)."""
    typed = form.get("password") or ""
    if typed:
        check_password_rule(typed)
        return typed, False
    return generated_password(), True


@bp.get("/users")
@require_role("admin")
def users():
    return _render()


@bp.post("/users")
@require_role("admin")
def user_create():
    username, role = (request.form.get("username") or "").strip(), request.form.get("role", "viewer")
    if not USERNAME.fullmatch(username) or role not in ROLES:
        return _render(400, error=_("Username: %(rule)s; role: admin, operator or viewer",
                                    rule=USERNAME_RULE))
    if db.session.scalar(select(User.id).where(User.username == username)):
        return _render(400, error=_("There is already a user named %(user)s", user=username))
    try:
        password, generated = _password(request.form)
    except UserInputError as exc:
        return _render(400, error=translated(str(exc), USER))
    db.session.add(User(username=username, role=role, password_hash=hash_password(password)))
    audit(db.session, "user.create", current_user, target=f"user:{username}", detail={"role": role},
          ip=client_ip())
    db.session.commit()
    return _render(new_user=username, new_password=password if generated else None)


@bp.post("/users/<id:user_id>")
@require_role("admin")
def user_update(user_id: int):
    """Change a user's role, active state or password; admins cannot lock themselves out."""
    user = db.get_or_404(User, user_id)
    action = request.form.get("action")
    if user.id == current_user.id and action in ("role", "deactivate", "delete"):
        return _render(400, error=_("You cannot change your own role, deactivate or delete yourself"))
    if action == "role" and request.form.get("role") in ROLES:
        user.role = request.form["role"]
    elif action in ("activate", "deactivate"):
        user.active = action == "activate"
    elif action == "password":
        try:
            password, generated = _password(request.form)
        except UserInputError as exc:
            return _render(400, error=translated(str(exc), USER))
        user.password_hash = hash_password(password)
    elif action == "delete":
        db.session.delete(user)
    else:
        return _render(400, error=_("Unknown change"))
    if action in ("deactivate", "password"):
        # Your own new password ends your other sessions, not this one.
        keep = session.get(SESSION_TOKEN_KEY) if user.id == current_user.id else None
        end_user_sessions(db.session, user.id, utcnow(), keep=keep)
    audit(db.session, f"user.{action}", current_user, target=f"user:{user.username}",
          detail={"role": user.role} if action == "role" else None, ip=client_ip())
    db.session.commit()
    if action in ("role", "deactivate", "delete", "password"):
        disconnect_user(user_id)  # their open pages reconnect with what they may now see, if anything
    if action == "password":
        return _render(new_user=user.username, new_password=password if generated else None)
    flash(_("Saved %(user)s", user=user.username), "success")
    return redirect(url_for("web.users"))
