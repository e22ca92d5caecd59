"""The cameras page: state, last seen, reads today, corrected reads, latest health, gate settings, site;
admins create cameras and set a camera's site, operators and admins set a camera's role and allow_group.
A site-limited user sees the cameras of their sites only (SPEC §15 "Sites")."""

import re

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..audit import audit
from ..auth import require_role
from ..camera_gates import RANGES, GateInputError, correction_counts, update_camera
from ..cameras import CAMERA_ID_PATTERN, create_camera
from ..extensions import db
from ..models import CAMERA_ROLES, Camera, KnownGroup, utcnow
from ..sites import SITE_MAX_CHARS, current_scope
from ..statistics import reads_today
from . import bp, client_ip
from .live import forget_camera_sites


def camera_role_labels() -> dict[str, str]:
    """A camera's gate role as people read it (SPEC §13); the form still sends the role's code."""
    return {"entry": _("entry"), "exit": _("exit"), "pass": _("pass")}


def _gate_error(exc: GateInputError) -> str:
    """The shared check's message (English, as the API answers it) in the page's language."""
    message, field = str(exc), exc.field
    names = {"latitude": _("latitude"), "longitude": _("longitude")}
    if field in RANGES and message.endswith("is not a number"):
        return _("%(field)s is not a number", field=names[field])
    if field in RANGES and "must lie between" in message:
        return _("%(field)s must lie between %(low)s and %(high)s", field=names[field],
                 low=f"-{RANGES[field]:g}", high=f"{RANGES[field]:g}")
    if message.startswith("give both"):
        return _("give both latitude and longitude, or neither")
    if field == "role":
        return _("role must be one of %(roles)s", roles=", ".join(CAMERA_ROLES))
    if field == "site":
        return _("Site: 1-%(max)s characters, without commas, tabs or line breaks; empty for none",
                 max=SITE_MAX_CHARS)
    if field == "allow_group" and message.startswith("no such group"):
        group = (request.form.get("allow_group") or "")[:64]
        return _("no such group: %(group)s (add a known plate of that group on /known first)",
                 group=repr(group))
    return message


def _camera_or_404(camera_id: str) -> Camera:
    """The camera if the user's sites see it; 404, as for a missing camera, otherwise."""
    camera = db.session.get(Camera, camera_id)
    if not current_scope().sees_camera(camera):
        abort(404)
    return camera


def _render(status: int = 200, **context):
    scope = current_scope()
    query = select(Camera).order_by(Camera.id)
    if scope.limited:
        query = query.where(scope.sites_clause(Camera.site))
    cameras = db.session.scalars(query).all()
    sites = db.session.scalars(select(Camera.site).where(Camera.site.is_not(None)).distinct()
                               .order_by(Camera.site)).all()
    if scope.limited:
        sites = scope.as_list()
    today = reads_today(db.session, utcnow(), current_app.config["TIMEZONE"])
    groups = db.session.scalars(select(KnownGroup.name).order_by(KnownGroup.name)).all()
    return render_template("cameras.html", cameras=cameras, today=today, roles=CAMERA_ROLES, groups=groups,
                           camera_role_labels=camera_role_labels(),
                           corrected=correction_counts(db.session), sites=sites,
                           site_max=SITE_MAX_CHARS, **context), status


@bp.get("/cameras")
@login_required
def cameras():
    return _render()


@bp.post("/cameras")
@require_role("admin")
def camera_create():
    """Create a camera (or give one a new token) and show the token this once."""
    camera_id = (request.form.get("camera_id") or "").strip()
    if not re.fullmatch(CAMERA_ID_PATTERN, camera_id):
        return _render(400, error=_("Camera ID: 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit"))
    name = (request.form.get("name") or "").strip()[:128] or None
    location = (request.form.get("location") or "").strip()[:255] or None
    if "\x00" in (name or "") + (location or ""):
        return _render(400, error=_("Name and location must not hold a NUL character"))
    existed = db.session.get(Camera, camera_id) is not None
    _camera, token = create_camera(db.session, camera_id, name, location)
    audit(db.session, "camera.token" if existed else "camera.create", current_user,
          target=f"camera:{camera_id}", ip=client_ip())
    db.session.commit()
    # Rendered, never flashed or redirected: the token must not sit in a cookie or a URL.
    return _render(new_token=token, new_camera=camera_id)


@bp.post("/cameras/<camera:camera_id>/gate")
@require_role("admin", "operator")
def camera_gate(camera_id: str):
    """Set a camera's role and allow_group (SPEC §10 "Gates")."""
    camera = _camera_or_404(camera_id)
    changes = {"role": request.form.get("role", ""), "allow_group": request.form.get("allow_group")}
    try:
        update_camera(db.session, current_user, client_ip(), camera, changes)
    except GateInputError as exc:
        db.session.rollback()
        return _render(400, gate_error=_gate_error(exc), gate_camera=camera_id)
    db.session.commit()
    name, role = camera.name or camera.id, camera_role_labels().get(camera.role, camera.role)
    if camera.allow_group:
        flash(_("Camera %(camera)s saved: %(role)s, allows %(group)s", camera=name, role=role,
                group=camera.allow_group), "success")
    else:
        flash(_("Camera %(camera)s saved: %(role)s", camera=name, role=role), "success")
    return redirect(url_for("web.cameras"))


@bp.post("/cameras/<camera:camera_id>/place")
@require_role("admin", "operator")
def camera_place(camera_id: str):
    """Set or clear a camera's coordinates, for the map (SPEC §12 "Map"): both or neither."""
    camera = _camera_or_404(camera_id)
    changes = {name: (request.form.get(name) or "").strip() or None for name in ("latitude", "longitude")}
    try:
        update_camera(db.session, current_user, client_ip(), camera, changes)
    except GateInputError as exc:
        db.session.rollback()
        return _render(400, place_error=_gate_error(exc), place_camera=camera_id)
    db.session.commit()
    name = camera.name or camera.id
    if camera.latitude is not None:
        flash(_("Coordinates of camera %(camera)s saved: %(place)s", camera=name,
                place=f"{camera.latitude}, {camera.longitude}"), "success")
    else:
        flash(_("Camera %(camera)s taken off the map (no coordinates)", camera=name), "success")
    return redirect(url_for("web.cameras"))


@bp.post("/cameras/<camera:camera_id>/site")
@require_role("admin")
def camera_site(camera_id: str):
    """Set or clear a camera's site (SPEC §15 "Sites"); a site-limited admin gives one of their sites."""
    camera = _camera_or_404(camera_id)
    value = request.form.get("site") or ""
    scope = current_scope()
    try:
        update_camera(db.session, current_user, client_ip(), camera, {"site": value})
        if scope.limited and not scope.sees_site(camera.site):
            raise GateInputError("site", "not one of your sites")
    except GateInputError as exc:
        db.session.rollback()
        message = _gate_error(exc) if str(exc) != "not one of your sites" else \
            _("Site: one of your sites (%(sites)s)", sites=", ".join(scope.as_list() or []))
        return _render(400, site_error=message, site_camera=camera_id)
    db.session.commit()
    forget_camera_sites()  # this process's live events follow the new site at once
    name = camera.name or camera.id
    if camera.site:
        flash(_("Camera %(camera)s is now at site %(site)s", camera=name, site=camera.site), "success")
    else:
        flash(_("Camera %(camera)s belongs to no site", camera=name), "success")
    return redirect(url_for("web.cameras"))
