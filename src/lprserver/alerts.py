"""Alerts as data (SPEC §11): every trigger that happens is a row, whether or not a rule covers it.

The ingest pipeline adds the alerts a read raises (a blacklist hit, `not_on_list` at a gate) in the
read's transaction; the overstay check adds `overstay`. Callers commit.
"""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .models import Alert


def raise_alert(session: Session, trigger: str, now: datetime, *, plate: str | None = None,
                province_code: str | None = None, camera_id: str | None = None, record_id: int | None = None,
                detection_id: int | None = None, visit_id: int | None = None,
                detail: dict[str, Any] | None = None) -> Alert:
    """Add one alert to the session (its id once flushed)."""
    alert = Alert(trigger=trigger, plate=plate, province_code=province_code, camera_id=camera_id,
                  record_id=record_id, detection_id=detection_id, visit_id=visit_id, detail=detail or None,
                  created_at=now)
    session.add(alert)
    return alert
