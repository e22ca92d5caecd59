"""Records: list, read, images, and ingest over HTTP (SPEC §2.3)."""

import mimetypes
from urllib.parse import quote

from flask import abort, current_app, jsonify, request, send_file
from flask_login import login_required
from sqlalchemy import func, select

from ..auth import bearer_token
from ..extensions import csrf, db
from ..images import FilesystemImageStore
from ..ingest.errors import IngestError
from ..ingest.pipeline import IngestSettings, ingest_read
from ..models import Record
from . import bp

HTTP_STATUS = {
    "invalid_payload": 400,
    "invalid_camera_id": 400,
    "invalid_plate": 400,
    "invalid_image": 400,
    "unauthorized": 401,
    "unavailable": 503,
}


def record_json(record: Record) -> dict:
    """Return a record as the API shows it."""
    return {
        "id": record.id,
        "camera_id": record.camera_id,
        "event_id": record.event_id,
        "plate_number": record.plate_number,
        "plate_normalized": record.plate_normalized,
        "province": record.province,
        "confidence": record.confidence,
        "captured_at": record.captured_at.isoformat(),
        "received_at": record.received_at.isoformat(),
        "location": record.location,
        "latitude": record.latitude,
        "longitude": record.longitude,
        "vehicle_type": record.vehicle_type,
        "vehicle_color": record.vehicle_color,
        "direction": record.direction,
        "blacklisted": record.blacklisted,
        "image_sha256": record.image_sha256,
        "image_url": f"/api/records/{record.id}/image" if record.image_path else None,
        "thumbnail_url": f"/api/records/{record.id}/thumbnail" if record.thumbnail_path else None,
        "metadata": record.extra or {},
    }


@bp.post("/records")
@csrf.exempt
def create_record():
    """Ingest one read over HTTP through the same pipeline as the daemon."""
    payload = request.get_json(silent=True)
    store = FilesystemImageStore(current_app.config["IMAGE_STORAGE_PATH"])
    settings = IngestSettings.from_config(current_app.config)
    try:
        result = ingest_read(db.session, store, settings, payload, token=bearer_token(request))
    except IngestError as exc:
        # The ingest answer of SPEC §2.4 and the API error of SPEC §6, in one body.
        body = dict(exc.answer(), error={"code": exc.code, "message": exc.message, "field": exc.field})
        headers = {"Retry-After": "5"} if exc.code == "unavailable" else {}
        return jsonify(body), HTTP_STATUS[exc.code], headers
    return jsonify(result.answer()), 200 if result.duplicate else 201


@bp.get("/records")
@login_required
def list_records():
    """List records, newest first, with a total count."""
    page = request.args.get("page", 1, type=int)
    per_page = min(max(request.args.get("per_page", 50, type=int), 1), 500)
    if page < 1:
        abort(400, "page must be 1 or more")
    query = select(Record)
    if camera_id := request.args.get("camera_id"):
        query = query.where(Record.camera_id == camera_id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.order_by(Record.id.desc()).limit(per_page).offset((page - 1) * per_page)
    )
    return jsonify({
        "records": [record_json(r) for r in rows],
        "page": page,
        "per_page": per_page,
        "total": total,
    })


@bp.get("/records/<int:record_id>")
@login_required
def get_record(record_id: int):
    return jsonify(record_json(db.get_or_404(Record, record_id)))


@bp.get("/records/<int:record_id>/image")
@login_required
def record_image(record_id: int):
    return _send_stored(db.get_or_404(Record, record_id).image_path)


@bp.get("/records/<int:record_id>/thumbnail")
@login_required
def record_thumbnail(record_id: int):
    return _send_stored(db.get_or_404(Record, record_id).thumbnail_path)


def _send_stored(rel_path: str | None):
    if not rel_path:
        abort(404, "this record has no image")
    store = FilesystemImageStore(current_app.config["IMAGE_STORAGE_PATH"])
    path = store.path(rel_path)
    if not path.is_file():
        abort(404, "the image file is missing")
    if accel := current_app.config["IMAGE_ACCEL_REDIRECT"]:
        # nginx sends the file from its `internal` location; the app only checked who asks.
        response = current_app.response_class(mimetype=mimetypes.guess_type(path.name)[0])
        response.headers["X-Accel-Redirect"] = accel.rstrip("/") + "/" + quote(rel_path)
    else:
        response = send_file(path, max_age=3600)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
