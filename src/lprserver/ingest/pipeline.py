"""The one ingest pipeline: validate → save image → insert row → match blacklist → answer.

Every door (Socket.IO, raw WebSocket, HTTP) calls these functions and only
translates payloads and answers. The pipeline owns its transaction because
the delivery guarantee (SPEC §2.5) is about when the commit happens.
"""

import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..blacklist import match_blacklist
from ..cameras import CameraRefused, authorize_camera, touch_camera
from ..images import (
    CheckedImage,
    FilesystemImageStore,
    ImageRejected,
    StoredImage,
    check_image,
    decode_image_data,
)
from ..models import BlacklistDetection, Camera, HealthReport, Record, utcnow
from ..plates import is_valid_normalized, match_type, normalize_plate
from ..webhooks import enqueue as enqueue_webhooks
from .errors import IngestError
from .validation import HealthIn, ReadIn, RegisterIn, confidence_percent, parse, to_utc

log = logging.getLogger("lprserver.ingest")


def run_here(function: Callable, *args: Any) -> Any:
    """Run a blocking step in the calling thread (the web app, the CLI, tests)."""
    return function(*args)


@dataclass(frozen=True)
class IngestSettings:
    auth: str
    image_max_bytes: int
    image_max_pixels: int
    timezone: str
    # How blocking steps (image decoding, fsync) run: the daemon hands them to
    # real threads so that one camera's fsync does not stall every other camera.
    offload: Callable[..., Any] = run_here

    @classmethod
    def from_config(cls, config, offload: Callable[..., Any] = run_here) -> "IngestSettings":
        return cls(
            auth=config["INGEST_AUTH"],
            image_max_bytes=config["IMAGE_MAX_BYTES"],
            image_max_pixels=config["IMAGE_MAX_PIXELS"],
            timezone=config["TIMEZONE"],
            offload=offload,
        )


@dataclass
class ReadResult:
    record_id: int
    duplicate: bool
    blacklisted: bool
    camera_id: str
    live: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        return {
            "status": "success",
            "record_id": self.record_id,
            "duplicate": self.duplicate,
            "blacklisted": self.blacklisted,
        }


@contextmanager
def database_errors(session: Session):
    """Turn a database that cannot take the write now into an `unavailable` answer."""
    try:
        yield
    except sa_exc.IntegrityError:
        raise
    except (sa_exc.DBAPIError, sa_exc.TimeoutError) as exc:
        session.rollback()
        log.warning("event=database_unavailable error=%s", exc.__class__.__name__)
        raise IngestError("unavailable", "the database cannot take the write now; retry later") from None


def _authorize(session: Session, camera_id: str, token: str | None, settings: IngestSettings,
               now: datetime) -> Camera:
    try:
        return authorize_camera(session, camera_id, token, settings.auth, now)
    except CameraRefused:
        session.rollback()
        raise IngestError("unauthorized", "camera token missing or wrong", "token") from None


def register_camera(session: Session, settings: IngestSettings, payload: Any,
                    token: str | None = None) -> dict[str, Any]:
    """Register (or re-register) a camera and return the answer."""
    data = parse(RegisterIn, payload)
    now = utcnow()
    with database_errors(session):
        camera = _authorize(session, data.camera_id, token or data.token, settings, now)
        touch_camera(camera, now, data.hostname)
        camera.online = True
        for name in ("name", "location", "latitude", "longitude", "version"):
            value = getattr(data, name)
            if value is not None:
                setattr(camera, name, value)
        session.commit()
    return {"status": "success", "camera_id": data.camera_id, "server_time": now.isoformat()}


def record_health(session: Session, settings: IngestSettings, payload: Any,
                  token: str | None = None) -> dict[str, Any]:
    """Store a camera's health report and keep it as the camera's latest."""
    data = parse(HealthIn, payload)
    now = utcnow()
    with database_errors(session):
        camera = _authorize(session, data.camera_id, token or data.token, settings, now)
        touch_camera(camera, now, data.hostname)
        report = HealthReport(
            camera_id=camera.id, component=data.component, status=data.status,
            message=data.message, system_info=data.system_info,
            reported_at=to_utc(data.timestamp, settings.timezone, now), received_at=now,
        )
        session.add(report)
        camera.health_status, camera.health_message, camera.health_at = data.status, data.message, now
        session.flush()
        report_id = report.id
        session.commit()
    return {"status": "success", "record_id": report_id}


def ingest_read(session: Session, store: FilesystemImageStore, settings: IngestSettings,
                payload: Any, token: str | None = None) -> ReadResult:
    """Validate, store and match one plate read; return what to answer and to broadcast."""
    read = _validated_read(payload)
    data = read.data
    now = utcnow()
    with database_errors(session):
        camera = _authorize(session, data.camera_id, token or data.token, settings, now)
        earlier = _earlier_read(session, data.camera_id, data.event_id)
        if earlier:
            session.rollback()
            return earlier
    try:
        read.image = _checked_image(data.image_data, settings) if data.image_data else None
    except IngestError:
        session.rollback()
        raise
    stored = _save_image(store, read.image, data.camera_id, now, settings) if read.image else None
    record = _new_record(read, camera, now, settings, stored)
    try:
        with database_errors(session):
            result = _insert_read(session, camera, record, now, data.hostname)
            session.commit()
    except sa_exc.IntegrityError:
        # Another connection stored the same (camera_id, event_id) first.
        session.rollback()
        store.delete(*_paths(stored))
        with database_errors(session):
            earlier = _earlier_read(session, data.camera_id, data.event_id)
        if earlier is None:
            raise
        return earlier
    except BaseException:
        session.rollback()
        store.delete(*_paths(stored))
        raise
    return result


@dataclass
class _CheckedRead:
    data: ReadIn
    plate: str
    confidence: float | None
    metadata: dict[str, Any] | None
    image: CheckedImage | None = None


def _validated_read(payload: Any) -> _CheckedRead:
    """Check the fields of a read (all but the image) before anything is written."""
    data = parse(ReadIn, payload)
    plate = normalize_plate(data.plate_number)
    if not is_valid_normalized(plate):
        raise IngestError(
            "invalid_plate", "plate_number is empty or over 32 characters once normalised", "plate_number"
        )
    return _CheckedRead(data, plate, confidence_percent(data.confidence), data.metadata())


def _new_record(read: _CheckedRead, camera: Camera, now: datetime, settings: IngestSettings,
                stored: StoredImage | None) -> Record:
    data = read.data
    record = Record(
        camera_id=camera.id, event_id=data.event_id, plate_number=data.plate_number,
        plate_normalized=read.plate, province=data.province, confidence=read.confidence,
        captured_at=to_utc(data.timestamp, settings.timezone, now), received_at=now,
        location=data.location or camera.location, latitude=data.latitude,
        longitude=data.longitude, vehicle_type=data.vehicle_type,
        vehicle_color=data.vehicle_color, direction=data.direction, extra=read.metadata,
    )
    if stored:
        record.image_path, record.thumbnail_path = stored.path, stored.thumbnail_path
        record.image_sha256, record.image_bytes = stored.sha256, stored.size
    return record


def _checked_image(image_data: str, settings: IngestSettings):
    try:
        data = decode_image_data(image_data, settings.image_max_bytes)
        return settings.offload(check_image, data, settings.image_max_pixels)
    except ImageRejected as exc:
        raise IngestError("invalid_image", str(exc), "image_data") from None


def _save_image(store: FilesystemImageStore, image, camera_id: str, now: datetime,
                settings: IngestSettings) -> StoredImage:
    try:
        return settings.offload(store.save, image, camera_id, now)
    except OSError as exc:
        log.warning("event=image_store_unavailable error=%r", str(exc))
        raise IngestError("unavailable", "the image store cannot take the write now; retry later") from None


def _paths(stored: StoredImage | None) -> tuple[str | None, ...]:
    return (stored.path, stored.thumbnail_path) if stored else ()


def _earlier_read(session: Session, camera_id: str, event_id: str | None) -> ReadResult | None:
    if event_id is None:
        return None
    row = session.execute(
        select(Record.id, Record.blacklisted).where(
            Record.camera_id == camera_id, Record.event_id == event_id
        )
    ).first()
    if row is None:
        return None
    return ReadResult(record_id=row.id, duplicate=True, blacklisted=row.blacklisted, camera_id=camera_id)


def _insert_read(session: Session, camera: Camera, record: Record, now: datetime,
                 hostname: str | None) -> ReadResult:
    touch_camera(camera, now, hostname)
    session.add(record)
    hits = match_blacklist(session, record.plate_normalized, now)
    record.blacklisted = bool(hits)
    session.flush()
    detections = [
        BlacklistDetection(record_id=record.id, entry_id=entry.id, detected_at=now,
                           match_type=match_type(entry.license_plate_text, record.plate_number))
        for entry in hits
    ]
    session.add_all(detections)
    session.flush()
    live = live_record(record, camera)
    alerts = [live_alert(live, entry, detection) for entry, detection in zip(hits, detections, strict=True)]
    # Webhook events are queued in this transaction; the delivery worker sends them later.
    enqueue_webhooks(session, [("record.created", live)] + [("blacklist.hit", a) for a in alerts], now)
    return ReadResult(record.id, False, bool(hits), camera.id, live, alerts)


def live_record(record: Record, camera: Camera) -> dict[str, Any]:
    """Return the metadata of a stored read that browsers receive (never image bytes)."""
    return {
        "id": record.id,
        "camera_id": record.camera_id,
        "camera_name": camera.name,
        "plate_number": record.plate_number,
        "plate_normalized": record.plate_normalized,
        "province": record.province,
        "confidence": record.confidence,
        "captured_at": record.captured_at.isoformat(),
        "received_at": record.received_at.isoformat(),
        "location": record.location,
        "blacklisted": record.blacklisted,
        "thumbnail_url": f"/api/records/{record.id}/thumbnail" if record.thumbnail_path else None,
        "image_url": f"/api/records/{record.id}/image" if record.image_path else None,
    }


def live_alert(live: dict[str, Any], entry, detection: BlacklistDetection) -> dict[str, Any]:
    """Return the blacklist alert browsers receive for one hit."""
    return {
        "detection_id": detection.id,
        "record": live,
        "entry": {
            "id": entry.id,
            "license_plate_text": entry.license_plate_text,
            "reason": entry.reason,
            "category": entry.category,
        },
        "match_type": detection.match_type,
    }
