"""Live updates without Redis: the daemon's relay, the web app's Socket.IO channel, catch-up."""

import http.server
import json
import socket
import sys
import threading
import time

import pytest
import requests
import socketio

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.live import LiveRelay, relay_key, sign, verify

from .pgcluster import free_port
from .processes import Daemon
from .test_ingest import SEED_READ, camera, close_client
from .webserver import web_session


def test_a_signature_is_bound_to_its_key_body_and_time():
    key = relay_key("secret")
    body = b'{"events": []}'
    now = time.time()
    signature = sign(key, str(now), body)
    assert verify(key, str(now), signature, body)
    assert not verify(relay_key("other"), str(now), signature, body)
    assert not verify(key, str(now), signature, body + b" ")
    assert not verify(key, str(now - 600), sign(key, str(now - 600), body), body)
    assert not verify(key, None, signature, body)


def test_publish_never_blocks_and_drops_the_oldest_when_full():
    relay = LiveRelay(f"http://127.0.0.1:{free_port()}/internal/live", "secret", maxsize=3)
    start = time.perf_counter()
    for n in range(10):
        relay.publish("new_record", {"id": n})
    assert time.perf_counter() - start < 0.05
    assert [item["data"]["id"] for item in relay.queue] == [7, 8, 9] and relay.dropped == 7


def test_the_relay_keeps_one_connection_to_the_web_app_for_many_batches(webapp, base_env):
    relay = LiveRelay(f"{webapp.url}/internal/live", base_env["SECRET_KEY"])
    for n in range(5):
        assert relay._post([{"event": "stats", "data": {"n": n}}])
    assert relay.sent == 5 and relay.connections == 1


class _ClosesSilently(http.server.BaseHTTPRequestHandler):
    """Answers 204 and then closes the connection without saying so, as an idle keep-alive ends."""

    protocol_version = "HTTP/1.1"
    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_the_relay_sends_again_on_a_new_connection_when_the_kept_one_was_closed():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ClosesSilently)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        relay = LiveRelay(f"http://127.0.0.1:{server.server_port}/internal/live", "secret")
        for n in range(3):
            time.sleep(0.05)  # the server has closed the last connection by now
            assert relay._post([{"event": "stats", "data": {"n": n}}])
        assert relay.sent == 3 and relay.connections == 3 and relay.dropped == 0
        assert [json.loads(b)["events"][0]["data"]["n"] for b in _ClosesSilently.bodies] == [0, 1, 2]
    finally:
        server.shutdown()
        server.server_close()


def test_the_web_app_refuses_unsigned_or_forged_batches(webapp):
    url = f"{webapp.url}/internal/live"
    assert requests.post(url, json={"events": []}, timeout=10).status_code == 403
    headers = {"X-LPR-Timestamp": str(time.time()), "X-LPR-Signature": "0" * 64}
    assert requests.post(url, data=b'{"events": []}', headers=headers, timeout=10).status_code == 403


def browser_socket(webapp, http: requests.Session | None = None) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies) if http else ""
    client.connect(webapp.url, headers={"Cookie": cookie} if cookie else {}, transports=["websocket"],
                   wait_timeout=10)
    return client


class Inbox:
    """Events a browser socket received, with the time each arrived."""

    def __init__(self, client: socketio.Client, *events: str):
        self.items: list[tuple[str, dict, float]] = []
        self.arrived = threading.Condition()
        for event in events:
            client.on(event, lambda data, event=event: self._put(event, data))

    def _put(self, event, data):
        with self.arrived:
            self.items.append((event, data, time.time()))
            self.arrived.notify_all()

    def wait_for(self, check, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                found = [item for item in self.items if check(*item[:2])]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching event in {[i[0] for i in self.items]}")
                self.arrived.wait(left)


def test_an_anonymous_browser_socket_is_refused(webapp):
    with pytest.raises(socketio.exceptions.ConnectionError):
        browser_socket(webapp)


def test_a_read_reaches_signed_in_browsers_with_metadata_only(webapp, live_daemon, app, users):
    add_entry(db.session, "กข 9999", reason="รถหาย", category="stolen")
    db.session.commit()
    http = web_session(webapp, "operator")
    browser = browser_socket(webapp, http)
    inbox = Inbox(browser, "new_record", "blacklist_alert", "camera_status")
    try:
        with camera(live_daemon) as cam:
            plain = cam.call("lpr_data", {**SEED_READ, "camera_id": "LIVE1"}, timeout=10)
            hit = cam.call("lpr_data", {**SEED_READ, "camera_id": "LIVE1", "plate_number": "กข9999"}, timeout=10)
        _, record, _ = inbox.wait_for(lambda e, d: e == "new_record" and d["id"] == plain["record_id"])
        assert record["plate_number"] == "กข1234" and record["location"] == "ประตูหน้า"
        assert "image_data" not in record
        _, alert, _ = inbox.wait_for(lambda e, d: e == "blacklist_alert")
        assert alert["record"]["id"] == hit["record_id"] and alert["entry"]["reason"] == "รถหาย"
        inbox.wait_for(lambda e, d: e == "camera_status" and d["camera_id"] == "LIVE1")
    finally:
        close_client(browser)
        http.close()


def test_stats_arrive_periodically(webapp, app, users):
    http = web_session(webapp, "viewer")
    browser = browser_socket(webapp, http)
    inbox = Inbox(browser, "stats")
    try:
        _, stats, _ = inbox.wait_for(lambda e, d: True, timeout=15)
        assert {"counters", "per_hour", "per_camera", "top_plates"} <= set(stats)
        assert len(stats["per_hour"]["counts"]) == 24
    finally:
        close_client(browser)
        http.close()


def test_a_reconnecting_browser_catches_up_from_the_database(webapp, live_daemon, app, users):
    http = web_session(webapp, "viewer")
    last = http.get(f"{webapp.url}/live/missed?after=0", timeout=10).json()["records"]
    after = last[-1]["id"] if last else 0
    with camera(live_daemon) as cam:  # no browser connected: the events go nowhere
        sent = [cam.call("lpr_data", {**SEED_READ, "plate_number": f"ขข{n}"}, timeout=10)["record_id"]
                for n in range(3)]
    missed = http.get(f"{webapp.url}/live/missed?after={after}", timeout=10).json()["records"]
    assert [r["id"] for r in missed] == sent
    http.close()


@pytest.fixture(params=["refused", "blackhole"])
def unreachable_web_daemon(request, base_env, tmp_path_factory):
    """A daemon whose web app is down (connection refused) or hangs (accepts, never answers)."""
    hole = None
    port = free_port()
    if request.param == "blackhole":
        hole = socket.socket()
        hole.bind(("127.0.0.1", port))
        hole.listen(1000)
    env = {**base_env, "ASYNC_MODE": "gevent", "LIVE_RELAY_URL": f"http://127.0.0.1:{port}/internal/live"}
    proc = Daemon(env, tmp_path_factory.mktemp("daemon") / f"down-{request.param}.log").start()
    yield proc
    proc.stop()
    if hole is not None:
        hole.close()


def test_ingest_goes_on_when_the_web_app_is_down_or_hanging(unreachable_web_daemon, app):
    times = []
    with camera(unreachable_web_daemon) as cam:
        for n in range(20):
            start = time.perf_counter()
            answer = cam.call("lpr_data", {**SEED_READ, "plate_number": f"กข{n}"}, timeout=10)
            times.append(time.perf_counter() - start)
            assert answer["status"] == "success"
    assert max(times) < 1.5, times
    assert unreachable_web_daemon.alive()


def test_gunicorn_with_one_gevent_worker_serves_the_live_channel(base_env, app, users, tmp_path):
    from pathlib import Path

    from .processes import WebApp

    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "-k", "gevent", "-w", "1", "-b", "127.0.0.1:{port}", "--control-socket",
               str(tmp_path / "gunicorn.ctl"), "wsgi:app"]
    web = WebApp(base_env, tmp_path / "gunicorn.log", command).start()
    try:
        http = web_session(web, "viewer")
        browser = browser_socket(web, http)
        inbox = Inbox(browser, "new_record")
        body = json.dumps({"events": [{"event": "new_record", "data": {"id": 7, "plate_number": "กข7"}}]}).encode()
        stamp = str(time.time())
        signature = sign(relay_key(base_env["SECRET_KEY"]), stamp, body)
        answer = requests.post(f"{web.url}/internal/live", data=body, timeout=10, headers={
            "Content-Type": "application/json", "X-LPR-Timestamp": stamp, "X-LPR-Signature": signature})
        assert answer.status_code == 204
        _, record, _ = inbox.wait_for(lambda e, d: d["id"] == 7)
        assert record["plate_number"] == "กข7"
        close_client(browser)
        http.close()
    finally:
        web.stop()
