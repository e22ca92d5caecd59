"""Camera services: creation with a token, authorisation, presence. Callers commit."""

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .models import Camera, utcnow
from .tokens import generate_token, hash_token, token_matches

LAST_SEEN_RESOLUTION = timedelta(seconds=10)
_INSERTS = {"postgresql": pg_insert, "sqlite": sqlite_insert}


class CameraRefused(Exception):
    """The camera may not send: unknown in token mode, or a wrong token."""


def create_camera(session: Session, camera_id: str, name: str | None = None,
                  location: str | None = None) -> tuple[Camera, str]:
    """Create a camera (or give an existing one a new token) and return it with its token."""
    token = generate_token("cam")
    camera = session.get(Camera, camera_id) or Camera(id=camera_id, created_at=utcnow())
    camera.name = name if name is not None else camera.name
    camera.location = location if location is not None else camera.location
    camera.token_hash = hash_token(token)
    session.add(camera)
    session.flush()
    return camera, token


def authorize_camera(session: Session, camera_id: str, token: str | None, auth_mode: str,
                     now: datetime) -> Camera:
    """Return the camera a message comes from, creating it on the fly in open mode."""
    camera = session.get(Camera, camera_id)
    if auth_mode == "token":
        if camera is None or not token_matches(token, camera.token_hash):
            raise CameraRefused(camera_id)
        return camera
    if camera is None:
        # Two first reads of a new camera may race: let the database pick one.
        insert = _INSERTS[session.get_bind().dialect.name]
        session.execute(
            insert(Camera)
            .values(id=camera_id, first_seen=now, last_seen=now, created_at=now)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        camera = session.get(Camera, camera_id)
    return camera


def touch_camera(camera: Camera, now: datetime, hostname: str | None = None) -> None:
    """Note that a camera was heard from now (to LAST_SEEN_RESOLUTION, to spare a write per read)."""
    if camera.first_seen is None:
        camera.first_seen = now
    if camera.last_seen is None or now - camera.last_seen >= LAST_SEEN_RESOLUTION:
        camera.last_seen = now
    if hostname and camera.hostname != hostname:
        camera.hostname = hostname


def set_online(session: Session, camera_ids: list[str] | None, online: bool) -> None:
    """Mark cameras online or offline (all of them when camera_ids is None)."""
    query = update(Camera).values(online=online)
    if camera_ids is not None:
        query = query.where(Camera.id.in_(camera_ids))
    session.execute(query)
