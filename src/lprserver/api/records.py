"""Records: list, read, images, and ingest over HTTP (SPEC §2.3)."""

import math
import mimetypes
from datetime import datetime
from urllib.parse import quote

from flask import Response, abort, current_app, jsonify, request, send_file, stream_with_context
from flask_login import current_user, login_required

from ..audit import audit
from ..auth import bearer_token
from ..cameras import NewCameraBudget
from ..extensions import csrf, db, socketio
from ..images import FilesystemImageStore, thread_map
from ..ingest.errors import IngestError
from ..ingest.pipeline import IngestSettings, prepare_read, store_read
from ..models import Camera, Record, utcnow
from ..plates import normalize_plate
from ..records import RecordFilter, count_records, find_records
from ..times import to_utc
from . import bp
from .export import records_csv
from .schemas import (
    IngestAnswer,
    IngestRefusal,
    RecordFilterArgs,
    RecordIn,
    RecordListArgs,
    RecordPage,
    RecordSchema,
)

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
        "metadata": _finite(record.extra or {}),
    }


def _finite(metadata: dict) -> dict:
    """The metadata with NaN and infinities as null: they are not JSON, and a read stored before the
    pipeline refused them must not make every listing unreadable."""
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in metadata.items()}


@bp.post("/records")
@csrf.exempt
@bp.doc(tags=["records"], security=[{}, {"bearerAuth": []}],
        requestBody={"required": True, "content": {"application/json": {"schema": RecordIn}}})
@bp.alt_response(200, schema=IngestAnswer, description="a repeat of an earlier (camera_id, event_id)")
@bp.alt_response(201, schema=IngestAnswer, description="stored")
@bp.alt_response(400, schema=IngestRefusal, description="refused: invalid_payload, invalid_camera_id, ...")
@bp.alt_response(401, schema=IngestRefusal, description="INGEST_AUTH=token and the camera token is wrong")
@bp.alt_response(503, schema=IngestRefusal, description="unavailable: send it again later")
def create_record():
    """Ingest one read over HTTP through the same pipeline as the daemon."""
    payload = request.get_json(silent=True)
    settings = IngestSettings.from_config(current_app.config)
    try:
        read = prepare_read(payload, bearer_token(request))
        if settings.auth == "open":
            _may_create_camera(read.data.camera_id)
        result = store_read(db.session, _ingest_store(), settings, read)
    except IngestError as exc:
        # The ingest answer of SPEC §2.4 and the API error of SPEC §6, in one body.
        body = dict(exc.answer(), error={"code": exc.code, "message": exc.message, "field": exc.field})
        headers = {"Retry-After": "5"} if exc.code == "unavailable" else {}
        return jsonify(body), HTTP_STATUS[exc.code], headers
    return jsonify(result.answer()), 200 if result.duplicate else 201


def _ingest_store() -> FilesystemImageStore:
    """The web app's image store for reads over HTTP: its decodes and file calls run on OS threads, so
    the gevent worker goes on serving pages while a large image is checked (SPEC §2.4)."""
    store = current_app.extensions.get("lprserver.ingest_store")
    if store is None:
        config = current_app.config
        store = FilesystemImageStore(config["IMAGE_STORAGE_PATH"], thread_map(socketio.async_mode, 4),
                                     config["IMAGE_SYNC"])
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


def record_filter(args: dict) -> RecordFilter:
    """Turn the validated query arguments into the records page's filter (SPEC §6: the same filters)."""
    tz = current_app.config["TIMEZONE"]
    return RecordFilter(
        plate=normalize_plate(args.get("plate") or ""),
        plate_mode=args.get("plate_match", "contains"),
        camera_id=args.get("camera_id") or "",
        since=_aware(args.get("time_from"), tz),
        until=_aware(args.get("time_to"), tz),
        min_confidence=args.get("min_confidence"),
        blacklisted=args.get("blacklisted"),
        since_id=args.get("since_id"),
    )


def _aware(moment: datetime | None, timezone: str) -> datetime | None:
    return None if moment is None else to_utc(moment, timezone, moment)


@bp.get("/records")
@login_required
@bp.arguments(RecordListArgs, location="query", as_kwargs=True)
@bp.response(200, RecordPage)
@bp.doc(tags=["records"])
def list_records(page: int, per_page: int, before_id: int | None = None, **filters):
    """List records, newest first, filtered like the records page, with a total count.

    Page with `before_id` (the `next_before_id` of the page before): it costs the same at
    any depth, where `page` gets slower the deeper it goes. With `since_id` the list
    holds only newer records, oldest first: poll with the largest id you have seen.
    `total` is exact up to 10,000; past that `total_kind` says "at_least", or
    "estimate" for an unfiltered list of a large table.
    """
    criteria = record_filter(filters)
    rows = find_records(db.session, criteria, page, per_page, before_id=before_id)
    more = len(rows) == per_page and criteria.since_id is None
    return jsonify({
        "records": [record_json(r) for r in rows],
        "page": page,
        "per_page": per_page,
        **count_records(db.session, criteria).as_json(),
        "next_before_id": rows[-1].id if more else None,
    })


@bp.get("/records/export.csv")
@login_required
@bp.arguments(RecordFilterArgs, location="query", as_kwargs=True)
@bp.doc(tags=["records"], responses={200: {
    "description": "the matching records as CSV, newest first (streamed)",
    "content": {"text/csv": {"schema": {"type": "string"}}}}})
def export_records(**filters):
    """Export the records that match the filters as CSV."""
    criteria = record_filter(filters)
    audit(db.session, "records.export", user=current_user._get_current_object(),
          detail={k: str(v) for k, v in filters.items()}, ip=request.remote_addr)
    db.session.commit()
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    return Response(
        stream_with_context(records_csv(db.session, criteria)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="records-{stamp}.csv"'},
    )


@bp.get("/records/<id:record_id>")
@login_required
@bp.response(200, RecordSchema)
@bp.doc(tags=["records"])
def get_record(record_id: int):
    """Return one record."""
    return jsonify(record_json(db.get_or_404(Record, record_id)))


IMAGE_DOC = {200: {"description": "the image, in the format the camera sent (JPEG or PNG)",
                   "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                               "image/png": {"schema": {"type": "string", "format": "binary"}}}}}


@bp.get("/records/<id:record_id>/image")
@login_required
@bp.doc(tags=["records"], responses=IMAGE_DOC)
def record_image(record_id: int):
    """Return the record's full image."""
    return _send_stored(db.get_or_404(Record, record_id).image_path)


@bp.get("/records/<id:record_id>/thumbnail")
@login_required
@bp.doc(tags=["records"], responses={200: {**IMAGE_DOC[200], "description": "the thumbnail"}})
def record_thumbnail(record_id: int):
    """Return the record's thumbnail."""
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
