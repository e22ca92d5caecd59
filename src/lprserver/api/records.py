"""Records: list, read, export, images (ingest over HTTP is in ingest.py)."""

import mimetypes
from dataclasses import replace
from datetime import datetime
from urllib.parse import quote

from flask import Response, abort, current_app, jsonify, request, send_file, stream_with_context
from flask_login import current_user, login_required

from ..audit import audit
from ..extensions import db
from ..image_store import ImageStore, ensure_thumbnail, image_store_for
from ..images import ImageStoreUnavailable, media_type
from ..known import known_for
from ..models import Camera, Record, utcnow
from ..plates import province_by_code
from ..records import (
    RecordFilter,
    camera_names,
    count_records,
    find_records,
    search_plate,
    visible_record,
)
from ..sites import current_scope
from ..times import to_utc
from ..wire import record_json
from . import bp
from .export import records_csv
from .schemas import (
    RecordFilterArgs,
    RecordListArgs,
    RecordPage,
    RecordSchema,
)


def record_filter(args: dict) -> RecordFilter:
    """Turn the validated query arguments into the records page's filter (docs/api.md: the same filters)."""
    tz = current_app.config["TIMEZONE"]
    mode = args.get("plate_match", "contains")
    province = province_by_code(args.get("province_code"))  # validated: known, or not given
    return RecordFilter(
        plate=search_plate(args.get("plate") or "", mode),
        plate_mode=mode,
        province_code=province.code if province else "",
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
    scope = current_scope()
    if replace(criteria, since_id=None) != RecordFilter() and page == 1 and before_id is None:
        # A filtered listing is a search (SPEC §15 "Audit"): its first page is audited, as the page's is.
        audit(db.session, "records.search", user=current_user._get_current_object(),
              detail=criteria.as_audit(), ip=request.remote_addr)
        db.session.commit()
    rows = find_records(db.session, criteria, page, per_page, before_id=before_id, scope=scope)
    names = camera_names(db.session, scope=scope)
    more = len(rows) == per_page and criteria.since_id is None
    known = known_for(db.session, [(r.plate_normalized, r.province_code) for r in rows], utcnow())
    return jsonify({
        "records": [record_json(r, names.get(r.camera_id), known.get((r.plate_normalized, r.province_code)))
                    for r in rows],
        "page": page,
        "per_page": per_page,
        **count_records(db.session, criteria, scope=scope).as_json(),
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
    scope = current_scope()
    audit(db.session, "records.export", user=current_user._get_current_object(),
          detail={k: str(v) for k, v in filters.items()}, ip=request.remote_addr)
    db.session.commit()
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    return Response(
        stream_with_context(records_csv(db.session, criteria, scope=scope)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="records-{stamp}.csv"'},
    )


@bp.get("/records/<id:record_id>")
@login_required
@bp.response(200, RecordSchema)
@bp.doc(tags=["records"])
def get_record(record_id: int):
    """Return one record."""
    record = record_or_404(record_id)
    camera = db.session.get(Camera, record.camera_id)
    known = known_for(db.session, [(record.plate_normalized, record.province_code)], utcnow())
    return jsonify(record_json(record, camera.name if camera else None,
                               known.get((record.plate_normalized, record.province_code))))


IMAGE_DOC = {200: {"description": "the image, in the format the camera sent (JPEG or PNG)",
                   "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                               "image/png": {"schema": {"type": "string", "format": "binary"}}}}}


@bp.get("/records/<id:record_id>/image")
@login_required
@bp.doc(tags=["records"], responses=IMAGE_DOC)
def record_image(record_id: int):
    """Return the record's full image (each view is in the audit log)."""
    record = record_or_404(record_id)
    audit_image_view(record, request.remote_addr)
    return send_stored(record.image_path)


@bp.get("/records/<id:record_id>/thumbnail")
@login_required
@bp.doc(tags=["records"], responses={200: {**IMAGE_DOC[200], "description": "the thumbnail"}})
def record_thumbnail(record_id: int):
    """Return the record's thumbnail (made from the image on its first view)."""
    return send_thumbnail(record_or_404(record_id))


def record_or_404(record_id: int) -> Record:
    """The record if the caller's sites see it; 404 (the same answer as a missing record) otherwise."""
    record = visible_record(db.session, record_id, current_scope())
    if record is None:
        abort(404)
    return record


def audit_image_view(record: Record, ip: str | None) -> None:
    """Note a view of a read's full image (SPEC §15 "Audit"); thumbnails are not noted. Commits."""
    user = current_user._get_current_object() if current_user.is_authenticated else None
    audit(db.session, "record.image", user=user, target=f"record:{record.id}", ip=ip)
    db.session.commit()


def send_thumbnail(record: Record):
    """Answer with a read's thumbnail, made from its image and kept the first time it is asked for: the
    ingest answers a camera without making it (issue 24). Reads stored before that have theirs already."""
    if record.image_path and record.thumbnail_path:
        try:
            ensure_thumbnail(image_store_for(current_app), record.image_path, record.thumbnail_path)
        except ImageStoreUnavailable:
            current_app.logger.warning("event=image_store_unavailable action=thumbnail")
            abort(503, "the image store cannot be reached now; try again")
        except OSError as exc:  # the filesystem store could not write it: the image is still there
            current_app.logger.warning("event=thumbnail_failed record_id=%d error=%r", record.id, str(exc))
            abort(503, "the thumbnail cannot be made now; try again")
        except Exception as exc:  # noqa: BLE001 - Pillow's parsers raise many kinds on damaged bytes
            current_app.logger.warning("event=thumbnail_failed record_id=%d error=%s", record.id,
                                       exc.__class__.__name__)
            abort(404, "the image cannot be shown as a thumbnail")
    return send_stored(record.thumbnail_path)


def send_stored(rel_path: str | None):
    """Answer with a stored image, from whichever store IMAGE_STORE names, at the same URL."""
    if not rel_path:
        abort(404, "this record has no image")
    store = image_store_for(current_app)
    path = store.local_path(rel_path)
    if path is None:
        response = _stream_object(store, rel_path)
    elif not path.is_file():
        abort(404, "the image file is missing")
    elif accel := current_app.config["IMAGE_ACCEL_REDIRECT"]:
        # nginx sends the file from its `internal` location; the app only checked who asks.
        response = current_app.response_class(mimetype=mimetypes.guess_type(path.name)[0])
        response.headers["X-Accel-Redirect"] = accel.rstrip("/") + "/" + quote(rel_path)
    else:
        response = send_file(path, max_age=3600)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _stream_object(store: ImageStore, key: str) -> Response:
    """An object store's image, streamed through (SPEC §14). Not a presigned redirect: the bucket stays
    private and needs to be reachable from the web app only, and every fetch passes the checks above
    (sign-in, sites, the audit of a full image) — a presigned link would work for whoever holds it
    until it expires. An image is at most IMAGE_MAX_BYTES; it never sits in memory whole."""
    try:
        body, size = store.stream(key)
    except FileNotFoundError:
        abort(404, "the image file is missing")
    except ImageStoreUnavailable:
        current_app.logger.warning("event=image_store_unavailable action=read")
        abort(503, "the image store cannot be reached now; try again")

    def chunks():
        try:
            yield from iter(lambda: body.read(64 * 1024), b"")
        finally:
            body.close()

    return Response(chunks(), mimetype=media_type(key), headers={"Content-Length": str(size)})
