"""The browsers' live channel: Socket.IO for signed-in users, fed by the daemon's relay."""

import logging
import threading

from flask import Flask, abort, current_app, jsonify, request
from flask_login import current_user, login_required
from flask_socketio import ConnectionRefusedError, join_room
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..alert_list import pending_alert_events
from ..extensions import csrf, db, socketio
from ..live import SIGNATURE_HEADER, TIMESTAMP_HEADER, relay_key, verify
from ..models import BlacklistDetection, Camera, utcnow
from ..records import records_after
from ..statistics import dashboard_stats
from ..url_ids import row_id
from ..wire import blacklist_alert, record_json
from . import bp

log = logging.getLogger("lprserver.web.live")

LIVE_ROOM = "signed-in"
RELAYED_EVENTS = ("new_record", "blacklist_alert", "alert", "alert_resolved", "camera_status")
MAX_BATCH_BYTES = 4 * 1024 * 1024
_stats_lock = threading.Lock()
_stats_running = False


def init_app(app: Flask) -> None:
    socketio.on_event("connect", on_connect)


def on_connect(auth=None):
    """Let only signed-in users listen: each joins the live room and a room of their own."""
    if not current_user.is_authenticated:
        raise ConnectionRefusedError("sign in first")
    join_room(LIVE_ROOM)
    join_room(user_room(current_user.id))
    _ensure_stats_task(current_app._get_current_object())


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def disconnect_user(user_id: int) -> None:
    """Close the live connections of a user who signed out or lost access."""
    room = user_room(user_id)
    try:
        sids = [sid for sid, _ in socketio.server.manager.get_participants("/", room)]
    except (AttributeError, KeyError):
        return
    for sid in sids:
        socketio.server.disconnect(sid, namespace="/")


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
    """Send a live event to every signed-in browser: the web app's side of the one publish interface
    (the daemon's is its relay, which posts here). The HTTP door and acknowledgements call it too."""
    socketio.emit(event, data, to=LIVE_ROOM)


def missed_alert(detection: BlacklistDetection, camera_name: str | None) -> dict:
    """A stored hit as its `blacklist_alert` event showed it."""
    return blacklist_alert(detection.id, detection.match_type, record_json(detection.record, camera_name),
                           detection.entry)


def _names() -> dict[str, str | None]:
    return dict(db.session.execute(select(Camera.id, Camera.name)).all())


@bp.get("/live/missed")
@login_required
def missed():
    """What a (re)connecting page missed: reads after `after`, and every unacknowledged hit."""
    after = request.args.get("after", type=row_id)
    names = _names()
    records = records_after(db.session, after, 100) if after is not None else []
    pending = db.session.scalars(
        select(BlacklistDetection).options(joinedload(BlacklistDetection.record),
                                           joinedload(BlacklistDetection.entry))
        .where(BlacklistDetection.acknowledged_at.is_(None))
        .order_by(BlacklistDetection.id.desc()).limit(20)
    ).all()
    return jsonify({
        "records": [record_json(r, names.get(r.camera_id)) for r in records],
        "alerts": [missed_alert(d, names.get(d.record.camera_id)) for d in reversed(pending)],
        "other_alerts": pending_alert_events(db.session),  # `alert` events not yet acknowledged
    })


def _ensure_stats_task(app: Flask) -> None:
    global _stats_running
    with _stats_lock:
        if _stats_running:
            return
        _stats_running = True
    socketio.start_background_task(_stats_loop, app)


def _stats_loop(app: Flask) -> None:
    """Send `stats` to signed-in browsers every LIVE_STATS_SECONDS while any are connected."""
    global _stats_running
    try:
        while True:
            socketio.sleep(app.config["LIVE_STATS_SECONDS"])
            if not _anyone_listening():
                return
            with app.app_context():
                try:
                    stats = dashboard_stats(db.session, utcnow(), app.config["TIMEZONE"])
                finally:
                    db.session.remove()
            socketio.emit("stats", stats, to=LIVE_ROOM)
    except Exception:
        log.exception("the stats task stopped")
    finally:
        with _stats_lock:
            _stats_running = False


def _anyone_listening() -> bool:
    try:
        return any(True for _ in socketio.server.manager.get_participants("/", LIVE_ROOM))
    except (AttributeError, KeyError):
        return False
