"""A camera's settings people change (SPEC §10 "Gates"): its role, allow_group, name, location and
coordinates; and how many of its reads were corrected. Callers commit."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .audit import audit
from .models import CAMERA_ROLES, Camera, KnownGroup, Record, User
from .sites import clean_site

# `site` (SPEC §15 "Sites") is admins' to set: the routes check who may, this module how it is kept.
EDITABLE = ("name", "location", "latitude", "longitude", "role", "allow_group", "site")
LIMITS = {"name": 128, "location": 255}
RANGES = {"latitude": 90.0, "longitude": 180.0}


class GateInputError(ValueError):
    """A value a camera cannot take; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def camera_snapshot(camera: Camera) -> dict[str, Any]:
    return {name: getattr(camera, name) for name in EDITABLE}


def checked_changes(session: Session, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes as they will be kept; GateInputError for the first bad one."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in EDITABLE:
            continue
        if name in LIMITS:
            value = (value or "").strip() or None
            if value is not None and len(value) > LIMITS[name]:
                raise GateInputError(name, f"{name} is over {LIMITS[name]} characters")
            if value is not None and "\x00" in value:
                raise GateInputError(name, f"{name} holds a NUL character")
        elif name in RANGES:
            if value is not None:
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise GateInputError(name, f"{name} is not a number") from None
                if not -RANGES[name] <= value <= RANGES[name]:  # NaN fails this too
                    raise GateInputError(name, f"{name} must lie between -{RANGES[name]:g} and "
                                               f"{RANGES[name]:g}")
        elif name == "role":
            if value not in CAMERA_ROLES:
                raise GateInputError("role", f"role must be one of {', '.join(CAMERA_ROLES)}")
        elif name == "site":
            try:
                value = clean_site(value)
            except ValueError as exc:
                raise GateInputError("site", str(exc)) from None
        elif name == "allow_group":
            value = (value or "").strip() or None
            if value is not None and session.get(KnownGroup, value) is None:
                raise GateInputError("allow_group", f"no such group: {value[:64]!r} (add a known plate of "
                                                    "that group on /known first)")
        out[name] = value
    return out


def update_camera(session: Session, user: User | None, ip: str | None, camera: Camera,
                  changes: dict[str, Any]) -> dict[str, list[Any]]:
    """Apply checked changes, audit what changed and return {field: [old, new]}."""
    changes = checked_changes(session, changes)
    place = [changes.get(name, getattr(camera, name)) for name in ("latitude", "longitude")]
    if (place[0] is None) != (place[1] is None):  # a camera is on the map at a point, or not (SPEC §12)
        missing = "latitude" if place[0] is None else "longitude"
        raise GateInputError(missing, "give both latitude and longitude, or neither")
    changed = {name: [getattr(camera, name), value] for name, value in changes.items()
               if getattr(camera, name) != value}
    for name, (_, value) in changed.items():
        setattr(camera, name, value)
    session.flush()
    if changed:
        audit(session, "camera.update", user, target=f"camera:{camera.id}", detail=changed, ip=ip)
    return changed


def correction_counts(session: Session) -> dict[str, int]:
    """How many reads of each camera were corrected (the partial index ix_lpr_records_corrected)."""
    return dict(session.execute(select(Record.camera_id, func.count()).where(Record.corrected_at.is_not(None))
                                .group_by(Record.camera_id)).all())
