"""A camera's own messages: `camera_register` and `health_status` (README "Sending reads")."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..camera_offline import resolve_silence
from ..cameras import CameraRefused, authorize_camera, touch_camera
from ..models import Camera, HealthReport, utcnow
from ..times import to_utc
from .database_errors import database_errors
from .errors import IngestError
from .pipeline import IngestSettings
from .validation import HealthIn, RegisterIn, parse


def _heard_from(session: Session, settings: IngestSettings, data: Any, token: str | None,
                now: datetime, events: list | None = None) -> Camera:
    """The camera a checked message comes from, authorised and noted as heard from now; a silent
    camera's alert is resolved, its live events added to `events`."""
    try:
        camera = authorize_camera(session, data.camera_id, token or data.token, settings.auth, now)
    except CameraRefused:
        session.rollback()
        raise IngestError("unauthorized", "camera token missing or wrong", "token") from None
    touch_camera(camera, now, data.hostname)
    resolved = resolve_silence(session, camera, now)
    if events is not None:
        events += resolved
    return camera


def register_camera(session: Session, settings: IngestSettings, payload: Any,
                    token: str | None = None, events: list | None = None) -> dict[str, Any]:
    """Register (or re-register) a camera and return the answer; live events it causes go to `events`."""
    data, now = parse(RegisterIn, payload), utcnow()
    with database_errors(session):
        camera = _heard_from(session, settings, data, token, now, events)
        camera.online = True
        for name in ("name", "location", "latitude", "longitude", "version"):
            value = getattr(data, name)
            if value is not None:
                setattr(camera, name, value)
        session.commit()
    return {"status": "success", "camera_id": data.camera_id, "server_time": now.isoformat()}


def record_health(session: Session, settings: IngestSettings, payload: Any,
                  token: str | None = None, events: list | None = None) -> dict[str, Any]:
    """Store a camera's health report and keep it as the camera's latest; live events it causes go to
    `events`."""
    data, now = parse(HealthIn, payload), utcnow()
    with database_errors(session):
        camera = _heard_from(session, settings, data, token, now, events)
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
