"""The alerts page (SPEC §11) and acknowledging alerts from the pop-up.

`/alerts` lists the recent alerts, the delivery log and the rules for everyone signed in; admins add,
change and delete rules there (the page's script calls `/api/alert-rules`, which validates and audits)
and set the channels' settings (a plain form: the environment wins, secrets are never put in the page).

Pop-up acknowledgement: a card holds every hit of one plate at one camera, and "acknowledge all" every
card, so one request acknowledges many. Blacklist cards send their hits' `detection_ids` (the hits'
alerts are marked too); the cards of other triggers send `alert_ids`.

Sites (SPEC §15): a user limited to sites sees, and acknowledges, only the alerts and hits of their
sites' cameras (ids of others are left out, and none of theirs answers 404), and the delivery log and
its counts of those alerts only; the rules and channel settings are not site data."""

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..alert_list import (
    TRIGGERS,
    AlertFilter,
    acknowledge_alerts,
    acknowledge_detection_alerts,
    count_alerts,
    find_alerts,
    usernames,
    visible_alerts,
)
from ..alert_rules import rule_json
from ..alert_sender import queue_counts
from ..audit import audit
from ..auth import require_every_site, require_role
from ..blacklist import acknowledge_detection
from ..channel_config import set_channel_setting, shown_settings
from ..channels import EDITABLE_SETTINGS, EMAIL_RE
from ..extensions import db
from ..models import (
    BLACKLIST_CATEGORIES,
    Alert,
    AlertAttempt,
    AlertDelivery,
    AlertRule,
    BlacklistDetection,
    Camera,
    Webhook,
    utcnow,
)
from ..sites import Scope, current_scope
from ..statistics import hits_clause
from . import bp, client_ip
from .labels import CATEGORY_LABELS
from .live import publish

MAX_AT_ONCE = 500
PER_PAGE = 50  # alerts, and attempts of the delivery log, per page
ACKNOWLEDGED_CHOICES = {"no": False, "yes": True}
MAX_SETTING_LENGTH = 2000


def trigger_labels() -> dict[str, str]:
    """Each trigger's name on the page, in the request's language (SPEC §13)."""
    return {"blacklist": _("Blacklist"), "not_on_list": _("Not on list"), "overstay": _("Overstay"),
            "camera_offline": _("Camera offline")}


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
    scope = current_scope()
    detections = db.session.scalars(
        select(BlacklistDetection).options(joinedload(BlacklistDetection.record))
        .where(BlacklistDetection.id.in_(set(detection_ids)), hits_clause(scope))
    ).all() if detection_ids else []
    alerts = visible_alerts(db.session, set(alert_ids), scope) if alert_ids else []
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
    camera_of = {d.id: d.record.camera_id for d in detections}  # before the commit expires them
    db.session.commit()
    answers = [{"detection_id": d.id, "camera_id": camera_of[d.id],
                "acknowledged_at": d.acknowledged_at.isoformat(),
                "acknowledged_by": d.acknowledged_by, "by": user.username} for d in detections]
    for answer in answers:
        publish("blacklist_ack", answer)
    for event, data in events:
        publish(event, data)
    return jsonify({"acknowledged": answers + [data for event, data in events if event == "blacklist_ack"],
                    "alerts": [data for event, data in events if event == "alert_ack"]})


def _page_number(name: str) -> int:
    return min(max(request.args.get(name, 1, type=int), 1), 10**6)


def _attempts(page: int, scope: Scope) -> tuple[list[tuple[AlertAttempt, Alert]], bool]:
    """The delivery log, newest first, with each attempt's alert; whether there is an older page."""
    rows = db.session.execute(
        select(AlertAttempt, Alert).join(Alert, Alert.id == AlertAttempt.alert_id)
        .where(scope.cameras_clause(Alert.camera_id))
        .order_by(AlertAttempt.at.desc(), AlertAttempt.id.desc())
        .limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)).all()
    return [tuple(row) for row in rows[:PER_PAGE]], len(rows) > PER_PAGE


def _queue_counts(scope: Scope) -> dict[str, int]:
    """Deliveries by state: all of them, or those of the alerts a limited user sees."""
    if not scope.limited:
        return queue_counts(db.session)
    return dict(db.session.execute(
        select(AlertDelivery.status, func.count()).join(Alert, Alert.id == AlertDelivery.alert_id)
        .where(scope.cameras_clause(Alert.camera_id)).group_by(AlertDelivery.status)).all())


def _camera_names(scope: Scope) -> dict[str, str | None]:
    return dict(db.session.execute(select(Camera.id, Camera.name).where(scope.sites_clause(Camera.site))
                                   .order_by(Camera.id)).all())


def _render(status: int = 200, **context):
    trigger = request.args.get("trigger") if request.args.get("trigger") in TRIGGERS else None
    acknowledged = request.args.get("acknowledged", "")
    criteria = AlertFilter(trigger, None, ACKNOWLEDGED_CHOICES.get(acknowledged))
    page, log_page = _page_number("p"), _page_number("log")
    scope = current_scope()
    alerts = find_alerts(db.session, criteria, page, PER_PAGE, scope=scope)
    total, total_kind = count_alerts(db.session, criteria, scope=scope)
    attempts, older = _attempts(log_page, scope)
    rules = [rule_json(r) for r in db.session.scalars(select(AlertRule).order_by(AlertRule.id))]
    admin = current_user.role == "admin" and not scope.limited  # rules, channels, webhooks: every site
    return render_template(
        "alerts.html", alerts=alerts, total=total, total_kind=total_kind, page=page,
        more=page * PER_PAGE < total, trigger=trigger, acknowledged=acknowledged,
        acked_by=usernames(db.session, alerts), names=_camera_names(scope), attempts=attempts,
        log_page=log_page, older=older, queue=_queue_counts(scope), rules=rules, admin=admin,
        settings=shown_settings(db.session, current_app.config) if admin else [],
        webhooks=db.session.scalars(select(Webhook).order_by(Webhook.id)).all() if admin else [],
        triggers=TRIGGERS, trigger_labels=trigger_labels(), categories=BLACKLIST_CATEGORIES,
        category_labels=CATEGORY_LABELS, **context,
    ), status


@bp.get("/alerts")
@login_required
def alerts():
    return _render()


def _setting_error(name: str, value: str) -> str | None:
    """What is wrong with a channel setting typed on the page (never repeating the value)."""
    from urllib.parse import urlsplit

    if len(value) > MAX_SETTING_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return _("one line of at most %(count)d characters", count=MAX_SETTING_LENGTH)
    if name == "SMTP_URL":
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  (a port that is not a number raises)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            return _("not a mail server's URL: smtp://user:password@host:587 (or smtps://)")
    if name == "SMTP_FROM":
        address = value.rsplit("<", 1)[-1].rstrip(">").strip()
        if not EMAIL_RE.match(address):
            return _("an e-mail address, or Name <address>")
    if name == "LINE_CHANNEL_TOKEN" and (" " in value or not value.isascii()):
        return _("the channel access token, as LINE shows it")
    return None


@bp.post("/alerts/settings")
@require_role("admin")
@require_every_site
def alert_settings():
    """Set or clear one channel setting (SPEC §11 "Channels"); audited by name, never by value."""
    name = request.form.get("name", "")
    clear = request.form.get("action") == "clear"
    value = "" if clear else request.form.get("value", "").strip()
    if name not in EDITABLE_SETTINGS:
        return _render(400, setting_error=("", _("unknown setting")))
    if current_app.config.get(name):
        return _render(400, setting_error=(name, _("set in the environment: change it there")))
    error = None if clear else (_setting_error(name, value) if value else _("type a value, or clear it"))
    if error:
        return _render(400, setting_error=(name, error))
    set_channel_setting(db.session, name, value, current_user.id, utcnow())
    audit(db.session, "channel_setting.clear" if clear else "channel_setting.set", current_user,
          target=f"setting:{name}", ip=client_ip())
    db.session.commit()
    flash(_("%(name)s cleared", name=name) if clear else _("%(name)s saved", name=name), "success")
    return redirect(url_for("web.alerts", _anchor="channel-settings"))
