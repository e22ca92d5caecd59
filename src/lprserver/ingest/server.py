"""The ingest daemon: Socket.IO and raw WebSocket doors on one port, one pipeline behind them."""

import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import socketio
from flask import Flask
from sqlalchemy import select

from ..alert_sender import AlertSender
from ..camera_offline import SilenceChecker
from ..cameras import NewCameraBudget, set_online
from ..extensions import db
from ..heartbeat import start_heartbeat
from ..image_store import ImageStore, image_store_from_config
from ..images import io_map, thread_map
from ..live import relay_from_config
from ..models import Camera
from ..mqtt_mirror import publish_cameras, wrap_notify
from ..overstay import OverstayChecker
from ..partitions import ensure_partitions
from ..report_schedules import start_report_mailer
from ..tokens import token_matches
from ..webhooks import DeliveryWorker
from ..wire import camera_status
from .batch import GroupCommit
from .camera_messages import record_health, register_camera
from .connections import (
    LISTEN_BACKLOG,
    ConnectionGuard,
    bound_socket,
    eventlet_server,
    gevent_server,
    request_token,
)
from .errors import IngestError
from .metrics import IngestMetrics
from .pipeline import IngestSettings, Outcome, PreparedRead, ingest_reads, prepare_read, refuse_wrong_token
from .presence import Presence
from .raw_websocket import serve_connection
from .socketio_door import create_socketio_server, oversized_poll
from .store_worker import StoreWorkers, WorkerSetup

log = logging.getLogger("lprserver.ingest")

BUSY_TIMEOUT = 30  # seconds a read may wait for a free database slot before `unavailable`
SWITCH_INTERVAL = 0.0001  # seconds; see serve()
TOKEN_CACHE_SECONDS = 5.0  # how long a camera's token hash is trusted for the early check
PRESENCE_REFRESH_SECONDS = 30.0  # how often a daemon marks its connected cameras online again (SPEC §14)


class Ingest:
    """Runs the pipeline for the daemon's doors: app context, in-flight bound, camera presence."""

    def __init__(self, app: Flask, notify: Callable[[str, dict], None] | None = None,
                 store: ImageStore | None = None, workers: StoreWorkers | None = None):
        """`workers` store the batches in processes of their own; without them the daemon's
        greenlets do, with `store` for the images."""
        self.app, self.workers = app, workers
        self.settings = IngestSettings.from_config(app.config)
        self.store = store or image_store_from_config(app.config)
        # Bounded below the pool size, so no read ever times out waiting for a connection.
        # SQLite takes one writer at a time, and its lock wait blocks the whole event
        # loop, so there reads go one after the other.
        inflight = 1 if _sqlite(app.config) else app.config["INGEST_MAX_INFLIGHT"]
        self.gate = threading.BoundedSemaphore(inflight)
        self.notify = notify or (lambda event, data: None)
        self.presence = Presence(self._set_online)
        # Open mode: the cameras known to exist, and how many more each address may create.
        self.known_cameras: set[str] = set()
        self.new_cameras = NewCameraBudget(app.config["INGEST_NEW_CAMERAS_PER_MINUTE"])
        # A camera waits for each answer; a client that floods a connection with
        # unanswered messages is told to wait instead of queueing without end.
        self.max_per_connection = app.config["INGEST_MAX_INFLIGHT_PER_CONNECTION"]
        self.inflight: Counter[str] = Counter()
        self.writer = GroupCommit(
            workers.store if workers else self._store_here, self.gate, busy_timeout=BUSY_TIMEOUT,
            writers=writer_count(app.config),
            max_batch=app.config["INGEST_BATCH_MAX"],
        ).start()
        self._token_hashes: dict[str, tuple[str | None, float]] = {}
        # Called with (event, payload, answer, seconds) after each message is answered: /metrics and
        # the read_stored log lines listen (metrics.py).
        self.listeners: list[Callable[[str, Any, dict, float], None]] = []

    def _store_here(self, reads: list[PreparedRead]) -> list[Outcome]:
        with self.app.app_context():
            return ingest_reads(db.session, self.store, self.settings, reads)

    def opened(self, conn: str, address: str = "-", door: str = "-") -> None:
        self.presence.opened(conn, address, door)

    def register(self, payload: Any, token: str | None, conn: str) -> dict:
        started = time.perf_counter()
        events: list = []
        answer = self._run(conn, lambda: self._register(payload, token, conn, events))
        if answer["status"] == "success":
            self._seen(conn, answer["camera_id"], marked=True)
            self._publish(events)
        return self._answered("register", payload, answer, started)

    def _register(self, payload: Any, token: str | None, conn: str, events: list) -> dict:
        self._may_create(payload, conn)
        return self._with_session(
            lambda session: register_camera(session, self.settings, payload, token, events))

    def _publish(self, events: list) -> None:
        for event, data in events:
            self.notify(event, data)

    def read(self, payload: Any, token: str | None, conn: str) -> dict:
        started = time.perf_counter()
        result = self._run(conn, lambda: self._read(payload, token, conn))
        if isinstance(result, dict):  # refused: the error answer
            return self._answered("read", payload, result, started)
        self._seen(conn, result.camera_id)
        self._publish(result.events)
        return self._answered("read", payload, result.answer(), started)

    def refuse(self, conn: str, event: str, error: IngestError) -> dict:
        """Answer a message no event handles (bad JSON, an unknown event)."""
        log.info("event=rejected code=%s field=%s message=%r address=%s", error.code, error.field,
                 error.message, self.presence.address.get(conn, "-"))
        return self._answered(event, None, error.answer(), time.perf_counter())

    def _answered(self, event: str, payload: Any, answer: dict, started: float) -> dict:
        seconds = time.perf_counter() - started
        for listener in self.listeners:
            listener(event, payload, answer, seconds)
        return answer

    def _read(self, payload: Any, token: str | None, conn: str):
        read = prepare_read(payload, token)
        if self.settings.auth == "token":
            self._check_token_early(read)
        else:
            self._may_create(payload, conn)
        outcome = self.writer.store_read(read)
        if isinstance(outcome, IngestError):
            raise outcome
        return outcome

    def _may_create(self, payload: Any, conn: str) -> None:
        """In open mode, refuse a camera id never seen when its address created too many
        (INGEST_NEW_CAMERAS_PER_MINUTE, README "Configure")."""
        camera_id = payload.get("camera_id") if isinstance(payload, dict) else None
        if self.settings.auth == "token" or not isinstance(camera_id, str) or camera_id in self.known_cameras:
            return
        address = self.presence.address.get(conn, "-")
        if not self.new_cameras.take(address):
            raise IngestError("unavailable", "this address created too many new cameras in the last "
                              "minute (INGEST_NEW_CAMERAS_PER_MINUTE); retry later")

    def _check_token_early(self, read: PreparedRead) -> None:
        """Refuse a wrong token before the read waits for a writer. A token that matched in the last few
        seconds is not looked up again; the writer checks it against the database when storing."""
        camera_id = read.data.camera_id
        cached = self._token_hashes.get(camera_id)
        fresh = cached and time.monotonic() - cached[1] < TOKEN_CACHE_SECONDS
        if fresh and token_matches(read.token, cached[0]):
            return
        token_hash = self._with_session(
            lambda session: session.scalar(select(Camera.token_hash).where(Camera.id == camera_id)))
        refuse_wrong_token(read, token_hash)
        if len(self._token_hashes) > 100_000:
            self._token_hashes.clear()
        self._token_hashes[camera_id] = (token_hash, time.monotonic())

    def health(self, payload: Any, token: str | None, conn: str) -> dict:
        started = time.perf_counter()
        events: list = []
        answer = self._run(conn, lambda: self._health(payload, token, conn, events))
        if answer["status"] == "success" and isinstance(payload, dict):
            self._seen(conn, payload["camera_id"])
            self.notify("camera_status", camera_status(payload["camera_id"], health=payload.get("status")))
            self._publish(events)
        return self._answered("health", payload, answer, started)

    def _health(self, payload: Any, token: str | None, conn: str, events: list) -> dict:
        self._may_create(payload, conn)
        return self._with_session(
            lambda session: record_health(session, self.settings, payload, token, events))

    def disconnected(self, conn: str) -> None:
        self.presence.closed(conn)

    def start(self) -> None:
        """Forget presence left over from a previous run of the daemon; learn which cameras exist; make
        lpr_records' partitions of this month and the next two where missing (PostgreSQL, SPEC §14)."""
        with self.app.app_context():
            set_online(db.session, None, False)
            db.session.commit()
            made = ensure_partitions(db.session)
            db.session.commit()
            if made:
                log.info("event=partitions_made partitions=%s", ",".join(made))
            self.known_cameras.update(db.session.scalars(select(Camera.id)))
            db.session.remove()

    def refresh_presence(self) -> list[str]:
        """Mark online again the connected cameras that the database says are offline; return them.

        With several daemons (SPEC §14) another daemon's start marks every camera offline, and a camera
        that moved to this daemon is marked offline when its old connection there closes: each daemon
        puts its own cameras back within PRESENCE_REFRESH_SECONDS. With one daemon it finds none."""
        connected = sorted(self.presence.speakers)
        stale: list[str] = []
        with self.app.app_context():
            for start in range(0, len(connected), 500):
                chunk = connected[start:start + 500]
                stale += db.session.scalars(select(Camera.id).where(Camera.id.in_(chunk),
                                                                    Camera.online.is_(False)))
            db.session.remove()
        stale = [camera_id for camera_id in stale if camera_id in self.presence.speakers]
        if stale:
            self._set_online(stale, True)
            gone = [camera_id for camera_id in stale if camera_id not in self.presence.speakers]
            if gone:  # its connection closed meanwhile, and was marked offline before this was marked online
                self._set_online(gone, False)
        return stale

    def keep_presence(self, interval: float = PRESENCE_REFRESH_SECONDS) -> None:
        """Run refresh_presence every `interval` seconds in a (green, once patched) daemon thread."""
        def run():
            while True:
                time.sleep(interval)
                try:
                    self.refresh_presence()
                except Exception as exc:  # best effort, as presence is
                    log.warning("event=presence_refresh_failed error=%r", str(exc).partition("\n")[0][:200])

        threading.Thread(target=run, name="presence-refresh", daemon=True).start()

    def _run(self, conn: str, step: Callable[[], Any]) -> Any:
        """Run one message's step within the connection's in-flight limit; a refusal becomes its answer."""
        if self.inflight[conn] >= self.max_per_connection:
            return IngestError(
                "unavailable", "too many messages in flight on this connection; wait for the answers"
            ).answer()
        self.inflight[conn] += 1
        try:
            return step()
        except IngestError as exc:
            log.info("event=rejected code=%s field=%s message=%r address=%s", exc.code, exc.field,
                     exc.message, self.presence.address.get(conn, "-"))
            return exc.answer()
        except Exception:
            log.exception("event=ingest_failed")
            return IngestError("unavailable", "the server could not store this now; retry later").answer()
        finally:
            self.inflight[conn] -= 1
            if not self.inflight[conn]:
                del self.inflight[conn]

    def _with_session(self, step: Callable) -> Any:
        """Run step(session) holding one of the database slots (the writers hold them too)."""
        if not self.gate.acquire(timeout=BUSY_TIMEOUT):
            raise IngestError("unavailable", "the server is busy; retry later")
        try:
            with self.app.app_context():
                return step(db.session)
        finally:
            self.gate.release()

    def _seen(self, conn: str, camera_id: str, marked: bool = False) -> None:
        self.known_cameras.add(camera_id)
        if self.presence.seen(conn, camera_id, marked) and marked:
            self.notify("camera_status", camera_status(camera_id, online=True))

    def _set_online(self, camera_ids: list[str], online: bool) -> None:
        try:
            with self.app.app_context():
                set_online(db.session, camera_ids, online)
                db.session.commit()
        except Exception as exc:  # presence is best effort; reads are what must not be lost
            log.warning("event=presence_failed camera_id=%s online=%s error=%r", ",".join(camera_ids), online,
                        str(exc))
            return
        for camera_id in camera_ids:
            self.notify("camera_status", camera_status(camera_id, online=online))


def _sqlite(config) -> bool:
    return config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")


def writer_count(config) -> int:
    """How many batches are stored at once: SQLite takes one writer at a time."""
    return 1 if _sqlite(config) else config["INGEST_WRITERS"]


def create_ingest_wsgi(ingest: Ingest, sio: socketio.Server, max_message_bytes: int, metrics=None,
                       trusted_proxies: int = 0):
    """Return the WSGI app of port 8765: /socket.io/ for Socket.IO, any other path for raw WebSocket."""
    sio_app = socketio.WSGIApp(sio, socketio_path="socket.io")

    def ingest_wsgi(environ, start_response):
        path = environ.get("PATH_INFO") or "/"
        # No WebSocket compression on either door: wsproto fails a compressed message whose fragments
        # have a ping between them (close 1007), and cameras' reads are JPEG base64, which barely
        # compresses. A client that offers permessage-deflate gets plain frames.
        environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        if path.startswith("/socket.io"):
            if environ.get("REQUEST_METHOD") == "POST" and _content_length(environ) > max_message_bytes:
                return oversized_poll(sio, environ, start_response, max_message_bytes)
            return sio_app(environ, start_response)
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            serve_connection(ingest, environ, request_token(environ), max_message_bytes, trusted_proxies,
                             ingest.app.config["INGEST_IDLE_SECONDS"])
            return _already_handled(environ)
        if path == "/metrics" and metrics is not None:
            return metrics.wsgi(environ, start_response)
        if path == "/health":
            # Cameras are answered `unavailable` while the image disk is full or read-only, or the object
            # store down: say so here (`image_disk`, or `image_store` with IMAGE_STORE=s3).
            name, check = ingest.store.health(ingest.app.config["HEALTH_MIN_FREE_MB"])
            body = {"status": "ok" if check["ok"] else "fail", "connections": len(ingest.presence.cameras),
                    name: check}
            return _json(start_response, "200 OK" if check["ok"] else "503 Service Unavailable", body)
        return _json(start_response, "426 Upgrade Required", {
            "status": "error", "code": "invalid_payload", "field": None,
            "message": "this port speaks Socket.IO at /socket.io/ and JSON over WebSocket elsewhere",
        })

    return ingest_wsgi


def _content_length(environ: dict) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _already_handled(environ: dict) -> list:
    if "eventlet.input" in environ:
        from eventlet.wsgi import WSGI_LOCAL

        WSGI_LOCAL.already_handled = True
    return []


def _json(start_response, status: str, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def serve(app: Flask, async_mode: str, ingest_class: type[Ingest] = Ingest) -> None:
    """Run the ingest daemon until it is stopped (`ingest_class`: the benchmarks' transport-only one)."""
    # The event loop keeps one thread busy; the writers run in others and need the GIL back
    # after each blocking call. A shorter switch interval than the default 5 ms makes the loop give
    # it up sooner. Measured gain: within the run-to-run spread (BENCHMARKS.md); kept as it is cheap.
    sys.setswitchinterval(SWITCH_INTERVAL)
    host, port = app.config["INGEST_HOST"], app.config["INGEST_PORT"]
    reuse_port = app.config["INGEST_REUSE_PORT"]  # several daemons on one port (SPEC §14)
    # Bound first, so that a port in use stops the daemon before it marks cameras offline (ingest.start);
    # it listens (and so, with SO_REUSEPORT, takes its share of connections) once its workers are ready.
    sock = bound_socket(host, port, reuse_port)
    relay = relay_from_config(app.config)
    if app.config["INGEST_STORE_WORKERS"]:
        workers = StoreWorkers(WorkerSetup.from_config(app.config), writer_count(app.config))
        store = image_store_from_config(app.config)  # for /health: the workers write the images
    else:
        workers = None
        store = image_store_from_config(app.config, thread_map(async_mode), io_map(async_mode))
    # With MQTT_URL, reads and cameras' state go to MQTT too, best effort (mqtt_mirror.py).
    notify = wrap_notify(relay.publish if relay else None, app.config)
    sender = AlertSender(app) if app.config["ALERT_WORKER"] else None
    if sender is not None:  # a new alert's event wakes the sender: no wait for its next poll
        notify = sender.waking(notify)
    ingest = ingest_class(app, notify=notify, store=store, workers=workers)
    ingest.start()
    ingest.keep_presence()
    publish_cameras(app, notify)  # all offline now, as ingest.start() marked them
    if app.config["WEBHOOK_WORKER"]:
        DeliveryWorker(app).start()  # webhooks are sent from here, off every camera's path
    if app.config["OVERSTAY_CHECK_SECONDS"] > 0:  # overstay alerts (SPEC §10), live like a read's alerts
        OverstayChecker(app, app.config["OVERSTAY_CHECK_SECONDS"], ingest.notify).start()
    if app.config["CAMERA_OFFLINE_MINUTES"] > 0:  # silent cameras (SPEC §11), live too
        SilenceChecker(app, ingest.notify).start()
    if sender is not None:
        sender.start()  # e-mail, LINE, MQTT and webhook alerts, off every camera's path
    start_report_mailer(app)  # scheduled reports by e-mail (SPEC §12), with ALERT_WORKER like the alerts
    cap = app.config["INGEST_MAX_MESSAGE_BYTES"]
    metrics = IngestMetrics(ingest, app.config["METRICS_TOKEN"])
    start_heartbeat(app.config["HEARTBEAT_FILE"], app.config["HEARTBEAT_INTERVAL"],
                    lambda: {"connections": len(ingest.presence.cameras)})
    proxies = app.config["TRUSTED_PROXIES"]
    sio = create_socketio_server(ingest, async_mode, cap, proxies)
    wsgi = create_ingest_wsgi(ingest, sio, cap, metrics, proxies)
    guard = ConnectionGuard.from_config(app.config)
    sock.listen(LISTEN_BACKLOG.get(async_mode, 128))
    log.info("event=listening host=%s port=%s async_mode=%s auth=%s reuse_port=%s",
             host, port, async_mode, app.config["INGEST_AUTH"], int(reuse_port))
    if async_mode == "eventlet":
        eventlet_server(sock, wsgi, guard)
    else:
        # gevent's own error lines go through logging too, so they are key=value and scrubbed.
        gevent_server(sock, wsgi, guard, logging.getLogger("lprserver.http")).serve_forever()
