"""Several web workers (SPEC §14, README "Several web workers or hosts"): with LIVE_MESSAGE_QUEUE on a real
Redis, two web app processes (and one gunicorn with two workers) deliver every live event once to every
signed-in browser, whichever worker took the daemon's batch; a site-limited user still gets only their
sites' events; `stats` come once per period; signing out closes the user's sockets on every worker; a queue
that does not answer stops the start with a clear error instead of hanging it."""

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

import config as settings
from lprserver.extensions import db
from lprserver.live import relay_key, sign
from lprserver.live_queue import client_manager, shown_url
from lprserver.models import Camera, User

from .pgcluster import free_port
from .processes import ROOT, Daemon, WebApp
from .redisserver import redis_server  # noqa: F401  (a fixture)
from .test_ingest import SEED_READ, camera, close_client
from .test_live import Inbox, browser_socket
from .webserver import csrf_token, web_session

QUIET_SECONDS = 1.0  # after the last expected event: a second copy would have arrived by then
CHANNEL = "lprserver-live"  # LIVE_MESSAGE_CHANNEL's default


def wait_for_subscribers(server, channel: str, count: int, timeout: float = 10) -> None:
    """Wait until `count` web workers listen on the channel (a worker subscribes when its first browser
    connects; an event published before that has no browser of its to miss)."""
    import redis

    client = redis.Redis.from_url(server.url)
    try:
        deadline = time.monotonic() + timeout
        while (listening := dict(client.pubsub_numsub(channel)).get(channel.encode(), 0)) < count:
            assert time.monotonic() < deadline, f"{listening} of {count} workers listen on {channel}"
            time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture(scope="module")
def queue_env(base_env, redis_server):  # noqa: F811
    return {**base_env, "ASYNC_MODE": "gevent", "LIVE_STATS_SECONDS": "1", "LIVE_MESSAGE_QUEUE": redis_server.url}


@pytest.fixture(scope="module")
def two_webs(queue_env, tmp_path_factory):
    """Two web app processes (`python run.py`) on one Redis."""
    folder = tmp_path_factory.mktemp("queue-web")
    webs = []
    try:
        for n in (1, 2):
            webs.append(WebApp(queue_env, folder / f"web{n}.log").start())
        yield webs
    finally:
        for web in webs:
            web.stop()


def post_batch(web, env, events) -> None:
    """A batch as the daemon's relay signs it, to one web app's /internal/live."""
    body = json.dumps({"events": events}).encode()
    stamp = str(time.time())
    answer = requests.post(f"{web.url}/internal/live", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-LPR-Timestamp": stamp,
        "X-LPR-Signature": sign(relay_key(env["SECRET_KEY"]), stamp, body)})
    assert answer.status_code == 204


def close_all(clients) -> None:
    """close_client for each at once: each close waits 3 s for a close frame the web app does not send."""
    closers = [threading.Thread(target=close_client, args=(client,)) for client in clients]
    for closer in closers:
        closer.start()
    for closer in closers:
        closer.join()


def record_ids(inbox: Inbox) -> list[int]:
    return sorted(d["id"] for e, d, _ in inbox.items if e == "new_record")


def statuses_of(inbox: Inbox, camera_id: str) -> int:
    return sum(1 for e, d, _ in inbox.items if e == "camera_status" and d.get("camera_id") == camera_id)


def add_cameras_and_limit_viewer(*cameras: tuple[str, str]) -> None:
    db.session.add_all([Camera(id=camera_id, name=camera_id, site=site) for camera_id, site in cameras])
    db.session.scalar(select(User).filter_by(username="viewer")).sites = ["A"]
    db.session.commit()


def test_every_browser_on_either_worker_gets_each_event_once_and_sites_still_filter(
        two_webs, queue_env, redis_server, app, users, tmp_path):  # noqa: F811
    web1, web2 = two_webs
    add_cameras_and_limit_viewer(("QA-1", "A"), ("QB-1", "B"))
    sessions = [web_session(web1, "admin"), web_session(web2, "admin"), web_session(web2, "viewer")]
    sockets = [browser_socket(web, http) for web, http in zip((web1, web2, web2), sessions, strict=True)]
    admin1, admin2, viewer2 = inboxes = [Inbox(s, "new_record", "camera_status") for s in sockets]
    wait_for_subscribers(redis_server, CHANNEL, 2)
    daemon = Daemon({**queue_env, "LIVE_RELAY_URL": f"{web1.url}/internal/live"}, tmp_path / "daemon.log")
    try:
        daemon.start()  # relays to web1 only
        with camera(daemon) as cam:
            read = cam.call("lpr_data", {**SEED_READ, "camera_id": "QA-1"}, timeout=10)["record_id"]
        post_batch(web1, queue_env, [{"event": "new_record", "data": {"id": 900001, "camera_id": "QA-1"}},
                                     {"event": "new_record", "data": {"id": 900002, "camera_id": "QB-1"}},
                                     {"event": "camera_status", "data": {"camera_id": "QB-1", "online": False}}])
        post_batch(web2, queue_env, [{"event": "new_record", "data": {"id": 900003, "camera_id": "QA-1"}}])
        for inbox in inboxes:
            for wanted in (read, 900001, 900003):
                inbox.wait_for(lambda e, d, wanted=wanted: e == "new_record" and d["id"] == wanted)
        for inbox in (admin1, admin2):
            inbox.wait_for(lambda e, d: e == "new_record" and d["id"] == 900002)
            inbox.wait_for(lambda e, d: e == "camera_status" and d.get("camera_id") == "QB-1")
        time.sleep(QUIET_SECONDS)
        everything = sorted([read, 900001, 900002, 900003])
        assert record_ids(admin1) == everything and record_ids(admin2) == everything  # each once
        assert statuses_of(admin1, "QB-1") == 1 and statuses_of(admin2, "QB-1") == 1
        # The viewer limited to site A, on the worker that did not take the batches: A's events only, once.
        assert record_ids(viewer2) == sorted([read, 900001, 900003])
        assert statuses_of(viewer2, "QB-1") == 0
    finally:
        close_all(sockets)
        daemon.stop()


def test_stats_come_once_per_period_on_each_worker(two_webs, app, users):
    web1, web2 = two_webs
    sessions = [web_session(web1, "admin"), web_session(web2, "admin")]
    sockets = [browser_socket(web, http) for web, http in zip(two_webs, sessions, strict=True)]
    inboxes = [Inbox(s, "stats") for s in sockets]
    try:
        for inbox in inboxes:
            inbox.wait_for(lambda e, d: True, timeout=15)
        started = time.time()
        time.sleep(2.5)
        for inbox in inboxes:
            arrived = [at for _, _, at in inbox.items if at >= started]
            # LIVE_STATS_SECONDS=1: at most one a second; each worker's copy through the queue would double it.
            assert 1 <= len(arrived) <= 3, arrived
    finally:
        close_all(sockets)


def test_signing_out_on_one_worker_closes_the_users_sockets_on_the_other(
        two_webs, redis_server, app, users):  # noqa: F811
    web1, web2 = two_webs
    viewer, admin = web_session(web1, "viewer"), web_session(web2, "admin")
    closed = threading.Event()
    viewer_socket = browser_socket(web2, viewer)  # the viewer's cookie works on either worker
    viewer_socket.on("disconnect", lambda *args: closed.set())
    admin_sockets = [browser_socket(web, admin) for web in two_webs]
    wait_for_subscribers(redis_server, CHANNEL, 2)
    try:
        token = csrf_token(viewer.get(f"{web1.url}/", timeout=10).text)
        answer = viewer.post(f"{web1.url}/logout", data={"csrf_token": token}, timeout=10, allow_redirects=False)
        assert answer.status_code == 302
        assert closed.wait(10), "the viewer's socket on the other worker stayed open"
        time.sleep(0.3)
        assert all(s.connected for s in admin_sockets)  # only that user's sockets
    finally:
        close_all([viewer_socket, *admin_sockets])


def serving_pid(port: int, client) -> int:
    """The pid of the process at the server's end of a browser socket's connection (ss, as root)."""
    local = client.eio.ws.sock.getsockname()[1]
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} and dport = :{local} )"],
                         capture_output=True, text=True, check=True).stdout
    return int(re.search(r"pid=(\d+)", out).group(1))


def test_gunicorn_with_two_workers_on_one_port(queue_env, redis_server, app, users, tmp_path):  # noqa: F811
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "-k", "gevent", "--workers", "2", "-b", "127.0.0.1:{port}", "--control-socket",
               str(tmp_path / "gunicorn.ctl"), "wsgi:app"]
    env = {**queue_env, "WEB_WORKERS": "2", "LIVE_MESSAGE_CHANNEL": "gunicorn-test"}  # two_webs' has theirs
    web = WebApp(env, tmp_path / "gunicorn.log", command).start()
    sockets = []
    try:
        add_cameras_and_limit_viewer(("QA-2", "A"), ("QB-2", "B"))
        admin, viewer = web_session(web, "admin"), web_session(web, "viewer")
        sockets.append(browser_socket(web, admin))
        first = serving_pid(web.port, sockets[0])
        # The workers share one listening socket: with the first one paused, the other accepts the next two.
        os.kill(first, signal.SIGSTOP)
        try:
            sockets += [browser_socket(web, admin), browser_socket(web, viewer)]
        finally:
            os.kill(first, signal.SIGCONT)
        others = {serving_pid(web.port, s) for s in sockets[1:]}
        assert len(others) == 1 and first not in others
        wait_for_subscribers(redis_server, "gunicorn-test", 2)  # each worker listens once it has a browser
        admin1, admin2, viewer2 = inboxes = [Inbox(s, "new_record") for s in sockets]
        for n in range(6):  # each batch to whichever worker accepts it
            post_batch(web, queue_env, [{"event": "new_record", "data": {"id": 910000 + n,
                                                                          "camera_id": ("QA-2", "QB-2")[n % 2]}}])
        for inbox in inboxes:
            inbox.wait_for(lambda e, d: d["id"] == 910004)
        admin1.wait_for(lambda e, d: d["id"] == 910005)
        admin2.wait_for(lambda e, d: d["id"] == 910005)
        time.sleep(QUIET_SECONDS)
        assert record_ids(admin1) == record_ids(admin2) == list(range(910000, 910006))
        assert record_ids(viewer2) == [910000, 910002, 910004]
    finally:
        close_all(sockets)
        web.stop()


@pytest.fixture(params=["refused", "silent"])
def dead_queue(request):
    """A Redis URL where nothing answers: the port refuses, or accepts and never says a word."""
    port = free_port()
    hole = None
    if request.param == "silent":
        hole = socket.socket()
        hole.bind(("127.0.0.1", port))
        hole.listen(16)
    yield f"redis://:not-for-logs-Pa55@127.0.0.1:{port}/0"
    if hole is not None:
        hole.close()


def test_a_queue_that_does_not_answer_stops_the_start_with_a_clear_error(base_env, dead_queue, tmp_path):
    log_path = tmp_path / "web.log"
    env = {**base_env, "ASYNC_MODE": "gevent", "LIVE_MESSAGE_QUEUE": dead_queue, "WEB_PORT": str(free_port()),
           "WEB_HOST": "127.0.0.1"}
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.run([sys.executable, "run.py"], cwd=ROOT, env={**os.environ, **env}, stdout=log,
                                 stderr=subprocess.STDOUT, timeout=60)
    took = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    assert process.returncode != 0
    assert f"LIVE_MESSAGE_QUEUE {shown_url(dead_queue)} does not answer" in text, text
    assert "not-for-logs" not in text
    assert took < 30, took  # a 3 s timeout, not a hang


@pytest.mark.parametrize("setting, problem", [
    ({"LIVE_MESSAGE_QUEUE": "http://:secret-pw@queue:6379"}, "must be empty"),
    ({"LIVE_MESSAGE_QUEUE": "127.0.0.1:6379"}, "must be empty"),
    ({"WEB_WORKERS": "2"}, "WEB_WORKERS=2 needs LIVE_MESSAGE_QUEUE"),
    ({"WEB_WORKERS": "0"}, "WEB_WORKERS must be at least 1"),
    ({"LIVE_MESSAGE_QUEUE": "redis://q", "LIVE_MESSAGE_CHANNEL": "a b"}, "LIVE_MESSAGE_CHANNEL"),
])
def test_bad_settings_are_refused_at_start_without_repeating_a_password(setting, problem):
    with pytest.raises(ValueError, match=problem) as refused:
        settings.TestingConfig(setting)
    assert "secret-pw" not in str(refused.value)


def test_good_settings_and_the_default():
    assert settings.TestingConfig({}).LIVE_MESSAGE_QUEUE == "" and settings.TestingConfig({}).WEB_WORKERS == 1
    good = settings.TestingConfig({"LIVE_MESSAGE_QUEUE": "rediss://:pw@cache.example:6380/2", "WEB_WORKERS": "4"})
    assert good.WEB_WORKERS == 4 and good.LIVE_MESSAGE_CHANNEL == "lprserver-live"
    for url in ("redis://", "amqp://guest:guest@rabbit//", "amqps://rabbit", "kafka://broker:9092"):
        assert settings.TestingConfig({"LIVE_MESSAGE_QUEUE": url}).LIVE_MESSAGE_QUEUE == url
    assert shown_url("rediss://user:pw@cache.example:6380/2") == "rediss://cache.example:6380/2"
    assert client_manager({"LIVE_MESSAGE_QUEUE": ""}) is None  # today's in-process channel, no queue


@pytest.mark.parametrize("scheme, package", [("amqp", "kombu"), ("kafka", "kafka-python")])
def test_rabbitmq_and_kafka_need_their_package_or_a_broker_that_answers(scheme, package):
    config = {"LIVE_MESSAGE_QUEUE": f"{scheme}://127.0.0.1:{free_port()}", "LIVE_MESSAGE_CHANNEL": "t"}
    installed = importlib.util.find_spec(package.removesuffix("-python")) is not None
    wanted = "does not answer" if installed else f"needs the Python package {package}"
    with pytest.raises(RuntimeError, match=wanted):
        client_manager(config)
