"""Listing and acknowledging alerts (SPEC §11) for `GET /api/alerts`, its acknowledge path, the pop-up's
acknowledge button and `/live/missed`. Callers commit, then publish the live events returned.

Sites (SPEC §15): an alert belongs to its camera (`camera_id`: the read's camera, an overstay's entry
camera, the silent camera); a user limited to sites lists, reads and acknowledges only the alerts of
their sites' cameras (`scope`), and one of another site is not found."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .audit import audit
from .blacklist import acknowledge_detection
from .models import Alert, AlertAttempt, AlertDelivery, BlacklistDetection, Camera, Record, User
from .records import camera_names
from .sites import EVERYWHERE, Scope
from .wire import alert_event, alert_json, record_json

TRIGGERS = ("blacklist", "not_on_list", "overstay", "camera_offline")
CARD_TRIGGERS = ("not_on_list", "overstay", "camera_offline")  # the `alert` event's (blacklist has its own)
COUNT_LIMIT = 10_000


@dataclass
class AlertFilter:
    trigger: str | None = None
    camera_id: str | None = None
    acknowledged: bool | None = None


def alerts_query(f: AlertFilter, scope: Scope = EVERYWHERE) -> Select:
    query = select(Alert)
    if scope.limited:
        query = query.where(scope.cameras_clause(Alert.camera_id))
    if f.trigger:
        query = query.where(Alert.trigger == f.trigger)
    if f.camera_id:
        query = query.where(Alert.camera_id == f.camera_id)
    if f.acknowledged is not None:
        column = Alert.acknowledged_at
        query = query.where(column.is_not(None) if f.acknowledged else column.is_(None))
    return query


def find_alerts(session: Session, f: AlertFilter, page: int, per_page: int, *,
                scope: Scope = EVERYWHERE) -> list[Alert]:
    """Alerts newest first (ids grow with time; `ix_alerts_trigger_id` serves a trigger's)."""
    return list(session.scalars(alerts_query(f, scope).order_by(Alert.id.desc())
                                .limit(per_page).offset((page - 1) * per_page)))


def count_alerts(session: Session, f: AlertFilter, *, scope: Scope = EVERYWHERE) -> tuple[int, str]:
    capped = alerts_query(f, scope).with_only_columns(Alert.id).limit(COUNT_LIMIT + 1).subquery()
    total = session.scalar(select(func.count()).select_from(capped)) or 0
    return (COUNT_LIMIT, "at_least") if total > COUNT_LIMIT else (total, "exact")


def visible_alert(session: Session, alert_id: int, scope: Scope = EVERYWHERE) -> Alert | None:
    """The alert, or None when there is none or it is of a camera outside `scope`."""
    alert = session.get(Alert, alert_id)
    if alert is None or (scope.limited and not scope.sees_site(_camera_site(session, alert.camera_id))):
        return None
    return alert


def visible_alerts(session: Session, ids: set[int], scope: Scope = EVERYWHERE) -> list[Alert]:
    """The alerts of these ids that `scope` sees (others are left out, as if missing)."""
    query = select(Alert).where(Alert.id.in_(ids))
    if scope.limited:
        query = query.where(scope.cameras_clause(Alert.camera_id))
    return list(session.scalars(query))


def _camera_site(session: Session, camera_id: str | None) -> str | None:
    if camera_id is None:
        return None
    return session.scalar(select(Camera.site).where(Camera.id == camera_id))


def usernames(session: Session, alerts: list[Alert]) -> dict[int, str]:
    ids = {a.acknowledged_by for a in alerts if a.acknowledged_by is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def alerts_json(session: Session, alerts: list[Alert]) -> list[dict[str, Any]]:
    names = usernames(session, alerts)
    return [alert_json(a, names.get(a.acknowledged_by)) for a in alerts]


def alert_deliveries(session: Session, alert_id: int) -> dict[str, list[dict[str, Any]]]:
    """An alert's `deliveries` (every attempt, oldest first) and `queued` (each delivery's state), as
    `GET /api/alerts/<id>` shows them (SPEC §11 "Delivery")."""
    attempts = session.scalars(select(AlertAttempt).where(AlertAttempt.alert_id == alert_id)
                               .order_by(AlertAttempt.at, AlertAttempt.id)).all()
    queued = session.scalars(select(AlertDelivery).where(AlertDelivery.alert_id == alert_id)
                             .order_by(AlertDelivery.id)).all()
    return {
        "deliveries": [{"channel": a.channel, "at": a.at.isoformat(), "ok": a.ok, "error": a.error}
                       for a in attempts],
        "queued": [{"channel": d.channel, "status": d.status, "escalation": d.escalation,
                    "attempts": d.attempts,
                    "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None}
                   for d in queued],
    }


def pending_alert_events(session: Session, limit: int = 20, *,
                         scope: Scope = EVERYWHERE) -> list[dict[str, Any]]:
    """The `alert` events of the newest unacknowledged alerts other than blacklist hits, oldest first,
    for a page that (re)connects."""
    alerts = list(session.scalars(
        select(Alert).where(Alert.trigger.in_(CARD_TRIGGERS), Alert.acknowledged_at.is_(None),
                            scope.cameras_clause(Alert.camera_id))
        .order_by(Alert.id.desc()).limit(limit)))
    ids = [a.record_id for a in alerts if a.record_id is not None]
    records = {r.id: r for r in session.scalars(select(Record).where(Record.id.in_(ids)))} if ids else {}
    names = camera_names(session) if records else {}
    shown = []
    for alert in reversed(alerts):
        record = records.get(alert.record_id)
        shown.append(alert_event(alert, record_json(record, names.get(record.camera_id)) if record else None))
    return shown


def acknowledge_alerts(session: Session, alerts: list[Alert], user: User, now: datetime,
                       ip: str | None) -> list[tuple[str, dict[str, Any]]]:
    """Mark these alerts (and a blacklist alert's hit) acknowledged by `user`, audited; alerts
    acknowledged already keep their first acknowledgement. Returns the live events that close their
    cards: `blacklist_ack` for a hit (its card is the hit's), `alert_ack` for the others."""
    detection_ids = {a.detection_id for a in alerts if a.trigger == "blacklist" and a.detection_id}
    detections = {d.id: d for d in session.scalars(
        select(BlacklistDetection).where(BlacklistDetection.id.in_(detection_ids)))} if detection_ids else {}
    events = []
    for alert in alerts:
        if alert.acknowledged_at is None:
            alert.acknowledged_by, alert.acknowledged_at = user.id, now
            audit(session, "alert.acknowledge", user, target=f"alert:{alert.id}",
                  detail={"trigger": alert.trigger, "plate": alert.plate, "record_id": alert.record_id},
                  ip=ip)
        detection = detections.get(alert.detection_id)
        if detection is not None and acknowledge_detection(detection, user.id, now):
            audit(session, "blacklist.acknowledge", user, target=f"detection:{detection.id}",
                  detail={"record_id": detection.record_id, "entry_id": detection.entry_id}, ip=ip)
        by = session.get(User, alert.acknowledged_by).username if alert.acknowledged_by else None
        if detection is not None:
            events.append(("blacklist_ack", {
                "detection_id": detection.id, "alert_id": alert.id, "camera_id": alert.camera_id,
                "acknowledged_at": detection.acknowledged_at.isoformat(),
                "acknowledged_by": detection.acknowledged_by, "by": by}))
        else:
            events.append(("alert_ack", {"alert_id": alert.id, "trigger": alert.trigger,
                                         "camera_id": alert.camera_id,
                                         "acknowledged_at": alert.acknowledged_at.isoformat(),
                                         "acknowledged_by": alert.acknowledged_by, "by": by}))
    return events


def acknowledge_detection_alerts(session: Session, detection_ids: list[int], user: User,
                                 now: datetime) -> int:
    """Mark the alerts of these blacklist hits acknowledged too (the hits' own route does the hits);
    returns how many were marked."""
    alerts = session.scalars(select(Alert).where(Alert.detection_id.in_(detection_ids),
                                                 Alert.acknowledged_at.is_(None))).all()
    for alert in alerts:
        alert.acknowledged_by, alert.acknowledged_at = user.id, now
    return len(alerts)
