"""A plate's history (SPEC §10 "A plate's page"): where and when it was read, the lists naming it,
its corrections, its sightings newest first and its route.

Every query on the reads goes through `ix_lpr_records_plate_id` (plate_normalized, id) INCLUDE
(camera_id, received_at): the count and the per-camera figures are index-only scans on PostgreSQL,
first and last seen are the rows with the smallest and largest id, sightings are pages of the index
newest first (`before_id`, as fast at any depth), the route is the newest ROUTE_LIMIT of them.
The page and `GET /api/plates/<plate>` show the same History.

Sites (SPEC §15): every read, camera, sighting, stop and correction comes from the cameras the caller's
`scope` sees; a plate read only at other sites has no history (404, as a plate never read). The list
entries naming the plate are not site data and are shown whole.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .hotlist import current_hotlist
from .models import BlacklistEntry, Camera, KnownPlate, Record
from .plates import is_valid_normalized, parse_plate
from .records import scoped
from .sites import EVERYWHERE, Scope

PER_PAGE = 50
MAX_PER_PAGE = 200
ROUTE_LIMIT = 500  # the route draws the newest this many sightings
CORRECTIONS_LIMIT = 100


def plate_from_path(text: str) -> str | None:
    """The normalised plate a URL names (`กข 1234`, `กข1234`, `กข 1234 กรุงเทพมหานคร` name the same),
    or None when it names none (empty, longer than a stored plate, unprintable)."""
    plate = parse_plate(text).normalized
    return plate if is_valid_normalized(plate) else None


@dataclass
class Sighting:
    record_id: int
    camera_id: str
    camera_name: str | None
    captured_at: datetime
    received_at: datetime
    confidence: float | None
    has_thumbnail: bool

    @property
    def thumbnail_url(self) -> str | None:
        return f"/api/records/{self.record_id}/thumbnail" if self.has_thumbnail else None

    def as_json(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "thumbnail_url": self.thumbnail_url, "camera_id": self.camera_id,
                "camera_name": self.camera_name, "captured_at": _iso(self.captured_at),
                "received_at": _iso(self.received_at), "confidence": self.confidence}


@dataclass
class CameraSeen:
    camera_id: str
    name: str | None
    reads: int
    last_seen: datetime | None
    latitude: float | None
    longitude: float | None

    def as_json(self) -> dict[str, Any]:
        return {"camera_id": self.camera_id, "name": self.name, "reads": self.reads,
                "last_seen": _iso(self.last_seen), "latitude": self.latitude, "longitude": self.longitude}


@dataclass
class Stop:
    """Consecutive sightings at one camera, in time order."""

    camera_id: str
    camera_name: str | None
    latitude: float | None
    longitude: float | None
    first_seen: datetime
    last_seen: datetime
    reads: int
    first_record_id: int
    last_record_id: int

    def as_json(self) -> dict[str, Any]:
        return {"camera_id": self.camera_id, "camera_name": self.camera_name, "latitude": self.latitude,
                "longitude": self.longitude, "first_seen": _iso(self.first_seen),
                "last_seen": _iso(self.last_seen), "reads": self.reads,
                "first_record_id": self.first_record_id, "last_record_id": self.last_record_id}


@dataclass
class History:
    plate: str
    province: str | None
    province_code: str | None
    reads: int
    first_seen: datetime
    last_seen: datetime
    first_record_id: int
    last_record_id: int
    cameras: list[CameraSeen]
    blacklist: list[dict[str, Any]]
    known: list[dict[str, Any]]
    corrections: list[dict[str, Any]]
    sightings: list[Sighting]
    next_before_id: int | None
    route: list[Stop]
    route_sightings: int  # how many sightings the route is drawn from (at most ROUTE_LIMIT)

    @property
    def blacklisted(self) -> bool:
        return any(entry["in_force"] for entry in self.blacklist)

    @property
    def known_now(self) -> dict[str, Any] | None:
        return next((entry for entry in self.known if entry["current"]), None)

    def as_json(self) -> dict[str, Any]:
        known = self.known_now
        return {
            "plate": self.plate, "province": self.province, "province_code": self.province_code,
            "reads": self.reads, "first_seen": _iso(self.first_seen), "last_seen": _iso(self.last_seen),
            "first_record_id": self.first_record_id, "last_record_id": self.last_record_id,
            "blacklisted": self.blacklisted,
            "known": {"id": known["id"], "name": known["name"], "group": known["group"]} if known else None,
            "cameras": [c.as_json() for c in self.cameras],
            "entries": {"blacklist": [_entry_json(e) for e in self.blacklist],
                        "known": [_entry_json(e) for e in self.known]},
            "corrections": [_entry_json(c) for c in self.corrections],
            "sightings": [s.as_json() for s in self.sightings],
            "next_before_id": self.next_before_id,
            "route": [stop.as_json() for stop in self.route],
            "route_sightings": self.route_sightings,
        }


def plate_history(session: Session, plate: str, now: datetime, before_id: int | None = None,
                  per_page: int = PER_PAGE, *, scope: Scope = EVERYWHERE) -> History | None:
    """The history of a normalised plate at the cameras `scope` sees, or None when it was never read
    there."""
    reads = reads_of(session, plate, scope=scope)
    if not reads:
        return None
    first = end_read(session, plate, newest=False, scope=scope)
    last = end_read(session, plate, newest=True, scope=scope)
    cameras = cameras_seen(session, plate, scope=scope)
    names = {c.camera_id: c.name for c in cameras}
    places = {c.camera_id: (c.latitude, c.longitude) for c in cameras}
    sightings, next_before_id = sightings_page(session, plate, names, before_id, per_page, scope=scope)
    route, route_sightings = route_of(session, plate, names, places, scope=scope)
    return History(
        plate=plate, province=last.province, province_code=last.province_code, reads=reads,
        first_seen=first.received_at, last_seen=last.received_at, first_record_id=first.id,
        last_record_id=last.id, cameras=cameras, blacklist=blacklist_entries(session, plate, now),
        known=known_entries(session, plate, now), corrections=corrections(session, plate, scope=scope),
        sightings=sightings, next_before_id=next_before_id, route=route, route_sightings=route_sightings)


def _of_plate(query, plate: str, scope: Scope):
    return scoped(query.where(Record.plate_normalized == plate), Record.camera_id, scope)


def reads_of(session: Session, plate: str, *, scope: Scope = EVERYWHERE) -> int:
    """How many reads of the plate there are (an index-only count on PostgreSQL)."""
    return session.scalar(_of_plate(select(func.count()).select_from(Record), plate, scope))


def end_read(session: Session, plate: str, newest: bool, *, scope: Scope = EVERYWHERE):
    order = Record.id.desc() if newest else Record.id.asc()
    return session.execute(_of_plate(
        select(Record.id, Record.received_at, Record.province, Record.province_code), plate, scope)
        .order_by(order).limit(1)).one()


def cameras_seen(session: Session, plate: str, *, scope: Scope = EVERYWHERE) -> list[CameraSeen]:
    """Each camera the plate was read at, most reads first (one index-only aggregate on PostgreSQL)."""
    counts = session.execute(
        _of_plate(select(Record.camera_id, func.count(), func.max(Record.received_at)), plate, scope)
        .group_by(Record.camera_id)).all()
    cams = {c.id: c for c in session.scalars(select(Camera).where(Camera.id.in_([row[0] for row in counts])))}
    seen = []
    for camera_id, n, latest in counts:
        cam = cams.get(camera_id)
        seen.append(CameraSeen(camera_id, cam.name if cam else None, n, latest,
                               cam.latitude if cam else None, cam.longitude if cam else None))
    seen.sort(key=lambda c: (-c.reads, c.camera_id))
    return seen


_SIGHTING_COLUMNS = (Record.id, Record.camera_id, Record.captured_at, Record.received_at, Record.confidence,
                     Record.thumbnail_path)


def sightings_page(session: Session, plate: str, names: dict[str, str | None], before_id: int | None,
                   per_page: int, *, scope: Scope = EVERYWHERE) -> tuple[list[Sighting], int | None]:
    """One page of the plate's reads, newest first, and the `before_id` of the next (None on the last)."""
    query = _of_plate(select(*_SIGHTING_COLUMNS), plate, scope)
    if before_id is not None:
        query = query.where(Record.id < before_id)
    rows = session.execute(query.order_by(Record.id.desc()).limit(per_page + 1)).all()
    more = len(rows) > per_page
    rows = rows[:per_page]
    page = [Sighting(r.id, r.camera_id, names.get(r.camera_id), r.captured_at, r.received_at, r.confidence,
                     bool(r.thumbnail_path)) for r in rows]
    return page, (rows[-1].id if more and rows else None)


def route_of(session: Session, plate: str, names: dict, places: dict, *,
             scope: Scope = EVERYWHERE) -> tuple[list[Stop], int]:
    """The newest ROUTE_LIMIT sightings in time order, consecutive reads at one camera as one stop. A stop
    is placed where its first read says it was, else where its camera is."""
    columns = (Record.id, Record.camera_id, Record.received_at, Record.latitude, Record.longitude)
    rows = session.execute(_of_plate(select(*columns), plate, scope)
        .order_by(Record.id.desc()).limit(ROUTE_LIMIT)).all()
    rows.sort(key=lambda r: (r.received_at, r.id))
    stops: list[Stop] = []
    for r in rows:
        if stops and stops[-1].camera_id == r.camera_id:
            stop = stops[-1]
            stop.last_seen, stop.last_record_id, stop.reads = r.received_at, r.id, stop.reads + 1
            if stop.latitude is None and r.latitude is not None and r.longitude is not None:
                stop.latitude, stop.longitude = r.latitude, r.longitude
            continue
        lat, lon = (r.latitude, r.longitude) if r.latitude is not None and r.longitude is not None \
            else places.get(r.camera_id, (None, None))
        stops.append(Stop(r.camera_id, names.get(r.camera_id), lat, lon, r.received_at, r.received_at, 1,
                          r.id, r.id))
    return stops, len(rows)


def blacklist_entries(session: Session, plate: str, now: datetime) -> list[dict[str, Any]]:
    """The blacklist entries naming the plate: every entry of this exact plate (expired and inactive ones
    too, marked so), and the active look-alike, fuzzy and pattern entries that match it."""
    exact = select(BlacklistEntry).where(BlacklistEntry.plate_normalized == plate)
    rows = {e.id: e for e in session.scalars(exact)}
    hits = current_hotlist(session, now).match(plate, plate, None, now)
    kinds = {hit.entry.id: hit.match_type for hit in hits}
    missing = [entry_id for entry_id in kinds if entry_id not in rows]
    if missing:
        others = select(BlacklistEntry).where(BlacklistEntry.id.in_(missing))
        rows.update({e.id: e for e in session.scalars(others)})
    found = []
    for entry_id in sorted(rows):
        e = rows[entry_id]
        found.append({
            "id": e.id, "license_plate_text": e.license_plate_text, "plate_normalized": e.plate_normalized,
            "match": e.match, "match_type": "exact" if e.plate_normalized == plate else kinds.get(e.id),
            "province_code": e.province_code, "category": e.category, "reason": e.reason,
            "active": e.active, "expires_at": e.expires_at,
            "in_force": e.active and (e.expires_at is None or e.expires_at > now)})
    return found


def known_entries(session: Session, plate: str, now: datetime) -> list[dict[str, Any]]:
    """The known plates (allow list) of this plate, current ones first."""
    rows = session.scalars(
        select(KnownPlate).where(KnownPlate.plate_normalized == plate).order_by(KnownPlate.id))
    found = []
    for k in rows:
        current = (k.valid_from is None or k.valid_from <= now) and \
            (k.valid_until is None or now < k.valid_until)
        found.append({"id": k.id, "plate": k.plate, "name": k.name, "group": k.group_name,
                      "province_code": k.province_code, "notes": k.notes, "valid_from": k.valid_from,
                      "valid_until": k.valid_until, "current": current})
    found.sort(key=lambda e: not e["current"])
    return found


def corrections(session: Session, plate: str, *, scope: Scope = EVERYWHERE) -> list[dict[str, Any]]:
    """The plate's reads an operator corrected (onto this plate), newest correction first."""
    rows = session.execute(
        _of_plate(select(Record.id, Record.plate_number, Record.plate_corrected, Record.corrected_by,
                         Record.corrected_at), plate, scope)
        .where(Record.corrected_at.is_not(None))
        .order_by(Record.corrected_at.desc(), Record.id.desc()).limit(CORRECTIONS_LIMIT)).all()
    return [{"record_id": r.id, "plate_number": r.plate_number, "plate_corrected": r.plate_corrected,
             "corrected_by": r.corrected_by, "corrected_at": r.corrected_at} for r in rows]


def _entry_json(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: _iso(value) if isinstance(value, datetime) else value for key, value in entry.items()}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
