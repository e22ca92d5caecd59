"""Acknowledging alerts from the pop-up: a card holds every hit of one plate at one camera, and
"acknowledge all" every card, so one request acknowledges many. Blacklist cards send their hits'
`detection_ids` (the hits' alerts are marked too); the cards of other triggers send `alert_ids`."""

from flask import abort, jsonify, request
from flask_login import current_user
from sqlalchemy import select

from ..alert_list import acknowledge_alerts, acknowledge_detection_alerts
from ..audit import audit
from ..auth import require_role
from ..blacklist import acknowledge_detection
from ..extensions import db
from ..models import Alert, BlacklistDetection, utcnow
from . import bp, client_ip
from .live import publish

MAX_AT_ONCE = 500


def _ids(body: dict, name: str) -> list[int] | None:
    ids = body.get(name, [])
    if not isinstance(ids, list) or len(ids) > MAX_AT_ONCE or \
            not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in ids):
        return None
    return ids


@bp.post("/alerts/acknowledge")
@require_role("admin", "operator")
def acknowledge():
    """Record who acknowledged these hits and alerts and when (JSON `{"detection_ids": [...],
    "alert_ids": [...]}`, either or both), and close their cards on every open page. Ones acknowledged
    already keep their first acknowledgement."""
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    detection_ids, alert_ids = _ids(body, "detection_ids"), _ids(body, "alert_ids")
    if detection_ids is None or alert_ids is None or \
            not 0 < len(detection_ids) + len(alert_ids) <= MAX_AT_ONCE:
        abort(400, f"send {{\"detection_ids\": [...]}} and/or {{\"alert_ids\": [...]}}: "
                   f"1 to {MAX_AT_ONCE} ids in all")
    detections = db.session.scalars(
        select(BlacklistDetection).where(BlacklistDetection.id.in_(set(detection_ids)))).all() \
        if detection_ids else []
    alerts = db.session.scalars(select(Alert).where(Alert.id.in_(set(alert_ids)))).all() if alert_ids else []
    if not detections and not alerts:
        abort(404)
    now, user = utcnow(), current_user._get_current_object()
    for detection in detections:
        if acknowledge_detection(detection, user.id, now):
            audit(db.session, "blacklist.acknowledge", user, target=f"detection:{detection.id}",
                  detail={"record_id": detection.record_id, "entry_id": detection.entry_id}, ip=client_ip())
    if detections:
        acknowledge_detection_alerts(db.session, [d.id for d in detections], user, now)
    events = acknowledge_alerts(db.session, list(alerts), user, now, client_ip())
    db.session.commit()
    answers = [{"detection_id": d.id, "acknowledged_at": d.acknowledged_at.isoformat(),
                "acknowledged_by": d.acknowledged_by, "by": user.username} for d in detections]
    for answer in answers:
        publish("blacklist_ack", answer)
    for event, data in events:
        publish(event, data)
    return jsonify({"acknowledged": answers + [data for event, data in events if event == "blacklist_ack"],
                    "alerts": [data for event, data in events if event == "alert_ack"]})
