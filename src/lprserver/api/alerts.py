"""Alerts (SPEC §11): every trigger that happened, listed, read and acknowledged; a user limited to sites
sees only the alerts of their sites' cameras, and one of another site answers 404 (SPEC §15)."""

import marshmallow as ma
from flask import abort, jsonify, request
from flask_login import current_user, login_required
from marshmallow import validate

from ..alert_list import (
    TRIGGERS,
    AlertFilter,
    acknowledge_alerts,
    alert_deliveries,
    alerts_json,
    count_alerts,
    find_alerts,
    visible_alert,
)
from ..auth import require_role
from ..extensions import db
from ..models import utcnow
from ..sites import current_scope
from ..web.live import publish
from . import bp


class AlertListArgs(ma.Schema):
    trigger = ma.fields.String(validate=validate.OneOf(TRIGGERS), metadata={"enum": list(TRIGGERS)})
    camera_id = ma.fields.String(validate=validate.Length(min=1, max=64))
    acknowledged = ma.fields.Boolean()
    page = ma.fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = ma.fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class AlertSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    trigger = ma.fields.String(required=True, validate=validate.OneOf(TRIGGERS))
    plate = ma.fields.String(allow_none=True, metadata={"description": "normalised"})
    province_code = ma.fields.String(allow_none=True)
    camera_id = ma.fields.String(allow_none=True)
    record_id = ma.fields.Integer(allow_none=True, metadata={
        "description": "the read that raised it; an overstay's is the visit's entry read"})
    detection_id = ma.fields.Integer(allow_none=True, metadata={"description": "a blacklist alert's hit"})
    visit_id = ma.fields.Integer(allow_none=True, metadata={"description": "an overstay's visit"})
    detail = ma.fields.Dict(metadata={
        "description": "by trigger: blacklist `entry_id`, `match_type`, `category`; not_on_list `group`; "
                       "overstay `group`, `max_stay_minutes`, `entered_at`, `stay_seconds`"})
    created_at = ma.fields.String(required=True, metadata={"format": "date-time"})
    acknowledged_by = ma.fields.String(allow_none=True, metadata={"description": "the username"})
    acknowledged_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})
    resolved_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})
    repeat_count = ma.fields.Integer(required=True, metadata={
        "description": "how many times the same plate at the same camera raised it within "
                       "ALERT_REPEAT_SECONDS (1 for one read)"})
    last_at = ma.fields.String(required=True, metadata={"format": "date-time",
                                                        "description": "the latest repeat"})


class DeliveryShown(ma.Schema):
    channel = ma.fields.String(required=True)
    at = ma.fields.String(required=True, metadata={"format": "date-time"})
    ok = ma.fields.Boolean(required=True)
    error = ma.fields.String(allow_none=True)


class QueuedShown(ma.Schema):
    channel = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=validate.OneOf(
        ("pending", "delivered", "failed", "cancelled")))
    escalation = ma.fields.Boolean(required=True)
    attempts = ma.fields.Integer(required=True)
    next_attempt_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})


class AlertWithDeliveries(AlertSchema):
    deliveries = ma.fields.List(ma.fields.Nested(DeliveryShown), required=True, metadata={
        "description": "every attempt to deliver it through a rule's channels, oldest first"})
    queued = ma.fields.List(ma.fields.Nested(QueuedShown), required=True, metadata={
        "description": "each channel it is queued for, and where that stands (an escalation is due "
                       "`escalate_after_minutes` after the alert)"})


class AlertPage(ma.Schema):
    alerts = ma.fields.List(ma.fields.Nested(AlertSchema), required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)
    total_kind = ma.fields.String(required=True, validate=validate.OneOf(("exact", "at_least")))


@bp.get("/alerts")
@login_required
@bp.arguments(AlertListArgs, location="query", as_kwargs=True)
@bp.response(200, AlertPage)
@bp.doc(tags=["alerts"])
def list_alerts(page: int, per_page: int, trigger=None, camera_id=None, acknowledged=None):
    """List alerts, newest first: blacklist hits, reads not on a gate's list, overstays, cameras offline."""
    criteria, scope = AlertFilter(trigger, camera_id, acknowledged), current_scope()
    alerts = find_alerts(db.session, criteria, page, per_page, scope=scope)
    total, kind = count_alerts(db.session, criteria, scope=scope)
    return jsonify({"alerts": alerts_json(db.session, alerts), "page": page, "per_page": per_page,
                    "total": total, "total_kind": kind})


@bp.get("/alerts/<id:alert_id>")
@login_required
@bp.response(200, AlertWithDeliveries)
@bp.doc(tags=["alerts"])
def get_alert(alert_id: int):
    """Return one alert and its deliveries."""
    alert = visible_alert(db.session, alert_id, current_scope())
    if alert is None:
        abort(404)
    return jsonify({**alerts_json(db.session, [alert])[0], **alert_deliveries(db.session, alert.id)})


@bp.post("/alerts/<id:alert_id>/acknowledge")
@require_role("admin", "operator")
@bp.response(200, AlertSchema)
@bp.doc(tags=["alerts"])
def acknowledge_alert(alert_id: int):
    """Acknowledge an alert (operators and admins): its card closes on every open page. A blacklist
    alert's hit is acknowledged with it; acknowledging twice keeps the first."""
    alert = visible_alert(db.session, alert_id, current_scope())
    if alert is None:
        abort(404)
    events = acknowledge_alerts(db.session, [alert], current_user._get_current_object(), utcnow(),
                                request.remote_addr)
    db.session.commit()
    for event, data in events:
        publish(event, data)
    return jsonify(alerts_json(db.session, [alert])[0])
