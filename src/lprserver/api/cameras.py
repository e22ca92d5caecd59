"""Cameras and their state: online, last seen, health, reads today, corrections; their gate settings."""

import marshmallow as ma
from flask import abort, current_app, request
from flask_login import current_user, login_required
from marshmallow import validate
from sqlalchemy import select

from ..auth import require_role
from ..camera_gates import GateInputError, correction_counts, update_camera
from ..extensions import db
from ..models import CAMERA_ROLES, Camera, utcnow
from ..sites import SITE_MAX_CHARS, clean_site, current_scope
from ..statistics import reads_today
from . import bp
from .errors import error_response
from .schemas import CameraSchema

WRITERS = ("admin", "operator")


class CameraOut(CameraSchema):
    role = ma.fields.String(required=True, validate=validate.OneOf(CAMERA_ROLES), metadata={
        "description": "`entry` and `exit` cameras open and close visits; `pass` (default) takes the "
                       "read's `direction`"})
    allow_group = ma.fields.String(allow_none=True, metadata={
        "description": "a known group: a read of a plate not a current known plate of it raises "
                       "`not_on_list`; null for none"})
    corrections = ma.fields.Integer(metadata={"description": "reads of this camera an operator corrected"})
    site = ma.fields.String(allow_none=True, metadata={
        "description": "the site the camera belongs to (SPEC §15); null: seen only by users without a "
                       "site limit"})


class CameraListOut(ma.Schema):
    cameras = ma.fields.List(ma.fields.Nested(CameraOut), required=True)
    total = ma.fields.Integer(required=True)


def _site_rule(value) -> None:
    try:
        clean_site(value)
    except ValueError as exc:
        raise ma.ValidationError(str(exc)) from None


class CameraPatch(ma.Schema):
    name = ma.fields.String(allow_none=True, validate=validate.Length(max=128))
    location = ma.fields.String(allow_none=True, validate=validate.Length(max=255))
    latitude = ma.fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90))
    longitude = ma.fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180))
    role = ma.fields.String(validate=validate.OneOf(CAMERA_ROLES))
    allow_group = ma.fields.String(allow_none=True, validate=validate.Length(max=64), metadata={
        "description": "the name of an existing known group (`PUT /api/known-groups/<group>` makes one); "
                       "null or empty for none"})
    site = ma.fields.String(allow_none=True, validate=_site_rule, metadata={
        "description": f"admins only: the camera's site, 1-{SITE_MAX_CHARS} characters without commas, "
                       "tabs or line breaks (trimmed); null or empty for none. A site-limited admin may "
                       "only give one of their own sites", "example": "Bangna"})


def _with_counts(camera: Camera, counts: dict[str, int], corrected: dict[str, int]) -> Camera:
    camera.reads_today = counts.get(camera.id, 0)
    camera.corrections = corrected.get(camera.id, 0)
    return camera


def _counts() -> tuple[dict[str, int], dict[str, int]]:
    return reads_today(db.session, utcnow(), current_app.config["TIMEZONE"]), correction_counts(db.session)


@bp.get("/cameras")
@login_required
@bp.response(200, CameraListOut)
@bp.doc(tags=["cameras"])
def list_cameras():
    """List every camera with its state, gate settings, today's reads and its corrected reads (a
    site-limited user: the cameras of their sites)."""
    counts, corrected = _counts()
    scope = current_scope()
    query = select(Camera).order_by(Camera.id)
    if scope.limited:
        query = query.where(scope.sites_clause(Camera.site))
    rows = db.session.scalars(query)
    cameras = [_with_counts(c, counts, corrected) for c in rows]
    return {"cameras": cameras, "total": len(cameras)}


@bp.get("/cameras/<camera:camera_id>")
@login_required
@bp.response(200, CameraOut)
@bp.doc(tags=["cameras"])
def get_camera(camera_id: str):
    """Return one camera with its state, gate settings, today's reads and its corrected reads."""
    camera = camera_or_404(camera_id)
    return _with_counts(camera, *_counts())


@bp.patch("/cameras/<camera:camera_id>")
@require_role(*WRITERS)
@bp.arguments(CameraPatch)
@bp.response(200, CameraOut)
@bp.alt_response(400, description="`validation_error` with `field`: a role that is not entry, exit or "
                                  "pass, an `allow_group` that names no known group (`no such group`), "
                                  "a latitude or longitude out of range, a `site` that is not a string "
                                  "of 1-64 characters without commas (or not one of a site-limited "
                                  "admin's sites); nothing is changed")
@bp.alt_response(403, description="`forbidden`: an operator sent `site` (admins only)")
@bp.alt_response(404, description="`not_found`: no such camera, or one of a site the caller does not see")
@bp.doc(tags=["cameras"])
def patch_camera(changes: dict, camera_id: str):
    """Change a camera's gate settings (`role`, `allow_group`), name, location or coordinates (operators
    and admins), or its `site` (admins). The daemon uses them from its next read."""
    camera = camera_or_404(camera_id)
    if "site" in changes:
        if current_user.role != "admin":
            abort(403, "only admins set a camera's site")
        scope = current_scope()
        if scope.limited and not scope.sees_site(clean_site(changes["site"])):
            return error_response(400, "validation_error", "site: a site-limited admin may only give one "
                                  f"of their sites ({', '.join(scope.as_list() or [])})", "site")
    try:
        update_camera(db.session, current_user._get_current_object(), request.remote_addr, camera, changes)
    except GateInputError as exc:
        db.session.rollback()
        return error_response(400, "validation_error", f"{exc.field}: {exc}", exc.field)
    db.session.commit()
    if "site" in changes:
        from ..web.live import forget_camera_sites

        forget_camera_sites()  # this process's live events follow the new site at once
    return _with_counts(camera, *_counts())



def camera_or_404(camera_id: str) -> Camera:
    """The camera if the caller's sites see it; 404 (the same answer as a missing camera) otherwise."""
    camera = db.session.get(Camera, camera_id)
    if not current_scope().sees_camera(camera):
        abort(404)
    return camera
