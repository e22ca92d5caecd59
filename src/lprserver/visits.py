"""Visits (SPEC §10 "Visits"): a read at an entry camera, or sent with `direction: in`, opens a visit
of its plate; the next read at an exit camera, or with `direction: out`, closes it. A second entry
read of an open visit keeps it open; an exit with no open visit is kept as a visit with no entry.

`apply_visits` is the ingest pipeline's step, in the read's transaction; the caller commits.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Camera, Visit

# What a read's `direction` may say (any case) to open or close a visit at a camera whose role is pass.
DIRECTIONS_IN = ("in", "entry", "enter", "entering")
DIRECTIONS_OUT = ("out", "exit", "leave", "leaving")


def visit_kind(camera: Camera, direction: str | None) -> str | None:
    """`in`, `out` or None: the camera's role decides, and at a pass camera the read's direction."""
    if camera.role == "entry":
        return "in"
    if camera.role == "exit":
        return "out"
    said = (direction or "").strip().lower()
    return "in" if said in DIRECTIONS_IN else "out" if said in DIRECTIONS_OUT else None


@dataclass
class GateRead:
    record_id: int
    plate: str  # normalised
    province_code: str | None
    camera_id: str
    kind: str  # in or out
    group: str | None  # the plate's known group, for max_stay_minutes


def apply_visits(session: Session, reads: list[GateRead], now: datetime) -> list[Visit]:
    """Open and close the visits of a batch's gate reads, in order; return the visits changed."""
    if not reads:
        return []
    plates = sorted({read.plate for read in reads})
    open_visits = {v.plate_normalized: v for v in session.scalars(
        select(Visit).where(Visit.plate_normalized.in_(plates), Visit.exited_at.is_(None)))}
    changed: list[Visit] = []
    for read in reads:
        visit = open_visits.get(read.plate)
        if read.kind == "in":
            if visit is not None:
                continue  # already on site: the visit stays open from its first entry
            visit = Visit(plate_normalized=read.plate, province_code=read.province_code,
                          group_name=read.group, entered_at=now, entry_camera_id=read.camera_id,
                          entry_record_id=read.record_id)
            session.add(visit)
            open_visits[read.plate] = visit
        elif visit is not None:
            visit.exited_at, visit.exit_camera_id, visit.exit_record_id = now, read.camera_id, read.record_id
            del open_visits[read.plate]
        else:
            visit = Visit(plate_normalized=read.plate, province_code=read.province_code,
                          group_name=read.group, exited_at=now, exit_camera_id=read.camera_id,
                          exit_record_id=read.record_id)
            session.add(visit)
        changed.append(visit)
    return changed


def stay_seconds(visit: Visit, now: datetime) -> int | None:
    """How long the vehicle stayed (so far, for an open visit); None without an entry."""
    if visit.entered_at is None:
        return None
    return max(0, int(((visit.exited_at or now) - visit.entered_at).total_seconds()))
