"""Several ingest daemons on one database (SPEC §14, README "Several ingest daemons"): two on one port with
INGEST_REUSE_PORT=1, two behind the shipped nginx stream config, and a read sent to both at once stored
once, its live events and webhooks once."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import socketio
import websocket
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

import config
from lprserver.blacklist import add_entry
from lprserver.camera_offline import check_silent_cameras
from lprserver.cameras import set_online
from lprserver.extensions import db
from lprserver.ingest.server import Ingest
from lprserver.models import (
    Alert,
    BlacklistDetection,
    Camera,
    KnownGroup,
    Record,
    Visit,
    Webhook,
    WebhookDelivery,
    utcnow,
)
from lprserver.overstay import check_overstays

from .imagegen import data_uri, make_jpeg
from .pgcluster import free_port
from .processes import ROOT, Daemon, wait_for_port
from .test_ingest import camera, close_client

NGINX = "/usr/sbin/nginx"
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
ROUNDS = 40  # reads sent to both daemons at the same moment


class Collector:
    """An HTTP server that keeps what the daemons POST: live events (LIVE_RELAY_URL) and webhooks."""

    def __init__(self):
        self.live: list[dict] = []
        self.hooks: list[dict] = []
        lock, collector = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                live = self.path.startswith("/internal/live")
                with lock:
                    if live:
                        collector.live.extend(body["events"])
                    else:
                        collector.hooks.append(body)
                self.send_response(204 if live else 200)  # as the web app's relay_in and a webhook receiver
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def clear(self) -> None:
        self.live.clear()
        self.hooks.clear()


def start_daemon(env: dict, log: Path, port: int) -> Daemon:
    """A daemon on `port`; waits for its own `event=listening` line, as another daemon may hold the port."""
    daemon = Daemon(env, log, port=port).start()
    deadline = time.monotonic() + 60
    while "event=listening" not in daemon.log():
        if daemon.process.poll() is not None or time.monotonic() > deadline:
            daemon.stop()
            raise RuntimeError(f"the daemon did not listen:\n{daemon.log()[-2000:]}")
        time.sleep(0.1)
    return daemon


@pytest.fixture(scope="module")
def collector():
    collector = Collector()
    yield collector
    collector.server.shutdown()


@pytest.fixture(scope="module")
def daemon_env(base_env, tmp_path_factory, collector) -> dict:
    work = tmp_path_factory.mktemp("several")
    return {**base_env, "LIVE_RELAY_URL": f"{collector.url}/internal/live", "WEBHOOK_WORKER": "1",
            "WEBHOOK_POLL_INTERVAL": "0.2", "HEARTBEAT_FILE": str(work / "heartbeat")}


@pytest.fixture(scope="module")
def two_daemons(daemon_env, tmp_path_factory):
    """Two daemons on ports of their own, one database: several hosts, as behind nginx (both databases)."""
    work = tmp_path_factory.mktemp("two")
    first = start_daemon({**daemon_env, "ASYNC_MODE": "gevent"}, work / "first.log", free_port())
    try:
        second = start_daemon({**daemon_env, "ASYNC_MODE": "eventlet"}, work / "second.log", free_port())
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


@pytest.fixture(scope="module")
def shared_port(daemon_env, db_kind, tmp_path_factory):
    """Two daemons sharing one port with INGEST_REUSE_PORT=1, one per async mode (PostgreSQL only)."""
    if db_kind != "postgresql":
        pytest.skip("several daemons on one port need PostgreSQL (SQLite refuses INGEST_REUSE_PORT)")
    work, port = tmp_path_factory.mktemp("shared"), free_port()
    env = {**daemon_env, "INGEST_REUSE_PORT": "1"}
    first = start_daemon({**env, "ASYNC_MODE": "gevent"}, work / "gevent.log", port)
    try:
        second = start_daemon({**env, "ASYNC_MODE": "eventlet"}, work / "eventlet.log", port)
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


def read(event_id: str, camera_id: str = "CAMX1", plate: str = "กข1234", image: str | None = None) -> dict:
    payload = {"camera_id": camera_id, "plate_number": plate, "event_id": event_id, "confidence": 90}
    if image:
        payload["image_data"] = image
    return payload


def connected(url: str) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=10)
    return client


def stored(**where) -> int:
    db.session.rollback()  # a fresh snapshot: the daemons wrote meanwhile
    query = select(func.count()).select_from(Record)
    for column, value in where.items():
        query = query.where(getattr(Record, column) == value)
    return db.session.scalar(query)


# --- One port, two daemons ---

def test_two_daemons_share_one_port_and_both_store_reads(shared_port, app):
    first, second = shared_port
    assert first.port == second.port
    answers = []
    for number in range(24):  # a raw WebSocket connection each: the kernel hands each to one of the two
        ws = websocket.create_connection(first.ws_url, timeout=15)
        try:
            ws.send(json.dumps({"table": "lpr_detection", "action": "insert",
                                "data": {"license_plate": "ABC1234", "checkpoint_id": f"CAMS{number}"}}))
            answers.append(json.loads(ws.recv()))
        finally:
            ws.close()
    assert all(a["status"] == "success" for a in answers), answers
    assert stored() == 24
    for daemon in shared_port:  # each took some of them (all 24 on one: 1 in 8 million)
        assert daemon.alive()
        assert "event=connected" in daemon.log(), daemon.log_path


def test_a_daemon_without_reuse_port_is_refused_the_shared_port_with_a_clear_message(shared_port, daemon_env,
                                                                                      tmp_path):
    port = shared_port[0].port
    env = {**daemon_env, "ASYNC_MODE": "gevent", "INGEST_PORT": str(port), "INGEST_HOST": "127.0.0.1"}
    done = subprocess.run([sys.executable, "websocket_server.py"], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in done.stderr
    assert "INGEST_REUSE_PORT=1" in done.stderr
    assert "Traceback" not in done.stderr
    assert all(daemon.alive() for daemon in shared_port)


def test_a_second_daemon_on_a_taken_port_stops_before_marking_cameras_offline(two_daemons, daemon_env, app):
    first, _ = two_daemons
    with camera(first) as client:
        assert client.call("camera_register", {"camera_id": "CAMON"}, timeout=10)["status"] == "success"
        db.session.rollback()
        assert db.session.get(Camera, "CAMON").online is True
        for mode in ("gevent", "eventlet"):
            env = {**daemon_env, "ASYNC_MODE": mode, "INGEST_PORT": str(first.port), "INGEST_HOST": "127.0.0.1"}
            done = subprocess.run([sys.executable, "websocket_server.py"], cwd=ROOT, env={**os.environ, **env},
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode != 0, mode
            assert "the port is in use" in done.stderr and "set INGEST_REUSE_PORT=1" in done.stderr, done.stderr
        db.session.rollback()
        assert db.session.get(Camera, "CAMON").online is True  # the refused daemons never reached the database


def test_reuse_port_is_refused_with_sqlite(tmp_path):
    sqlite = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SECRET_KEY": "k" * 40}
    with pytest.raises(ValueError, match="INGEST_REUSE_PORT=1 .* needs PostgreSQL"):
        config.TestingConfig({**sqlite, "INGEST_REUSE_PORT": "1"})
    with pytest.raises(ValueError, match="INGEST_REUSE_PORT must be on or off"):
        config.TestingConfig({"INGEST_REUSE_PORT": "2", "SECRET_KEY": "k" * 40})
    assert config.TestingConfig({**sqlite, "INGEST_REUSE_PORT": "0"}).INGEST_REUSE_PORT is False
    postgres = config.TestingConfig({"DATABASE_URL": "postgresql://lpr@db/lpr", "INGEST_REUSE_PORT": "1",
                              "SECRET_KEY": "k" * 40})
    assert postgres.INGEST_REUSE_PORT is True


def polls_on_new_connections(url: str, sessions: int = 10, polls: int = 3) -> list[int]:
    """Open Engine.IO long-polling sessions and send each a few polls, every request on a new connection
    (as clients without keep-alive do); return the polls' status codes."""
    codes = []
    for _ in range(sessions):
        base = f"{url}/socket.io/?EIO=4&transport=polling"
        opened = requests.get(base, headers={"Connection": "close"}, timeout=10)
        sid = json.loads(opened.text[1:])["sid"]  # "0{...}": the open packet
        for _ in range(polls):
            codes.append(requests.post(f"{base}&sid={sid}", data="40", headers={"Connection": "close"},
                                       timeout=10).status_code)
    return codes


def test_long_polling_on_a_shared_port_is_not_sticky(shared_port, app):
    """Why README sends long-polling cameras through nginx's hash: on a plain shared port a poll on a new
    connection reaches either daemon, and the one that does not know the session answers 400."""
    codes = polls_on_new_connections(shared_port[0].url)
    assert set(codes) <= {200, 400} and 400 in codes and 200 in codes, codes


# --- Duplicates across daemons (both databases) ---

def test_a_read_resent_to_the_other_daemon_is_a_duplicate(two_daemons, app, collector):
    first, second = two_daemons
    collector.clear()
    image = data_uri(make_jpeg(160, 120))
    with camera(first) as a, camera(second) as b:
        answer = a.call("lpr_data", read("resent-1", image=image), timeout=15)
        again = b.call("lpr_data", read("resent-1", image=image), timeout=15)
    assert answer["status"] == "success" and answer["duplicate"] is False
    assert again == {**answer, "duplicate": True}
    assert stored(event_id="resent-1") == 1
    _wait_for(lambda: len(_new_records(collector)) >= 1)
    time.sleep(0.5)  # a second new_record, if one were coming, would be here by now
    assert _new_records(collector) == [answer["record_id"]]


def _unique_violations(request, db_kind) -> int:
    """How often PostgreSQL refused an insert on (camera_id, event_id) so far (its server log): the dedupe
    keys' primary key since lpr_records is partitioned (SPEC §14); 0 on SQLite."""
    if db_kind != "postgresql":
        return 0
    log = request.getfixturevalue("postgres").data_dir / "server.log"
    return log.read_text(errors="replace").count('unique constraint "pk_lpr_record_keys"')


def test_a_read_sent_to_both_daemons_at_once_is_stored_once(two_daemons, app, collector, request, db_kind,
                                                            image_root):
    """The two copies race between two transactions (PostgreSQL: lpr_record_keys' key on camera_id + event_id
    makes the later insert wait for the first's commit and fail; SQLite: one writer at a time); the loser
    answers as a duplicate. Its blacklist hit, live events and webhooks happen once."""
    first, second = two_daemons
    add_entry(db.session, "กข1234", reason="race")
    hook = Webhook(url=f"{collector.url}/hook", secret="s" * 32, events=["record.created", "blacklist.hit"])
    db.session.add(hook)
    db.session.commit()
    collector.clear()
    violations = _unique_violations(request, db_kind)
    image = data_uri(make_jpeg(320, 240))
    clients = [connected(first.url), connected(second.url)]
    answers: list[list[dict | None]] = [[None, None] for _ in range(ROUNDS)]
    barrier = threading.Barrier(2)

    def send(side: int) -> None:
        for number in range(ROUNDS):
            barrier.wait(timeout=30)
            answers[number][side] = clients[side].call("lpr_data", read(f"race-{number}", image=image),
                                                       timeout=30)

    try:
        threads = [threading.Thread(target=send, args=(side,)) for side in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for client in clients:
            close_client(client)
    for number, (one, other) in enumerate(answers):
        assert one and other and one["status"] == other["status"] == "success", (number, one, other)
        assert one["record_id"] == other["record_id"], (number, one, other)
        assert sorted([one["duplicate"], other["duplicate"]]) == [False, True], (number, one, other)
        assert one["blacklisted"] is other["blacklisted"] is True
    assert stored(camera_id="CAMX1") == ROUNDS
    if db_kind == "postgresql":  # the race happened: copies met at the unique index, not only the lookup
        raced = _unique_violations(request, db_kind) - violations
        print(f"{raced} of {ROUNDS} copies sent at once were refused by the unique index")
        assert raced >= 1
    assert db.session.scalar(select(func.count()).select_from(BlacklistDetection)) == ROUNDS
    # The loser removed its own image again, never the winner's (each write has a name of its own).
    paths = db.session.scalars(select(Record.image_path)).all()
    assert all((image_root / path).is_file() for path in paths)
    images = [f for f in image_root.rglob("*.jpg") if "_thumb" not in f.name and not f.name.startswith(".")]
    assert len(images) == ROUNDS
    record_ids = sorted(one["record_id"] for one, _ in answers)
    # Live: one new_record per read, from whichever daemon stored it.
    _wait_for(lambda: len(_new_records(collector)) >= ROUNDS)
    # Webhooks: queued once in the storing transaction, sent once although both daemons' workers poll.
    _wait_for(lambda: len(collector.hooks) >= 2 * ROUNDS)
    time.sleep(1.0)  # both workers poll every 0.2 s: a delivery sent twice would have arrived
    assert sorted(_new_records(collector)) == record_ids
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 2 * ROUNDS
    created = sorted(h["data"]["id"] for h in collector.hooks if h["event"] == "record.created")
    assert created == record_ids
    assert sum(h["event"] == "blacklist.hit" for h in collector.hooks) == ROUNDS
    assert all(daemon.alive() for daemon in two_daemons)


def _new_records(collector: Collector) -> list[int]:
    return [event["data"]["id"] for event in list(collector.live) if event["event"] == "new_record"]


def _wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# --- Presence with several daemons ---

def test_a_daemon_marks_its_cameras_online_again_after_another_daemon_marked_them_offline(app):
    ingest = Ingest(app, workers=None)
    db.session.add_all([Camera(id="CAMP1"), Camera(id="CAMP2")])
    db.session.commit()
    ingest.presence.opened("conn-1", "10.0.0.5", "socketio")
    ingest._seen("conn-1", "CAMP1")
    assert ingest.refresh_presence() == []  # one daemon: nothing to put back
    with app.app_context():
        set_online(db.session, None, False)  # what another daemon's start does
        db.session.commit()
    assert ingest.refresh_presence() == ["CAMP1"]
    db.session.rollback()
    assert db.session.get(Camera, "CAMP1").online is True
    assert db.session.get(Camera, "CAMP2").online is False  # not this daemon's camera
    ingest.presence.closed("conn-1")
    db.session.rollback()
    assert db.session.get(Camera, "CAMP1").online is False
    assert ingest.refresh_presence() == []


# --- Periodic checks of two daemons at the same moment (PostgreSQL: SQLite has one writer) ---

def _two_checks(db_kind, check) -> tuple[list, list, list]:
    """Run `check(session)` in two transactions at once, as two daemons would: the second while the first
    holds its rows, then again once the first committed."""
    if db_kind != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite takes one writer at a time)")
    with Session(db.engine) as first, Session(db.engine) as second:
        # Without the locks the second would wait for the first's rows: fail instead of hanging.
        second.execute(text("SET LOCAL lock_timeout = '3s'"))
        one = check(first)
        other = check(second)
        first.commit()
        later = check(second)
        second.commit()
    return one, other, later


def test_two_daemons_checking_a_silent_camera_at_once_raise_one_alert(app, db_kind):
    db.session.add(Camera(id="CAMQUIET", last_seen=utcnow() - timedelta(minutes=30)))
    db.session.commit()
    one, other, later = _two_checks(db_kind, lambda session: check_silent_cameras(session, utcnow(), 10, "UTC"))
    assert [event for event, _ in one] == ["alert", "camera_status"]
    assert other == [] and later == []
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 1


def test_two_daemons_checking_an_overstay_at_once_raise_one_alert(app, db_kind):
    db.session.add(KnownGroup(name="staff", max_stay_minutes=60))
    db.session.add(Visit(plate_normalized="กข1", entered_at=utcnow() - timedelta(hours=2), group_name="staff"))
    db.session.commit()
    one, other, later = _two_checks(db_kind, lambda session: check_overstays(session, utcnow()))
    assert len(one) == 1 and other == [] and later == []
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 1


# --- nginx stream in front of two daemons ---

def stream_config(work: Path, port: int, daemons: list[Daemon]) -> Path:
    """The shipped stream file with this test's daemons and port, in an nginx.conf of its own."""
    shipped = (ROOT / "nginx" / "lprserver-stream.conf").read_text()
    servers = re.findall(r"^\s*server 10\.0\.0\.\d+:8765 .*;$", shipped, re.MULTILINE)
    assert len(servers) == 2, "the shipped file names two example daemon hosts"
    conf = shipped
    for line, daemon in zip(servers, daemons, strict=True):
        conf = conf.replace(line, line.replace(re.search(r"10\.0\.0\.\d+:8765", line).group(0),
                                               f"127.0.0.1:{daemon.port}"))
    assert "    listen 8765;" in conf
    conf = conf.replace("    listen 8765;", f"    listen 127.0.0.1:{port};")
    (work / "stream.conf").write_text(conf)
    main = work / "nginx.conf"
    main.write_text(f"""
load_module {STREAM_MODULE};
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 256; }}
stream {{
    include {work}/stream.conf;
}}
""")
    return main


@pytest.fixture(scope="module")
def stream(two_daemons):
    if not Path(NGINX).exists() or not STREAM_MODULE.exists():
        pytest.skip("nginx with its stream module is not installed (./setup.sh test: libnginx-mod-stream)")
    work = Path(tempfile.mkdtemp(prefix="lpr-stream-"))
    port = free_port()
    conf = stream_config(work, port, list(two_daemons))
    checked = subprocess.run([NGINX, "-t", "-p", str(work), "-c", str(conf)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    with open(work / "nginx.out", "wb") as out:
        nginx = subprocess.Popen([NGINX, "-p", str(work), "-c", str(conf), "-g", "daemon off;"],
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, nginx)
        yield f"http://127.0.0.1:{port}"
    finally:
        nginx.terminate()
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_camera_s_reads_through_nginx_stream_are_stored_and_answered(stream, two_daemons, app, transport):
    client = socketio.Client(reconnection=False)
    client.connect(stream, transports=[transport], wait_timeout=10)
    try:
        assert client.call("camera_register", {"camera_id": "CAMNS"}, timeout=10)["status"] == "success"
        image = data_uri(make_jpeg(320, 240))
        answers = [client.call("lpr_data", read(f"ns-{transport}-{n}", camera_id="CAMNS", image=image),
                               timeout=15) for n in range(5)]
        again = client.call("lpr_data", read(f"ns-{transport}-0", camera_id="CAMNS", image=image), timeout=15)
    finally:
        close_client(client)
    assert all(a["status"] == "success" and a["duplicate"] is False for a in answers), answers
    assert again == {**answers[0], "duplicate": True}
    assert stored(camera_id="CAMNS") == 5
    record = db.session.get(Record, answers[0]["record_id"])
    assert record.image_path and record.plate_normalized == "กข1234"


def test_nginx_stream_keeps_a_camera_address_on_one_daemon(stream, two_daemons, app):
    """hash $remote_addr: every connection from one address reaches the same daemon (long-polling needs it)."""
    before = [daemon.log().count("event=connected") for daemon in two_daemons]
    for _ in range(8):  # a new connection each (raw WebSocket)
        ws = websocket.create_connection(stream.replace("http://", "ws://") + "/", timeout=15)
        try:
            ws.send(json.dumps({"table": "lpr_detection", "action": "insert",
                                "data": {"license_plate": "ABC1234", "checkpoint_id": "CAMST"}}))
            assert json.loads(ws.recv())["status"] == "success"
        finally:
            ws.close()
    time.sleep(0.3)
    grew = [daemon.log().count("event=connected") - count for daemon, count in zip(two_daemons, before,
                                                                                      strict=True)]
    assert sorted(grew) == [0, 8], grew


def test_long_polling_through_nginx_stream_stays_on_one_daemon(stream, app):
    codes = polls_on_new_connections(stream)
    assert codes == [200] * len(codes), codes


# --- systemd: the templated unit ---

def test_the_templated_unit_passes_systemd_analyze_and_shares_the_port(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (./setup.sh test)")
    template = (ROOT / "systemd" / "lprserver-websocket@.service").read_text()
    single = (ROOT / "systemd" / "lprserver-websocket.service").read_text()
    assert "Environment=INGEST_REUSE_PORT=1" in template.splitlines()
    assert "Conflicts=lprserver-websocket.service" in template.splitlines()
    # The same service as the single daemon's otherwise: command, user, hardening.
    same = [line for line in single.splitlines() if line and not line.startswith(("#", "Description="))]
    assert [line for line in same if line not in template.splitlines()] == []
    (tmp_path / "lprserver.env").write_text("FLASK_CONFIG=production\n")
    text = template.replace("/opt/lprserver/.venv", sys.prefix).replace("/opt/lprserver", str(ROOT))
    (tmp_path / "lprserver-websocket@.service").write_text(
        text.replace("/etc/lprserver/lprserver.env", str(tmp_path / "lprserver.env")))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", "lprserver-websocket@1.service"],
                            capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"})
    assert result.returncode == 0 and "lprserver-websocket" not in result.stderr, result.stderr
