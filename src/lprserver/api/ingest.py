"""POST /api/records: reads over HTTP, through the daemon's pipeline (README "Sending reads").

Who may send: anyone in open mode; with INGEST_AUTH=token, a camera with its own token
(`Authorization: Bearer cam_...`). A signed-in admin or operator may send for any existing camera,
with a read-write API token or the session; a viewer's or a read-only token is refused (403). What
the read causes (its live events: the live feed, blacklist pop-ups) reaches the browsers here, as
the daemon's relay sends them for its own doors, and with MQTT_URL the read and its camera's state
go to MQTT (best effort, after the commit: mqtt_mirror.py). Refusals take the API's error shape with
the ingest code.
"""

import json

from flask import abort, current_app, jsonify, request
from flask_login import current_user

from ..auth import bearer_token
from ..cameras import NewCameraBudget
from ..extensions import csrf, db, socketio
from ..image_store import ImageStore, image_settings, image_store_from_config
from ..images import io_map, thread_map
from ..ingest.errors import IngestError
from ..ingest.pipeline import IngestSettings, prepare_read, store_read
from ..models import Camera
from ..mqtt_mirror import lookup_camera, wrap_notify
from ..web.live import publish
from . import bp
from .errors import error_response
from .schemas import IngestAnswer, RecordIn

HTTP_STATUS = {"invalid_payload": 400, "invalid_camera_id": 400, "invalid_plate": 400, "invalid_image": 400,
               "unauthorized": 401, "unavailable": 503}
SENDERS = ("admin", "operator")


@bp.post("/records")
@csrf.exempt
@bp.doc(tags=["records"], security=[{}, {"bearerAuth": []}],
        requestBody={"required": True, "content": {"application/json": {"schema": RecordIn}}})
@bp.alt_response(200, schema=IngestAnswer, description="a repeat of an earlier (camera_id, event_id)")
@bp.alt_response(201, schema=IngestAnswer, description="stored")
@bp.alt_response(400, description="refused: `invalid_payload`, `invalid_camera_id`, `invalid_plate`, "
                                  "`invalid_image` (error.code), with error.field")
@bp.alt_response(401, description="`unauthorized`: INGEST_AUTH=token and no valid camera token")
@bp.alt_response(403, description="a viewer's token or a read-only token: it may not send reads")
@bp.alt_response(503, description="`unavailable`: send it again later (Retry-After)")
def create_record():
    """Ingest one read over HTTP through the same pipeline as the daemon."""
    settings = IngestSettings.from_config(current_app.config)
    try:
        read = prepare_read(_payload(), bearer_token(request), trusted=_signed_in_sender())
        if settings.auth == "open":
            _may_create_camera(read.data.camera_id)
        result = store_read(db.session, _ingest_store(), settings, read)
    except IngestError as exc:
        headers = {"Retry-After": "5"} if exc.code == "unavailable" else {}
        return error_response(HTTP_STATUS[exc.code], exc.code, exc.message, exc.field, **headers)
    notify = wrap_notify(publish, current_app.config, lookup_camera)  # and to MQTT, best effort
    for event, data in result.events:
        notify(event, data)
    return jsonify(result.answer()), 200 if result.duplicate else 201


def _signed_in_sender() -> bool:
    """True for an admin's or operator's session or read-write API token; a viewer gets 403. A read-only
    token never gets here: the API refuses it every write (api/__init__.py, check_access)."""
    if not current_user.is_authenticated:
        return False  # a camera token, or none (open mode)
    if current_user.role not in SENDERS:
        abort(403, "only admins and operators may send reads (with a read-write API token)")
    return True


def _payload():
    """The read from the body, or an IngestError that says what is wrong with it."""
    raw = request.get_data(cache=True)
    if not raw:
        raise IngestError("invalid_payload", "the request has no body: send the read as a JSON object")
    if request.mimetype != "application/json":
        raise IngestError("invalid_payload", "send the read as JSON with Content-Type: application/json, "
                                             f"not {request.mimetype or 'no content type'}")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise IngestError("invalid_payload", "the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise IngestError("invalid_payload", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                                             f"column {exc.colno}") from None
    except RecursionError:
        raise IngestError("invalid_payload", "the body is not valid JSON: nested too deeply") from None


def _ingest_store() -> ImageStore:
    """The web app's image store for reads over HTTP: its decodes and file calls run on OS threads, so
    the gevent worker goes on serving pages while a large image is checked (an object store's uploads
    run as greenlets)."""
    store = current_app.extensions.get("lprserver.ingest_store")
    if store is None:
        mode = socketio.async_mode
        store = image_store_from_config(image_settings(current_app.config), thread_map(mode, 4), io_map(mode))
        current_app.extensions["lprserver.ingest_store"] = store
    return store


def _may_create_camera(camera_id: str) -> None:
    """In open mode, refuse a new camera id when its address created too many (as the daemon does)."""
    if db.session.get(Camera, camera_id):
        return
    budget = current_app.extensions.setdefault(
        "lprserver.new_cameras", NewCameraBudget(current_app.config["INGEST_NEW_CAMERAS_PER_MINUTE"]))
    if not budget.take(request.remote_addr or "-"):
        raise IngestError("unavailable", "this address created too many new cameras in the last minute "
                                         "(INGEST_NEW_CAMERAS_PER_MINUTE); retry later")
