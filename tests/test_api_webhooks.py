"""Webhooks against real local HTTP receivers: signed deliveries, retries, and ingest that never waits."""

import json
import socket
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from lprserver.extensions import db
from lprserver.models import WebhookDelivery
from lprserver.webhooks import DeliverySettings, DeliveryWorker, verify

from .conftest import bearer
from .pgcluster import free_port
from .processes import Daemon
from .test_ingest import camera


class Receiver:
    """A real HTTP server on a free local port that keeps what it is sent."""

    def __init__(self, status: int = 200):
        self.status = status
        self.received: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def hanging_receiver():
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


def add_webhook(client, token, url, events=("blacklist.hit",)):
    answer = client.post("/api/webhooks", headers=bearer(token), json={"url": url, "events": list(events)})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


FAST = DeliverySettings(timeout=2, max_attempts=3, retry_base=0.05, poll_interval=0.05)


def test_blacklist_hit_is_delivered_with_a_valid_signature(app, client, api_token):
    client.post("/api/blacklist", headers=bearer(api_token),
                json={"license_plate_text": "กข1234", "reason": "รถหาย", "category": "stolen"})
    with Receiver() as receiver:
        hook = add_webhook(client, api_token, receiver.url)
        assert hook["secret"].startswith("whsec_")
        read = client.post("/api/records", json={"camera_id": "CAM001", "plate_number": "กข 1234"}).get_json()
        client.post("/api/records", json={"camera_id": "CAM001", "plate_number": "NOTLISTED"})
        assert DeliveryWorker(app, FAST).run_once() == 1
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert verify(hook["secret"], body, headers["X-LPR-Signature"])
    assert not verify(hook["secret"], body + b" ", headers["X-LPR-Signature"])
    assert headers["X-LPR-Event"] == "blacklist.hit"
    event = json.loads(body)
    assert event["event"] == "blacklist.hit"
    assert event["data"]["record"]["id"] == read["record_id"]
    assert event["data"]["record"]["plate_number"] == "กข 1234"
    assert event["data"]["entry"]["license_plate_text"] == "กข1234"
    log = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=bearer(api_token)).get_json()
    assert log["total"] == 1
    assert log["deliveries"][0]["status"] == "delivered" and log["deliveries"][0]["last_status_code"] == 200


def test_every_read_is_delivered_to_webhooks_that_ask_for_it(app, client, api_token):
    with Receiver() as receiver:
        add_webhook(client, api_token, receiver.url, events=("record.created",))
        client.post("/api/records", json={"camera_id": "CAM001", "plate_number": "ABC1"})
        DeliveryWorker(app, FAST).run_once()
    assert [json.loads(body)["data"]["plate_number"] for _h, body in receiver.received] == ["ABC1"]


def test_failing_receiver_gets_retries_with_backoff_then_fails(app, client, api_token):
    client.post("/api/blacklist", headers=bearer(api_token), json={"license_plate_text": "HIT1"})
    with Receiver(status=500) as receiver:
        hook = add_webhook(client, api_token, receiver.url)
        client.post("/api/records", json={"camera_id": "CAM001", "plate_number": "HIT1"})
        # A first attempt with a minute's back-off: the next look finds nothing due, however slow the machine.
        patient = DeliveryWorker(app, DeliverySettings(timeout=2, max_attempts=3, retry_base=60, poll_interval=0.05))
        assert patient.run_once() == 1
        assert patient.run_once() == 0  # backing off
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert delivery.status == "pending" and delivery.attempts == 1 and delivery.last_error == "HTTP 500"
        assert delivery.next_attempt_at - delivery.last_attempt_at >= timedelta(seconds=59)
        delivery.next_attempt_at = delivery.last_attempt_at  # due now; the rest with FAST's short back-off
        db.session.commit()
        worker = DeliveryWorker(app, FAST)
        for _ in range(50):
            worker.run_once()
            db.session.expire_all()
            if delivery.status == "failed":
                break
            time.sleep(0.05)
    assert delivery.status == "failed" and delivery.attempts == 3
    assert len(receiver.received) == 3
    answer = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=bearer(api_token)).get_json()
    assert answer["deliveries"][0]["attempts"] == 3


def test_backoff_doubles_and_is_capped():
    settings = DeliverySettings(retry_base=10)
    assert [settings.backoff(n).total_seconds() for n in (1, 2, 3)] == [10, 20, 40]
    assert settings.backoff(30) == timedelta(hours=1)


def test_webhook_ping_and_admin_only(client, api_token, make_token):
    with Receiver() as receiver:
        hook = add_webhook(client, api_token, receiver.url)
        ping = client.post(f"/api/webhooks/{hook['id']}/test", headers=bearer(api_token))
        assert ping.status_code == 202 and ping.get_json()["event"] == "ping"
    operator = make_token("operator")
    assert client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=bearer(operator)).status_code == 403
    listed = client.get("/api/webhooks", headers=bearer(api_token)).get_json()["webhooks"]
    assert "secret" not in listed[0]


def _read_times(daemon, plates):
    latencies = []
    with camera(daemon) as sio:
        for i, plate in enumerate(plates):
            start = time.monotonic()
            answer = sio.call("lpr_data", {"camera_id": "CAM001", "plate_number": plate,
                                           "event_id": f"{plate}-{i}-{time.monotonic_ns()}"}, timeout=15)
            latencies.append(time.monotonic() - start)
            assert answer["status"] == "success"
    return latencies


@pytest.mark.parametrize("async_mode", ["gevent", "eventlet"])
def test_down_or_hanging_receivers_get_retries_and_ingest_goes_on_at_full_speed(
        app, client, api_token, base_env, tmp_path, async_mode):
    client.post("/api/blacklist", headers=bearer(api_token), json={"license_plate_text": "HIT1"})
    env = {**base_env, "ASYNC_MODE": async_mode, "WEBHOOK_WORKER": "1", "WEBHOOK_TIMEOUT": "3", "WEBHOOK_RETRY_BASE": "0.2",
           "WEBHOOK_POLL_INTERVAL": "0.1", "WEBHOOK_MAX_ATTEMPTS": "50"}
    daemon = Daemon(env, tmp_path / "daemon.log").start()
    try:
        baseline = _read_times(daemon, ["HIT1"] * 20)
        with hanging_receiver() as hanging_url, Receiver() as good:
            down = add_webhook(client, api_token, f"http://127.0.0.1:{free_port()}/hook")  # nothing listens
            add_webhook(client, api_token, hanging_url)
            add_webhook(client, api_token, good.url)
            loaded = _read_times(daemon, ["HIT1"] * 20)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(good.received) < 20:
                time.sleep(0.2)
            assert len(good.received) == 20  # a hanging neighbour delays it, it does not stop it
        # Ingest did not wait for any receiver: no read took near a webhook timeout.
        assert max(loaded) < 1.0, loaded
        assert sum(loaded) < sum(baseline) * 3 + 2, (sum(baseline), sum(loaded))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            db.session.expire_all()
            retried = db.session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.webhook_id == down["id"])).all()
            if all(d.attempts >= 2 for d in retried):
                break
            time.sleep(0.2)
        assert len(retried) == 20
        assert all(d.attempts >= 2 and d.status == "pending" and d.last_error for d in retried), [
            (d.attempts, d.status, d.last_error) for d in retried]
        assert all(d.next_attempt_at > d.last_attempt_at for d in retried)
        assert daemon.alive()
    finally:
        daemon.stop()
    assert "Traceback" not in daemon.log()
