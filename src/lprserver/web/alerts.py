"""Acknowledging blacklist alerts."""

from flask import jsonify
from flask_login import current_user

from ..audit import audit
from ..auth import require_role
from ..extensions import db, socketio
from ..models import BlacklistDetection, utcnow
from . import bp, client_ip
from .live import LIVE_ROOM


@bp.post("/alerts/<id:detection_id>/acknowledge")
@require_role("admin", "operator")
def acknowledge(detection_id: int):
    """Record who acknowledged a hit and when, and close the alert on every open page."""
    detection = db.get_or_404(BlacklistDetection, detection_id)
    if detection.acknowledged_at is None:
        detection.acknowledged_by, detection.acknowledged_at = current_user.id, utcnow()
        audit(db.session, "blacklist.acknowledge", current_user, target=f"detection:{detection.id}",
              detail={"record_id": detection.record_id, "entry_id": detection.entry_id}, ip=client_ip())
        db.session.commit()
    answer = {"detection_id": detection.id, "acknowledged_at": detection.acknowledged_at.isoformat(),
              "acknowledged_by": detection.acknowledged_by, "by": current_user.username}
    socketio.emit("blacklist_ack", answer, to=LIVE_ROOM)
    return jsonify(answer)
