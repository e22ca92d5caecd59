"""Alerts' delivery (SPEC §11): repeats fold into one alert, rules queue deliveries in the read's
transaction, the sender sends them (webhook channel, a real local HTTP receiver), retries with back-off,
escalates once unacknowledged and cancels the escalation of an acknowledged alert; silent cameras raise
camera_offline and their next message resolves it, through the real daemon."""

import json
from datetime import timedelta

from sqlalchemy import select

from lprserver.alert_sender import AlertSender, SenderSettings
from lprserver.blacklist import add_entry
from lprserver.camera_offline import SilenceChecker, check_silent_cameras
from lprserver.extensions import db
from lprserver.models import (
    Alert,
    AlertAttempt,
    AlertDelivery,
    AlertRule,
    BlacklistDetection,
    Camera,
    Webhook,
    utcnow,
)
from lprserver.webhooks import verify

from .conftest import bearer
from .test_api_webhooks import Receiver
from .test_ingest import camera, fresh, wait_until

FAST = SenderSettings(timeout=2, max_attempts=3, retry_base=0.05, poll_interval=0.05)


def stolen(plate: str = "กข 1234") -> None:
    add_entry(db.session, plate, reason="รถหาย", category="stolen")
    db.session.commit()


def read(client, plate: str = "กข 1234", camera_id: str = "CAM001", **extra) -> dict:
    answer = client.post("/api/records", json={"camera_id": camera_id, "plate_number": plate, **extra})
    assert answer.status_code in (200, 201), answer.get_json()
    return answer.get_json()


def hook(url: str) -> Webhook:
    webhook = Webhook(url=url, secret="whsec_test", events=["blacklist.hit"])
    db.session.add(webhook)
    db.session.commit()
    return webhook


def rule(**fields) -> AlertRule:
    row = AlertRule(**{"trigger": "blacklist", "channels": ["mqtt"], "categories": [], "cameras": [],
                       "escalate_to": [], **fields})
    db.session.add(row)
    db.session.commit()
    return row


def deliveries() -> list[AlertDelivery]:
    return list(fresh().scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


def test_a_plate_again_at_one_camera_within_the_window_is_one_alert_with_a_count(app, client, make_token):
    stolen()
    first = read(client)
    read(client)
    read(client, camera_id="CAM002")  # another camera: an alert of its own
    alerts = list(fresh().scalars(select(Alert).order_by(Alert.id)))
    assert [(a.camera_id, a.repeat_count) for a in alerts] == [("CAM001", 2), ("CAM002", 1)]
    assert alerts[0].record_id == first["record_id"] and alerts[0].last_at > alerts[0].created_at
    # Every read's hit is still kept: the alert is what a person is told of, once.
    assert fresh().query(BlacklistDetection).count() == 3
    listed = client.get("/api/alerts", headers=bearer(make_token("viewer", "read"))).get_json()["alerts"]
    assert sorted(a["repeat_count"] for a in listed) == [1, 2]
    # Acknowledged, the next read is a new alert; past the window too.
    alerts[0].acknowledged_at = utcnow()
    db.session.commit()
    read(client)
    assert fresh().query(Alert).filter_by(camera_id="CAM001").count() == 2


def test_repeats_at_a_gate_and_a_zero_window(app, client):
    stolen()
    app.config["ALERT_REPEAT_SECONDS"] = 0
    try:
        read(client)
        read(client)
    finally:
        app.config["ALERT_REPEAT_SECONDS"] = 60
    assert fresh().query(Alert).count() == 2


def test_rules_queue_deliveries_in_the_reads_transaction(app, client):
    stolen()
    add_entry(db.session, "ขค 55", reason="VIP", category="vip")
    db.session.commit()
    rule(channels=["mqtt", "email:ops@example.org"])
    rule(channels=["email:ops@example.org", "line:U" + "0" * 32], categories=["stolen"],
         escalate_after_minutes=5, escalate_to=["email:boss@example.org"])
    rule(channels=["email:night@example.org"], cameras=["ELSEWHERE"])
    rule(channels=["email:off@example.org"], active=False)
    rule(trigger="not_on_list", channels=["email:gate@example.org"])
    read(client)  # stolen: the first two rules
    read(client, "ขค 55")  # vip: the first rule only
    read(client, "NOTHING")
    rows = deliveries()
    alert_ids = [a.id for a in fresh().scalars(select(Alert).order_by(Alert.id))]
    by_alert = {a: sorted((d.channel, d.escalation) for d in rows if d.alert_id == a) for a in alert_ids}
    assert by_alert == {
        alert_ids[0]: [("email:boss@example.org", True), ("email:ops@example.org", False),
                       ("line:U" + "0" * 32, False), ("mqtt", False)],
        alert_ids[1]: [("email:ops@example.org", False), ("mqtt", False)],
    }
    escalation = next(d for d in rows if d.escalation)
    alert = fresh().get(Alert, escalation.alert_id)
    assert escalation.next_attempt_at == alert.created_at + timedelta(minutes=5)
    # A repeat queues nothing more.
    read(client)
    assert len(deliveries()) == len(rows)


def test_rules_hours_in_the_timezone_across_midnight(app, client):
    stolen()
    now_bangkok = (utcnow() + timedelta(hours=7)).replace(second=0, microsecond=0)
    start, end = now_bangkok - timedelta(hours=1), now_bangkok + timedelta(hours=1)
    rule(channels=["email:in@example.org"], hours=f"{start:%H:%M}-{end:%H:%M}")
    rule(channels=["email:out@example.org"], hours=f"{end:%H:%M}-{start:%H:%M}")
    read(client)
    assert [d.channel for d in deliveries()] == ["email:in@example.org"]


def test_the_sender_delivers_to_a_webhook_signed_and_logs_the_attempt(app, client, make_token):
    stolen()
    with Receiver() as receiver:
        webhook = hook(receiver.url)
        rule(channels=[f"webhook:{webhook.id}"])
        record = read(client)
        assert AlertSender(app, FAST).run_once() == 1
    headers, body = receiver.received[0]
    assert verify("whsec_test", body, headers["X-LPR-Signature"]) and headers["X-LPR-Event"] == "alert"
    event = json.loads(body)
    assert event["event"] == "alert" and event["data"]["trigger"] == "blacklist"
    assert event["data"]["record"]["id"] == record["record_id"]
    (delivery,) = deliveries()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    answer = client.get(f"/api/alerts/{delivery.alert_id}", headers=bearer(make_token("viewer", "read"))).get_json()
    assert [(d["channel"], d["ok"], d["error"]) for d in answer["deliveries"]] == \
        [(f"webhook:{webhook.id}", True, None)]
    assert AlertSender(app, FAST).run_once() == 0  # nothing is sent twice


def test_a_channel_that_is_down_is_retried_with_backoff_then_failed(app, client):
    stolen()
    with Receiver(status=503) as receiver:
        webhook = hook(receiver.url)
        rule(channels=[f"webhook:{webhook.id}", "webhook:99999"])
        read(client)
        sender = AlertSender(app, FAST)
        for _ in range(40):
            sender.run_once()
            if all(d.status == "failed" for d in deliveries()):
                break
            wait_until(lambda: False, 0.05)
    rows = deliveries()
    assert [(d.status, d.attempts) for d in rows] == [("failed", 3), ("failed", 3)]
    attempts = list(fresh().scalars(select(AlertAttempt).order_by(AlertAttempt.id)))
    assert len(attempts) == 6 and not any(a.ok for a in attempts)
    assert {a.error for a in attempts} == {"HTTP 503", "the webhook no longer exists or is switched off"}
    assert len(receiver.received) == 3
    gaps = [b.at - a.at for a, b in zip(attempts[::2], attempts[2::2], strict=False)]
    assert all(gap >= timedelta(seconds=0.05) for gap in gaps)


def test_escalation_goes_once_unacknowledged_and_is_cancelled_once_acknowledged(app, client):
    stolen()
    with Receiver() as receiver:
        webhook = hook(receiver.url)
        rule(channels=["mqtt"], escalate_after_minutes=5, escalate_to=[f"webhook:{webhook.id}"])
        read(client)
        read(client, camera_id="CAM002")
        sender = AlertSender(app, FAST)
        # Not yet due: nothing goes (the mqtt deliveries fail without MQTT_URL and wait to be retried).
        sender.run_once()
        assert receiver.received == []
        escalations = [d for d in deliveries() if d.escalation]
        assert len(escalations) == 2
        first, second = escalations
        alert = db.session.get(Alert, first.alert_id)
        alert.acknowledged_at = utcnow()
        for row in escalations:
            db.session.get(AlertDelivery, row.id).next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        sender.run_once()
    statuses = {d.id: d.status for d in deliveries()}
    assert statuses[first.id] == "cancelled" and statuses[second.id] == "delivered"
    assert len(receiver.received) == 1
    assert json.loads(receiver.received[0][1])["data"]["id"] == second.alert_id


def test_silent_cameras_raise_camera_offline_once_and_their_next_read_resolves_it(daemon, app, client):
    long_ago = utcnow() - timedelta(minutes=30)
    db.session.add_all([Camera(id="QUIET", name="ประตูหลัง", last_seen=long_ago),
                        Camera(id="TALKS", last_seen=utcnow()),
                        Camera(id="NEVER"),
                        Camera(id="REPORTS", last_seen=long_ago, health_at=utcnow())])
    db.session.commit()
    rule(trigger="camera_offline", channels=["email:ops@example.org"], cameras=["QUIET"])
    events = check_silent_cameras(db.session, utcnow(), 10, "Asia/Bangkok")
    db.session.commit()
    assert [(e, d["camera_id"]) for e, d in events] == [("alert", "QUIET"), ("camera_status", "QUIET")]
    alert = fresh().scalars(select(Alert)).one()
    assert (alert.trigger, alert.camera_id, alert.resolved_at) == ("camera_offline", "QUIET", None)
    assert alert.detail["last_seen"] == long_ago.isoformat() and events[1][1]["offline_alert_id"] == alert.id
    assert fresh().get(Camera, "QUIET").offline_alert_id == alert.id
    assert [d.channel for d in deliveries()] == ["email:ops@example.org"]
    assert check_silent_cameras(db.session, utcnow(), 10, "Asia/Bangkok") == []  # raised once
    with camera(daemon) as sio:
        assert sio.call("lpr_data", {"camera_id": "QUIET", "plate_number": "กข 1"}, timeout=10)["status"] == \
            "success"
    assert fresh().get(Alert, alert.id).resolved_at is not None
    assert fresh().get(Camera, "QUIET").offline_alert_id is None


def test_a_health_report_or_registration_resolves_a_silent_camera(daemon, app):
    for camera_id in ("REPORTER", "REGISTERS"):
        db.session.add(Camera(id=camera_id, last_seen=utcnow() - timedelta(hours=1)))
    db.session.commit()
    SilenceChecker(app).run_once()
    assert fresh().query(Alert).filter(Alert.resolved_at.is_(None)).count() == 2
    with camera(daemon) as sio:
        assert sio.call("health_status", {"camera_id": "REPORTER", "component": "camera", "status": "PASS"},
                        timeout=10)["status"] == "success"
        assert sio.call("camera_register", {"camera_id": "REGISTERS"}, timeout=10)["status"] == "success"
    assert fresh().query(Alert).filter(Alert.resolved_at.is_(None)).count() == 0
    assert {c.offline_alert_id for c in fresh().scalars(select(Camera))} == {None}
