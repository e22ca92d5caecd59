"""A camera's own messages: `camera_register` and `health_status` (README "Sending reads")."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..cameras import CameraRefused, authorize_camera, touch_camera
from ..models import Camera, HealthReport, utcnow
from ..times import to_utc
from .database_errors import database_errors
from .errors import IngestError
from .pipeline import IngestSettings
from .validation import HealthIn, RegisterIn, parse


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
