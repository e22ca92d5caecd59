"""Overstays (SPEC §10 "Visits"): an open visit longer than its group's `max_stay_minutes` raises one
`overstay` alert (SPEC §11). The ingest daemon checks every OVERSTAY_CHECK_SECONDS; callers commit."""

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from .alerts import Outbox, Raised, raise_alert
from .extensions import db
from .models import Alert, KnownGroup, Record, Visit, utcnow
from .records import camera_names
from .visits import stay_seconds
from .wire import alert_event, record_json

log = logging.getLogger("lprserver.overstay")

MAX_AT_ONCE = 500  # alerts raised per check; the rest wait for the next one


def check_overstays(session: Session, now: datetime, timezone: str = "UTC") -> list[Alert]:
    """Raise an `overstay` alert for each open visit past its group's limit that has none yet, and mark
    the visit (`overstay_alerted_at`) so it is raised once; queue the alerts' deliveries (their rules'
    hours in `timezone`). Returns the alerts, flushed (with ids)."""
    limits = dict(session.execute(select(KnownGroup.name, KnownGroup.max_stay_minutes)
                                  .where(KnownGroup.max_stay_minutes.is_not(None))).all())
    alerts: list[Alert] = []
    for group, minutes in sorted(limits.items()):
        # Open visits only (the partial index), of this group, entered before the limit's start; locked
        # until the commit and skipped by another daemon's check meanwhile, so that with several daemons
        # (SPEC §14) an overstay still raises one alert.
        visits = session.scalars(
            select(Visit).where(Visit.exited_at.is_(None), Visit.overstay_alerted_at.is_(None),
                                Visit.group_name == group,
                                Visit.entered_at < now - timedelta(minutes=minutes))
            .order_by(Visit.entered_at, Visit.id).limit(MAX_AT_ONCE - len(alerts))
            .with_for_update(skip_locked=True)
        ).all()
        for visit in visits:
            visit.overstay_alerted_at = now
            detail = {"group": group, "max_stay_minutes": minutes, "entered_at": visit.entered_at.isoformat(),
                      "stay_seconds": stay_seconds(visit, now)}
            alerts.append(raise_alert(
                session, "overstay", now, plate=visit.plate_normalized, province_code=visit.province_code,
                camera_id=visit.entry_camera_id, record_id=visit.entry_record_id, visit_id=visit.id,
                detail=detail))
        if len(alerts) >= MAX_AT_ONCE:
            break
    session.flush()
    Outbox(session, timezone).queue([Raised(alert, True) for alert in alerts], now)
    return alerts


def alert_events(session: Session, alerts: list[Alert]) -> list[dict]:
    """The `alert` live events of these alerts, each with its entry read's JSON (or None)."""
    ids = [a.record_id for a in alerts if a.record_id is not None]
    records = {r.id: r for r in session.scalars(select(Record).where(Record.id.in_(ids)))} if ids else {}
    names = camera_names(session) if records else {}
    events = []
    for alert in alerts:
        record = records.get(alert.record_id)
        shown = record_json(record, names.get(record.camera_id)) if record else None
        events.append(alert_event(alert, shown))
    return events


class OverstayChecker:
    """Checks for overstays every `interval` seconds in a (green, once patched) daemon thread and
    publishes each new alert as the `alert` live event."""

    def __init__(self, app: Flask, interval: float, publish: Callable[[str, dict], None] | None = None):
        self.app, self.interval = app, interval
        self.publish = publish or (lambda event, data: None)
        self.stopped = threading.Event()

    def start(self) -> "OverstayChecker":
        threading.Thread(target=self.run, name="overstay-check", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # the check must outlive a database hiccup
                log.exception("event=overstay_check_failed")

    def run_once(self) -> int:
        with self.app.app_context():
            try:
                alerts = check_overstays(db.session, utcnow(), self.app.config["TIMEZONE"])
                events = alert_events(db.session, alerts) if alerts else []
                db.session.commit()
            finally:
                db.session.remove()
        for event in events:
            log.info("event=overstay_alert plate=%s alert_id=%s", event["plate"], event["id"])
            self.publish("alert", event)
        return len(events)
