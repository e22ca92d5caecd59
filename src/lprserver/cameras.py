"""Camera services: creation with a token, authorisation, presence. Callers commit."""

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .models import Camera, utcnow
from .tokens import generate_token, hash_token, token_matches

# A camera id (README "Sending reads"): 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit.
CAMERA_ID_REGEX = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
CAMERA_ID_PATTERN = f"^{CAMERA_ID_REGEX}$"
CAMERA_ID_RULE = "1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit"
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


def touch_camera(camera: Camera, now: datetime, hostname: str | None = None) -> bool:
    """Note that a camera was heard from now (to LAST_SEEN_RESOLUTION, to spare a write per read);
    return whether its last_seen moved."""
    if camera.first_seen is None:
        camera.first_seen = now
    if hostname and camera.hostname != hostname:
        camera.hostname = hostname
    if camera.last_seen is None or now - camera.last_seen >= LAST_SEEN_RESOLUTION:
        camera.last_seen = now
        return True
    return False


def set_online(session: Session, camera_ids: list[str] | None, online: bool) -> None:
    """Mark cameras online or offline (all of them when camera_ids is None)."""
    query = update(Camera).values(online=online)
    if camera_ids is not None:
        query = query.where(Camera.id.in_(camera_ids))
    session.execute(query)


class NewCameraBudget:
    """How many new cameras each address may still create in open mode: `per_minute`, refilled
    evenly, a minute's worth at once at most (one connection once made 1,480 in 28 s)."""

    MAX_ADDRESSES = 10_000

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self.buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens left, when)

    def take(self, address: str) -> bool:
        """Spend one of `address`'s new cameras; False when it has none left now."""
        now = self.clock()
        tokens = self._left(address, now)
        if len(self.buckets) >= self.MAX_ADDRESSES:  # forget the addresses whose budget is whole again
            self.buckets = {a: b for a, b in self.buckets.items() if self._left(a, now) < self.per_minute}
        self.buckets[address] = (tokens - 1 if tokens >= 1 else tokens, now)
        return tokens >= 1

    def _left(self, address: str, now: float) -> float:
        tokens, at = self.buckets.get(address, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60)
