"""The alert sender in the real daemon (SPEC §11 "Delivery"): it survives `kill -9` — 50 alerts queued,
the daemon killed mid-way and started again, every alert reaches its receiver, and a delivery sent twice
(sent, then killed before its attempt was written) carries the same delivery id both times, so the
receiver takes it once — and channels that are down or hang never slow a camera's answer."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import select

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.models import AlertAttempt, AlertDelivery, AlertRule, Webhook

from .line_standin import LineStandIn
from .pgcluster import free_port
from .processes import Daemon
from .test_ingest import camera, fresh, wait_until

ALERTS = 50
SMTP_PASSWORD = "smtp-Secret-4711"


class SlowReceiver:
    """A webhook receiver that takes `delay` seconds per request, keeping every request's delivery id."""

    def __init__(self, delay: float):
        self.delay, self.seen, self.lock = delay, [], threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.seen.append((self.headers["X-LPR-Delivery"], json.loads(body)["data"]["id"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_kill_9_of_the_sender_with_50_alerts_queued_loses_none_and_sends_each_once(
        app, client, base_env, tmp_path):
    receiver = SlowReceiver(delay=0.5)
    try:
        hook = Webhook(url=receiver.url, secret="whsec_kill", events=["blacklist.hit"])
        db.session.add(hook)
        db.session.commit()
        db.session.add(AlertRule(trigger="blacklist", channels=[f"webhook:{hook.id}"], categories=[],
                                 cameras=[], escalate_to=[]))
        for n in range(ALERTS):
            add_entry(db.session, f"กข {1000 + n}", reason="ทดสอบ", category="stolen")
        db.session.commit()
        # 50 blacklisted reads through the HTTP door: 50 alerts, 50 deliveries queued with them.
        for n in range(ALERTS):
            answer = client.post("/api/records", json={"camera_id": "GATE1", "plate_number": f"กข {1000 + n}"})
            assert answer.status_code in (200, 201), answer.get_json()
        assert fresh().query(AlertDelivery).filter_by(status="pending").count() == ALERTS

        # Small rounds, so that the kill lands between them and inside one.
        env = {**base_env, "ALERT_WORKER": "1", "ALERT_TIMEOUT": "2", "ALERT_POLL_INTERVAL": "0.1",
               "ASYNC_MODE": "gevent", "ALERT_BATCH": "10"}
        first = Daemon(env, tmp_path / "first.log").start()
        try:
            wait_until(lambda: len(receiver.seen) >= 15, timeout=60)
        finally:
            first.kill()  # SIGKILL: no cleanup, some sent and not yet written down
        sent_before = len(receiver.seen)
        written_before = fresh().query(AlertDelivery).filter_by(status="delivered").count()
        assert 0 < written_before < ALERTS

        second = Daemon(env, tmp_path / "second.log").start()
        try:
            wait_until(lambda: fresh().query(AlertDelivery).filter_by(status="delivered").count() == ALERTS,
                       timeout=120)
        finally:
            second.stop()
        ids = [delivery for delivery, _ in receiver.seen]
        alert_ids = {alert for _, alert in receiver.seen}
        session = fresh()
        queued = {str(d.id): d.alert_id for d in session.scalars(select(AlertDelivery))}
        # Every alert arrived; whatever arrived twice came with its delivery id, so it is taken once.
        assert alert_ids == set(queued.values()) and len(alert_ids) == ALERTS
        assert set(ids) == set(queued)
        twice = len(ids) - len(set(ids))
        assert twice <= sent_before - written_before + 10  # at most what was in flight at the kill
        assert session.query(AlertAttempt).filter_by(ok=True).count() == ALERTS
        print(f"\nkill -9 with {ALERTS} alerts queued: {sent_before} received before the kill, "
              f"{written_before} written as delivered, {len(ids)} requests in all, {len(set(ids))} distinct "
              f"deliveries, {twice} sent twice (same delivery id), 0 lost")
    finally:
        receiver.close()


def test_channels_down_or_hanging_never_slow_the_cameras_and_are_retried(app, base_env, tmp_path):
    """A LINE API that takes 5 s per push and an SMTP server that refuses connections: the sender in the
    daemon keeps trying, the reads are answered as fast as ever."""
    with LineStandIn() as line_api:
        line_api.delay = 5.0
        spent, log = channels_down(base_env, tmp_path, line_api)
    errors = {a.channel.split(":")[0]: a.error for a in fresh().scalars(select(AlertAttempt))}
    assert "timed out" in errors["line"].lower() or "timeout" in errors["line"].lower(), errors
    shown = " ".join(e or "" for e in errors.values()) + log
    assert errors["email"] and "alert_delivery_failed" in log
    assert line_api.token not in shown and SMTP_PASSWORD not in shown  # secrets never logged
    assert fresh().query(AlertDelivery).filter_by(status="pending").count() == 40  # still being retried
    print(f"\nanswers while LINE hung 5 s and SMTP refused: max {max(spent) * 1000:.0f} ms, "
          f"median {sorted(spent)[len(spent) // 2] * 1000:.0f} ms")


def channels_down(base_env, tmp_path, line_api) -> list[float]:
    for n in range(20):
        add_entry(db.session, f"ขค {2000 + n}", reason="ทดสอบ", category="wanted")
    db.session.add(AlertRule(trigger="blacklist", channels=["line:U" + "ab" * 16, "email:ops@example.org"],
                             categories=[], cameras=[], escalate_to=[]))
    db.session.commit()
    env = {**base_env, "ALERT_WORKER": "1", "ALERT_TIMEOUT": "2", "ALERT_RETRY_BASE": "0.2",
           "ASYNC_MODE": "gevent", "LINE_CHANNEL_TOKEN": line_api.token, "LINE_API_URL": line_api.url,
           "SMTP_URL": f"smtp://lpr:{SMTP_PASSWORD}@127.0.0.1:{free_port()}", "SMTP_FROM": "lpr@example.org"}
    daemon = Daemon(env, tmp_path / "daemon.log").start()
    try:
        spent = []
        with camera(daemon) as sio:
            for n in range(20):
                start = time.perf_counter()
                answer = sio.call("lpr_data", {"camera_id": "GATE1", "plate_number": f"ขค {2000 + n}"},
                                  timeout=10)
                spent.append(time.perf_counter() - start)
                assert answer["status"] == "success" and answer["blacklisted"], answer
                time.sleep(0.1)
        # Every answer came while pushes hung for seconds: none waited for a channel.
        assert max(spent) < 1.5, spent
        wait_until(lambda: fresh().query(AlertAttempt).filter_by(ok=False).count() >= 40, timeout=60)
    finally:
        daemon.stop()
    return spent, daemon.log()
