"""Acknowledging blacklist alerts: a card holds every hit of one plate at one camera, and "acknowledge
all" every card, so one request acknowledges many hits."""

from flask import abort, jsonify, request
from flask_login import current_user
from sqlalchemy import select

from ..audit import audit
from ..auth import require_role
from ..blacklist import acknowledge_detection
from ..extensions import db
from ..models import BlacklistDetection, utcnow
from . import bp, client_ip
from .live import publish

MAX_AT_ONCE = 500


@bp.post("/alerts/acknowledge")
@require_role("admin", "operator")
def acknowledge():
    """Record who acknowledged these hits and when (JSON `{"detection_ids": [...]}`), and close their
    cards on every open page. Hits acknowledged already keep their first acknowledgement."""
    body = request.get_json(silent=True)
    ids = body.get("detection_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not 0 < len(ids) <= MAX_AT_ONCE or \
            not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in ids):
        abort(400, f"send {{\"detection_ids\": [...]}}: 1 to {MAX_AT_ONCE} hit ids")
    query = select(BlacklistDetection).where(BlacklistDetection.id.in_(set(ids)))
    detections = db.session.scalars(query).all()
    if not detections:
        abort(404)
    now, user = utcnow(), current_user._get_current_object()
    for detection in detections:
        if acknowledge_detection(detection, user.id, now):
            audit(db.session, "blacklist.acknowledge", user, target=f"detection:{detection.id}",
                  detail={"record_id": detection.record_id, "entry_id": detection.entry_id}, ip=client_ip())
    db.session.commit()
    answers = [{"detection_id": d.id, "acknowledged_at": d.acknowledged_at.isoformat(),
                "acknowledged_by": d.acknowledged_by, "by": user.username} for d in detections]
    for answer in answers:
        publish("blacklist_ack", answer)
    return jsonify({"acknowledged": answers})
