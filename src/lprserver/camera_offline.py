"""Silent cameras (SPEC §11 "Camera offline"): a camera with no read and no health report for
CAMERA_OFFLINE_MINUTES raises one `camera_offline` alert; its next read, report or registration resolves
it. The ingest daemon checks every CAMERA_OFFLINE_CHECK_SECONDS (at most 30); callers commit.

A camera's open alert is `Camera.offline_alert_id`, so the pipeline, which has the batch's cameras
loaded already, resolves it without a query of its own.
"""

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .alerts import Outbox, Raised, raise_alert
from .extensions import db
from .models import Alert, Camera, utcnow
from .wire import alert_event, camera_status

log = logging.getLogger("lprserver.camera_offline")

MAX_AT_ONCE = 500  # cameras marked silent per check; the rest wait for the next one
Event = tuple[str, dict[str, Any]]


def check_silent_cameras(session: Session, now: datetime, minutes: float, timezone: str) -> list[Event]:
    """Raise `camera_offline` for each camera heard from before, silent for `minutes`, with no open
    alert; queue its deliveries. Returns the live events (`alert`, `camera_status`), alerts flushed."""
    cutoff = now - timedelta(minutes=minutes)
    # Locked until the commit, and skipped by another daemon's check meanwhile: with several daemons
    # (SPEC §14) a silent camera still raises one alert. (SQLite has one writer and ignores it.)
    cameras = session.scalars(
        select(Camera).where(Camera.offline_alert_id.is_(None), Camera.last_seen.is_not(None),
                             Camera.last_seen < cutoff,
                             or_(Camera.health_at.is_(None), Camera.health_at < cutoff))
        .order_by(Camera.last_seen, Camera.id).limit(MAX_AT_ONCE)
        .with_for_update(skip_locked=True)).all()
    raised: list[tuple[Camera, Alert]] = []
    for camera in cameras:
        heard = max(t for t in (camera.last_seen, camera.health_at) if t is not None)
        raised.append((camera, raise_alert(session, "camera_offline", now, camera_id=camera.id,
                                           detail={"minutes": minutes, "last_seen": heard.isoformat(),
                                                   "camera_name": camera.name})))
    if not raised:
        return []
    session.flush()
    for camera, alert in raised:
        camera.offline_alert_id = alert.id
    Outbox(session, timezone).queue([Raised(alert, True) for _, alert in raised], now)
    events: list[Event] = []
    for camera, alert in raised:
        events.append(("alert", alert_event(alert, None)))
        events.append(("camera_status", camera_status(camera.id, offline_alert_id=alert.id)))
    return events


def resolve_silence(session: Session, camera: Camera, now: datetime) -> list[Event]:
    """A silent camera was heard from: resolve its open alert; return the live events (none if it was
    not silent)."""
    alert_id = camera.offline_alert_id
    if alert_id is None:
        return []
    camera.offline_alert_id = None
    session.execute(update(Alert).where(Alert.id == alert_id, Alert.resolved_at.is_(None))
                    .values(resolved_at=now).execution_options(synchronize_session=False))
    return [("alert_resolved", {"id": alert_id, "trigger": "camera_offline", "camera_id": camera.id,
                                "resolved_at": now.isoformat()}),
            ("camera_status", camera_status(camera.id, offline_alert_id=None))]


class SilenceChecker:
    """Checks for silent cameras every `interval` seconds in a (green, once patched) daemon thread and
    publishes what it finds live."""

    def __init__(self, app: Flask, publish: Callable[[str, dict], None] | None = None):
        self.app = app
        self.minutes = app.config["CAMERA_OFFLINE_MINUTES"]
        self.interval = min(app.config["CAMERA_OFFLINE_CHECK_SECONDS"], 30.0)
        self.publish = publish or (lambda event, data: None)
        self.stopped = threading.Event()

    def start(self) -> "SilenceChecker":
        threading.Thread(target=self.run, name="camera-offline-check", daemon=True).start()
        return self

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # the check must outlive a database hiccup
                log.exception("event=camera_offline_check_failed")

    def run_once(self) -> int:
        with self.app.app_context():
            try:
                events = check_silent_cameras(db.session, utcnow(), self.minutes, self.app.config["TIMEZONE"])
                db.session.commit()
            finally:
                db.session.remove()
        for event, data in events:
            if event == "alert":
                log.info("event=camera_offline camera_id=%s alert_id=%s", data["camera_id"], data["id"])
            self.publish(event, data)
        return sum(1 for event, _ in events if event == "alert")
