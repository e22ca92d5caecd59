"""The browsers' live channel: Socket.IO for signed-in users, fed by the daemon's relay.

Sites (SPEC §15): every socket joins EVERYONE_ROOM; a user without a site limit also joins ALL_SITES_ROOM,
a user limited to sites joins `site:<name>` for each of them. An event of a camera (a read, a hit, an
alert, a camera's state) goes to ALL_SITES_ROOM and to the room of the camera's site, so each socket
that may see it gets it once (Socket.IO sends an event addressed to several rooms once to each socket in
any of them); an event of a camera with no site goes to ALL_SITES_ROOM only. The camera's site is looked
up in `camera_sites`, a map of every camera's site re-read at most SITE_CACHE_SECONDS old (and at once for
a camera it does not know yet), so a site changed by `PATCH /api/cameras/<id>` applies to live events
within a few seconds (at once in the process that changed it, which calls `forget_camera_sites`). Events
not tied to a camera go to EVERYONE_ROOM. The periodic `stats` are counted once per distinct set of sites
among the connected users (`scope:<A,B>` rooms) and sent to that room.

Several web workers or hosts (SPEC §14, live_queue.py): with LIVE_MESSAGE_QUEUE set, an event published here
reaches the browsers of every worker once, whichever worker took the daemon's batch; the rooms above are each
worker's own, so the sites filter alike everywhere. The `stats` are each worker's for its own browsers.
"""

import logging
import threading
import time

from flask import Flask, abort, current_app, jsonify, request
from flask_login import current_user, login_required
from flask_socketio import ConnectionRefusedError, join_room
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..alert_list import pending_alert_events
from ..extensions import csrf, db, socketio
from ..live import SIGNATURE_HEADER, TIMESTAMP_HEADER, relay_key, verify
from ..live_queue import disconnect_room
from ..models import BlacklistDetection, Camera, Record, utcnow
from ..sites import EVERYWHERE, Scope, current_scope
from ..statistics import dashboard_stats, hits_clause
from ..url_ids import row_id
from ..wire import blacklist_alert, record_json
from . import bp

log = logging.getLogger("lprserver.web.live")

EVERYONE_ROOM = "signed-in"  # every signed-in socket
ALL_SITES_ROOM = "sites:all"  # the sockets of users without a site limit: every camera's events
RELAYED_EVENTS = ("new_record", "blacklist_alert", "alert", "alert_resolved", "camera_status")
# The events that belong to a camera (its id in `camera_id`, or in the hit's `record`); one of these
# without a camera id goes to unlimited users only.
CAMERA_EVENTS = frozenset((*RELAYED_EVENTS, "blacklist_ack", "alert_ack"))
SITE_CACHE_SECONDS = 5.0
UNKNOWN_CAMERA_RELOAD_SECONDS = 0.5  # how often an event of a camera not in the map reloads it
MAX_BATCH_BYTES = 4 * 1024 * 1024
MISSED_RECORDS = 100
MISSED_HITS = 20
_stats_lock = threading.Lock()
_stats_running = False


def init_app(app: Flask) -> None:
    socketio.on_event("connect", on_connect)


def site_room(site: str) -> str:
    return f"site:{site}"


def scope_room(scope: Scope) -> str:
    """The room of every socket of one set of sites (site names hold no commas), for their `stats`."""
    return "scope:" + ",".join(scope.as_list() or ())


def on_connect(auth=None):
    """Let only signed-in users listen: each joins the rooms of what they may see and a room of their own."""
    if not current_user.is_authenticated:
        raise ConnectionRefusedError("sign in first")
    scope = current_scope()
    join_room(EVERYONE_ROOM)
    if scope.limited:
        for site in scope.as_list():
            join_room(site_room(site))
        join_room(scope_room(scope))
    else:
        join_room(ALL_SITES_ROOM)
    join_room(user_room(current_user.id))
    _ensure_stats_task(current_app._get_current_object())


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def disconnect_user(user_id: int) -> None:
    """Close the live connections of a user who signed out or lost access (or whose sites changed:
    their pages reconnect into the rooms of their new sites)."""
    try:
        disconnect_room(socketio.server, user_room(user_id))  # on every web worker (live_queue.py)
    except (AttributeError, KeyError):
        return


class CameraSites:
    """Every camera's site, read from the database at most `ttl` seconds ago; thread-safe."""

    def __init__(self, ttl: float = SITE_CACHE_SECONDS):
        self.ttl = ttl
        self._sites: dict[str, str | None] = {}
        self._loaded = float("-inf")
        self._lock = threading.Lock()

    def site_of(self, camera_id: str) -> str | None:
        """The camera's site (None: no site, or a camera not known even after reloading)."""
        age = time.monotonic() - self._loaded
        if age > self.ttl or (camera_id not in self._sites and age > UNKNOWN_CAMERA_RELOAD_SECONDS):
            self._load()
        return self._sites.get(camera_id)

    def forget(self) -> None:
        """Re-read the sites before the next event (a camera's site was changed in this process)."""
        self._loaded = float("-inf")

    def _load(self) -> None:
        with self._lock:
            try:
                sites = dict(db.session.execute(select(Camera.id, Camera.site)).all())
            except Exception:  # a live event must not fail for this: keep the last map, try again soon
                log.exception("could not read the cameras' sites")
                db.session.rollback()
                return
            self._sites, self._loaded = sites, time.monotonic()


camera_sites = CameraSites()


def forget_camera_sites() -> None:
    """Call after changing a camera's site: this process's live events follow it at once."""
    camera_sites.forget()


def event_camera(event: str, data: dict) -> tuple[bool, str | None]:
    """(whether the event belongs to a camera, that camera's id or None)."""
    camera_id = data.get("camera_id")
    if camera_id is None and isinstance(data.get("record"), dict):
        camera_id = data["record"].get("camera_id")
    if event in CAMERA_EVENTS or camera_id is not None:
        return True, camera_id if isinstance(camera_id, str) else None
    return False, None


def rooms_for(event: str, data: dict) -> list[str] | str:
    """Where an event goes: its camera's site's room and the unlimited users', or everyone's."""
    of_camera, camera_id = event_camera(event, data)
    if not of_camera:
        return EVERYONE_ROOM
    site = camera_sites.site_of(camera_id) if camera_id is not None else None
    return [ALL_SITES_ROOM, site_room(site)] if site is not None else ALL_SITES_ROOM


@bp.post("/internal/live")
@csrf.exempt  # machine-to-machine: authenticated by the HMAC of SECRET_KEY, not a session
def relay_in():
    """Take a signed batch of events from the ingest daemon and pass it to signed-in browsers."""
    if (request.content_length or 0) > MAX_BATCH_BYTES:
        abort(413)
    body = request.get_data()
    key = relay_key(current_app.config["SECRET_KEY"])
    if not verify(key, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER), body):
        abort(403)
    events = (request.get_json(silent=True) or {}).get("events") or []
    for item in events:
        event, data = (item.get("event"), item.get("data")) if isinstance(item, dict) else (None, None)
        if event in RELAYED_EVENTS and isinstance(data, dict):
            publish(event, data)
    return "", 204


def publish(event: str, data: dict) -> None:
    """Send a live event to the signed-in browsers that may see it (the module's docstring): the web
    app's side of the one publish interface (the daemon's is its relay, which posts here). The HTTP door,
    corrections and acknowledgements call it too. Needs an app context (the cameras' sites)."""
    socketio.emit(event, data, to=rooms_for(event, data))


def missed_alert(detection: BlacklistDetection, camera_name: str | None) -> dict:
    """A stored hit as its `blacklist_alert` event showed it."""
    return blacklist_alert(detection.id, detection.match_type, record_json(detection.record, camera_name),
                           detection.entry)


def _names() -> dict[str, str | None]:
    return dict(db.session.execute(select(Camera.id, Camera.name)).all())


@bp.get("/live/missed")
@login_required
def missed():
    """What a (re)connecting page missed: reads after `after`, and every unacknowledged hit and alert;
    of the user's sites only."""
    after = request.args.get("after", type=row_id)
    scope = current_scope()
    names = _names()
    records = db.session.scalars(
        select(Record).where(Record.id > after, scope.cameras_clause(Record.camera_id))
        .order_by(Record.id.asc()).limit(MISSED_RECORDS)).all() if after is not None else []
    pending = db.session.scalars(
        select(BlacklistDetection).options(joinedload(BlacklistDetection.record),
                                           joinedload(BlacklistDetection.entry))
        .where(BlacklistDetection.acknowledged_at.is_(None), hits_clause(scope))
        .order_by(BlacklistDetection.id.desc()).limit(MISSED_HITS)
    ).all()
    return jsonify({
        "records": [record_json(r, names.get(r.camera_id)) for r in records],
        "alerts": [missed_alert(d, names.get(d.record.camera_id)) for d in reversed(pending)],
        # `alert` events not yet acknowledged
        "other_alerts": pending_alert_events(db.session, scope=scope),
    })


def _ensure_stats_task(app: Flask) -> None:
    global _stats_running
    with _stats_lock:
        if _stats_running:
            return
        _stats_running = True
    socketio.start_background_task(_stats_loop, app)


def _stats_loop(app: Flask) -> None:
    """Send `stats` to signed-in browsers every LIVE_STATS_SECONDS while any are connected: the unlimited
    users' to ALL_SITES_ROOM, each set of sites' to its `scope:` room."""
    global _stats_running
    try:
        while True:
            socketio.sleep(app.config["LIVE_STATS_SECONDS"])
            if not _anyone_listening():
                return
            targets = [(room, _scope_of_room(room)) for room in _scope_rooms()]
            if _listening(ALL_SITES_ROOM):
                targets.insert(0, (ALL_SITES_ROOM, EVERYWHERE))
            for room, scope in targets:
                with app.app_context():
                    try:
                        stats = dashboard_stats(db.session, utcnow(), app.config["TIMEZONE"], scope=scope)
                    finally:
                        db.session.remove()
                # This worker's own browsers only: every web worker runs this loop for its browsers, and
                # through LIVE_MESSAGE_QUEUE each browser would get every worker's copy (SPEC §14).
                socketio.emit("stats", stats, to=room, ignore_queue=True)
    except Exception:
        log.exception("the stats task stopped")
    finally:
        with _stats_lock:
            _stats_running = False


def _scope_of_room(room: str) -> Scope:
    return Scope(frozenset(name for name in room.removeprefix("scope:").split(",") if name))


def _scope_rooms() -> list[str]:
    try:
        rooms = socketio.server.manager.rooms.get("/", {})
        return sorted(room for room in list(rooms) if isinstance(room, str) and room.startswith("scope:")
                      and _listening(room))
    except (AttributeError, KeyError):
        return []


def _listening(room: str) -> bool:
    try:
        return any(True for _ in socketio.server.manager.get_participants("/", room))
    except (AttributeError, KeyError):
        return False


def _anyone_listening() -> bool:
    return _listening(EVERYONE_ROOM)
