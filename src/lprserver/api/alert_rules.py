"""Alert rules (SPEC §11 "Rules"): where else an alert is delivered. Everyone signed in reads them;
only admins create, change or delete them, audited.

The bodies are checked by `alert_rules.validate_rule` (the same check the rule's fields need wherever
they come from) rather than by webargs, so a refusal names every field at fault, not the first one:
`{"error": {"code": "validation_error", "message", "field", "fields": {field: why}}}`. The marshmallow
schema below only documents the body."""

from typing import Any

import marshmallow as ma
from flask import jsonify, request
from flask_login import current_user, login_required
from marshmallow import validate
from sqlalchemy import func, select

from ..alert_rules import (
    FIELDS,
    MAX_ESCALATION_MINUTES,
    MAX_ITEMS,
    TRIGGERS,
    RuleInvalid,
    apply_rule,
    rule_json,
    validate_rule,
)
from ..audit import audit
from ..auth import require_every_site, require_role
from ..extensions import db
from ..models import AlertRule, utcnow
from . import bp
from .errors import ErrorBody

CHANNEL_DESCRIPTION = "`email:<address>`, `line:<U, C or R and 32 hex digits>`, `mqtt` or `webhook:<id>`"


class AlertRuleIn(ma.Schema):
    """A rule to create."""

    trigger = ma.fields.String(required=True, validate=validate.OneOf(TRIGGERS))
    channels = ma.fields.List(ma.fields.String(), required=True,
                              validate=validate.Length(min=1, max=MAX_ITEMS),
                              metadata={"description": f"where the alert goes: {CHANNEL_DESCRIPTION}"})
    categories = ma.fields.List(ma.fields.String(validate=validate.Length(min=1, max=64)),
                                validate=validate.Length(max=MAX_ITEMS), metadata={
                                    "description": "only blacklist hits of these categories; empty: all"})
    cameras = ma.fields.List(ma.fields.String(validate=validate.Length(min=1, max=64)),
                             validate=validate.Length(max=MAX_ITEMS),
                             metadata={"description": "only alerts of these camera ids; empty: all"})
    hours = ma.fields.String(allow_none=True, metadata={
        "description": "`HH:MM-HH:MM` in TIMEZONE, start included, end excluded; an end before the start "
                       "runs past midnight (`22:00-06:00`); null or absent: all day",
        "pattern": r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"})
    escalate_after_minutes = ma.fields.Integer(
        allow_none=True, validate=validate.Range(min=1, max=MAX_ESCALATION_MINUTES),
        metadata={"description": "deliver once more, to `escalate_to`, after this long unacknowledged"})
    escalate_to = ma.fields.List(ma.fields.String(), validate=validate.Length(max=MAX_ITEMS), metadata={
        "description": f"channels of the escalation: {CHANNEL_DESCRIPTION}"})
    active = ma.fields.Boolean(metadata={"description": "an inactive rule delivers nothing (default true)"})
    description = ma.fields.String(allow_none=True, validate=validate.Length(max=255))


class AlertRulePatch(AlertRuleIn):
    """The fields of a rule to change; the others keep their values."""

    trigger = ma.fields.String(validate=validate.OneOf(TRIGGERS))
    channels = ma.fields.List(ma.fields.String(), validate=validate.Length(min=1, max=MAX_ITEMS),
                              metadata={"description": f"where the alert goes: {CHANNEL_DESCRIPTION}"})


class AlertRuleSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    trigger = ma.fields.String(required=True, validate=validate.OneOf(TRIGGERS))
    categories = ma.fields.List(ma.fields.String(), required=True)
    cameras = ma.fields.List(ma.fields.String(), required=True)
    hours = ma.fields.String(required=True, allow_none=True)
    channels = ma.fields.List(ma.fields.String(), required=True)
    escalate_after_minutes = ma.fields.Integer(required=True, allow_none=True)
    escalate_to = ma.fields.List(ma.fields.String(), required=True)
    active = ma.fields.Boolean(required=True)
    description = ma.fields.String(required=True, allow_none=True)
    created_at = ma.fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    updated_at = ma.fields.String(required=True, allow_none=True, metadata={"format": "date-time"})


class AlertRuleList(ma.Schema):
    rules = ma.fields.List(ma.fields.Nested(AlertRuleSchema), required=True)
    total = ma.fields.Integer(required=True)


class AlertRuleRefusalBody(ErrorBody):
    fields = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True, metadata={
        "description": "every field at fault and what is wrong with it (`body` for the body as a whole)"})


class AlertRuleRefusal(ma.Schema):
    error = ma.fields.Nested(AlertRuleRefusalBody, required=True)


RULE_BODY = {"required": True, "content": {"application/json": {"schema": AlertRuleIn}}}
PATCH_BODY = {"required": True, "content": {"application/json": {"schema": AlertRulePatch}}}
REFUSAL = ("`validation_error`: `fields` names every field at fault (a missing trigger, no channels, an "
           "unknown channel or webhook, hours that are not HH:MM-HH:MM, half an escalation…)")


def _admin():
    return current_user._get_current_object()


def _audit(action: str, rule: AlertRule, detail: dict[str, Any]) -> None:
    audit(db.session, action, user=_admin(), target=f"alert_rule:{rule.id}", detail=detail,
          ip=request.remote_addr)


def _body() -> Any:
    """The JSON body, refused (RuleInvalid) when no column could keep its text (the API's own check)."""
    from ..ingest.errors import IngestError
    from ..ingest.validation import check_values

    body = request.get_json(silent=True)
    if isinstance(body, dict):
        try:
            check_values(body)
        except IngestError as exc:
            field = (exc.field or "body").split(".")[0]
            raise RuleInvalid({field if field in FIELDS else "body": exc.message}) from None
    return body


def refused(exc: RuleInvalid):
    """The 400 answer naming every field at fault."""
    field = next(iter(exc.errors))
    response = jsonify({"error": {"code": "validation_error", "message": str(exc), "field": field,
                                  "fields": exc.errors}})
    response.status_code = 400
    return response


@bp.get("/alert-rules")
@login_required
@bp.response(200, AlertRuleList)
@bp.doc(tags=["alerts"])
def list_alert_rules():
    """List the alert rules, oldest first."""
    rules = db.session.scalars(select(AlertRule).order_by(AlertRule.id)).all()
    return jsonify({"rules": [rule_json(r) for r in rules],
                    "total": db.session.scalar(select(func.count()).select_from(AlertRule))})


@bp.get("/alert-rules/<id:rule_id>")
@login_required
@bp.response(200, AlertRuleSchema)
@bp.doc(tags=["alerts"])
def get_alert_rule(rule_id: int):
    """Return one alert rule."""
    return jsonify(rule_json(db.get_or_404(AlertRule, rule_id)))


@bp.post("/alert-rules")
@require_role("admin")
@require_every_site
@bp.response(201, AlertRuleSchema)
@bp.alt_response(400, schema=AlertRuleRefusal, description=REFUSAL)
@bp.doc(tags=["alerts"], requestBody=RULE_BODY)
def create_alert_rule():
    """Add a rule (admins): alerts of its trigger (narrowed by categories, cameras and hours) are also
    delivered to its channels, and escalated when unacknowledged."""
    try:
        fields = validate_rule(db.session, _body())
    except RuleInvalid as exc:
        return refused(exc)
    now = utcnow()
    rule = apply_rule(AlertRule(created_by=_admin().id, created_at=now), fields, now)
    db.session.add(rule)
    db.session.flush()
    _audit("alert_rule.create", rule, fields)
    db.session.commit()
    return jsonify(rule_json(rule)), 201


@bp.patch("/alert-rules/<id:rule_id>")
@require_role("admin")
@require_every_site
@bp.response(200, AlertRuleSchema)
@bp.alt_response(400, schema=AlertRuleRefusal, description=REFUSAL)
@bp.doc(tags=["alerts"], requestBody=PATCH_BODY)
def update_alert_rule(rule_id: int):
    """Change a rule (admins): only the fields sent change."""
    rule = db.get_or_404(AlertRule, rule_id)
    try:
        fields = validate_rule(db.session, _body(), current=rule)
    except RuleInvalid as exc:
        return refused(exc)
    apply_rule(rule, fields, utcnow())
    _audit("alert_rule.update", rule, fields)
    db.session.commit()
    return jsonify(rule_json(rule))


@bp.delete("/alert-rules/<id:rule_id>")
@require_role("admin")
@require_every_site
@bp.response(204)
@bp.doc(tags=["alerts"])
def delete_alert_rule(rule_id: int):
    """Delete a rule (admins). What it queued stays queued and listed; its deliveries keep no rule."""
    rule = db.get_or_404(AlertRule, rule_id)
    _audit("alert_rule.delete", rule, {k: v for k, v in rule_json(rule).items()
                                       if k not in ("id", "created_at", "updated_at")})
    db.session.delete(rule)
    db.session.commit()
    return "", 204
