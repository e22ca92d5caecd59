"""The cameras page: state, last seen, reads today, latest health; admins create cameras."""

import re

from flask import current_app, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import select

from ..audit import audit
from ..auth import require_role
from ..cameras import CAMERA_ID_PATTERN, create_camera
from ..extensions import db
from ..models import Camera, utcnow
from ..statistics import reads_today
from . import bp, client_ip


def _render(status: int = 200, **context):
    cameras = db.session.scalars(select(Camera).order_by(Camera.id)).all()
    today = reads_today(db.session, utcnow(), current_app.config["TIMEZONE"])
    return render_template("cameras.html", cameras=cameras, today=today, **context), status


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
        return _render(400, error="Camera id: 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit")
    name = (request.form.get("name") or "").strip()[:128] or None
    location = (request.form.get("location") or "").strip()[:255] or None
    if "\x00" in (name or "") + (location or ""):
        return _render(400, error="Name and location must not hold a NUL character")
    existed = db.session.get(Camera, camera_id) is not None
    _camera, token = create_camera(db.session, camera_id, name, location)
    audit(db.session, "camera.token" if existed else "camera.create", current_user,
          target=f"camera:{camera_id}", ip=client_ip())
    db.session.commit()
    # Rendered, never flashed or redirected: the token must not sit in a cookie or a URL.
    return _render(new_token=token, new_camera=camera_id)
