"""Cameras and their state: online, last seen, health, reads today."""

from flask import current_app
from flask_login import login_required
from sqlalchemy import select

from ..extensions import db
from ..models import Camera, utcnow
from ..statistics import reads_today
from . import bp
from .schemas import CameraList, CameraSchema


def _with_reads(camera: Camera, counts: dict[str, int]) -> Camera:
    camera.reads_today = counts.get(camera.id, 0)
    return camera


@bp.get("/cameras")
@login_required
@bp.response(200, CameraList)
@bp.doc(tags=["cameras"])
def list_cameras():
    """List every camera with its state and today's reads."""
    counts = reads_today(db.session, utcnow(), current_app.config["TIMEZONE"])
    cameras = [_with_reads(c, counts) for c in db.session.scalars(select(Camera).order_by(Camera.id))]
    return {"cameras": cameras, "total": len(cameras)}


@bp.get("/cameras/<camera:camera_id>")
@login_required
@bp.response(200, CameraSchema)
@bp.doc(tags=["cameras"])
def get_camera(camera_id: str):
    """Return one camera with its state and today's reads."""
    camera = db.get_or_404(Camera, camera_id)
    return _with_reads(camera, reads_today(db.session, utcnow(), current_app.config["TIMEZONE"]))
