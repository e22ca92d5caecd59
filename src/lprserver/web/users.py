"""The users page (admins only): create users, change roles and site limits, reset passwords, deactivate,
delete.

A site limit (SPEC §15 "Sites") is a comma list of sites; empty means every site. A site-limited admin
gives only limits within their own sites (a user they add without one gets theirs), and nobody changes
their own limit."""

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
from ..sites import SITE_MAX_CHARS, current_scope, parse_sites
from ..users import USERNAME, USERNAME_RULE, UserInputError, check_password_rule, generated_password
from . import bp, client_ip
from .form_errors import USER, translated
from .live import disconnect_user


def _render(status: int = 200, **context):
    users = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template("users.html", users=users, roles=ROLES, **context), status


class SitesError(ValueError):
    pass


def _sites(form) -> list[str] | None:
    """The site limit typed (None: every site); SitesError for a bad name or one a limited admin lacks."""
    try:
        sites = parse_sites((form.get("sites") or "")[:4096])
    except ValueError:
        raise SitesError(_("Sites: names of 1-%(max)s characters, separated by commas (empty: every site)",
                           max=SITE_MAX_CHARS)) from None
    scope = current_scope()
    if scope.limited:
        if not sites:
            return scope.as_list()
        if not set(sites) <= scope.sites:
            raise SitesError(_("Sites: only your own sites (%(sites)s)", sites=", ".join(scope.as_list())))
    return sites or None


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
        sites = _sites(request.form)
    except UserInputError as exc:
        return _render(400, error=translated(str(exc), USER))
    except SitesError as exc:
        return _render(400, error=str(exc))
    db.session.add(User(username=username, role=role, password_hash=hash_password(password), sites=sites))
    audit(db.session, "user.create", current_user, target=f"user:{username}",
          detail={"role": role, **({"sites": sites} if sites else {})}, ip=client_ip())
    db.session.commit()
    return _render(new_user=username, new_password=password if generated else None)


@bp.post("/users/<id:user_id>")
@require_role("admin")
def user_update(user_id: int):
    """Change a user's role, site limit, active state or password; admins cannot lock themselves out."""
    user = db.get_or_404(User, user_id)
    action = request.form.get("action")
    if user.id == current_user.id and action in ("role", "deactivate", "delete"):
        return _render(400, error=_("You cannot change your own role, deactivate or delete yourself"))
    if user.id == current_user.id and action == "sites":
        return _render(400, error=_("You cannot change your own site limit"))
    if action == "role" and request.form.get("role") in ROLES:
        user.role = request.form["role"]
    elif action == "sites":
        try:
            user.sites = _sites(request.form)
        except SitesError as exc:
            return _render(400, error=str(exc))
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
          detail={"role": user.role} if action == "role" else
          {"sites": user.sites or []} if action == "sites" else None, ip=client_ip())
    db.session.commit()
    if action in ("role", "sites", "deactivate", "delete", "password"):
        disconnect_user(user_id)  # their open pages reconnect with what they may now see, if anything
    if action == "password":
        return _render(new_user=user.username, new_password=password if generated else None)
    flash(_("Saved %(user)s", user=user.username), "success")
    return redirect(url_for("web.users"))
