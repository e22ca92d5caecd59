"""Corrections (SPEC §10): correct a misread (`PATCH /api/records/<id>`), and the training set of every
correction with its image (`GET /api/corrections/export.zip`)."""

import csv
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import datetime

import marshmallow as ma
from flask import Response, abort, current_app, request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import audit
from ..auth import require_role
from ..corrections import CorrectionError, correct_record
from ..extensions import db
from ..image_store import ImageStore, image_store_for
from ..images import ImageStoreUnavailable, media_type
from ..known import known_for
from ..models import Camera, Record, utcnow
from ..records import scoped
from ..sites import EVERYWHERE, Scope, current_scope
from ..times import to_utc
from ..wire import record_json
from . import bp
from .errors import error_response
from .records import record_or_404
from .schemas import RecordSchema

WRITERS = ("admin", "operator")
LABEL_COLUMNS = ("file", "plate_sent", "plate_corrected", "camera_id", "captured_at")


class CorrectionIn(ma.Schema):
    plate_corrected = ma.fields.String(required=True, metadata={
        "description": "the plate as it is on the vehicle, as typed (a province in the text counts)",
        "example": "กข1234"})
    province = ma.fields.String(allow_none=True, metadata={
        "description": "the province: its Thai or English name or ISO 3166-2:TH code; left out, the "
                       "one the plate text names counts, else the read keeps its own; empty clears it",
        "example": "กรุงเทพมหานคร"})


class ExportArgs(ma.Schema):
    since = ma.fields.DateTime(metadata={"description": "corrected at or after (inclusive); without an "
                                                        "offset, in the server's TIMEZONE"})
    until = ma.fields.DateTime(metadata={"description": "corrected before (exclusive)"})
    camera_id = ma.fields.String(validate=ma.validate.Length(min=1, max=64))


def _user():
    return current_user._get_current_object()


def answer_record(record: Record):
    """A record's JSON with its camera's name and the known plate it is now."""
    camera = db.session.get(Camera, record.camera_id)
    known = known_for(db.session, [(record.plate_normalized, record.province_code)], utcnow())
    return record_json(record, camera.name if camera else None,
                       known.get((record.plate_normalized, record.province_code)))


def publish_events(events) -> None:
    """Send a correction's alerts to every open page (after the commit)."""
    from ..web.live import publish

    for event, data in events:
        publish(event, data)


@bp.patch("/records/<id:record_id>")
@require_role(*WRITERS)
@bp.arguments(CorrectionIn)
@bp.response(200, RecordSchema)
@bp.alt_response(400, description="`validation_error` with `field` (`plate_corrected`: empty or over 32 "
                                  "characters once normalised; `province`: not a Thai province); "
                                  "nothing is changed")
@bp.alt_response(404, description="`not_found`: no record with this id")
@bp.doc(tags=["records"])
def correct(data: dict, record_id: int):
    """Correct a misread (operators and admins).

    `plate_number` stays as sent; `plate_corrected`, `corrected_by`, `corrected_at` are kept and
    `plate_normalized`, the province and the format follow the correction. The blacklist and the
    camera's known list are matched again: a correction onto a blacklisted plate raises its alert (live
    `blacklist_alert`), one at a gate onto a plate not on its list raises `not_on_list`. The read leaves
    the review queue (`review_state` `corrected`). Correcting to the same plate again changes only the stamp.
    """
    record = record_or_404(record_id)
    try:
        correction = correct_record(db.session, record, data["plate_corrected"], data.get("province"),
                                    _user(), utcnow(), ip=request.remote_addr,
                                    timezone=current_app.config["TIMEZONE"])
    except CorrectionError as exc:
        db.session.rollback()
        return error_response(400, "validation_error", f"{exc.field}: {exc}", exc.field)
    db.session.commit()
    publish_events(correction.events)
    return answer_record(record)


@bp.get("/corrections/export.zip")
@require_role(*WRITERS)
@bp.arguments(ExportArgs, location="query", as_kwargs=True)
@bp.doc(tags=["records"], responses={200: {
    "description": "a zip of `images/<record_id>.jpg` (or `.png`, as the camera sent it) and `labels.csv` "
                   "(`file`, `plate_sent`, `plate_corrected`, `camera_id`, `captured_at` in UTC), oldest "
                   "correction first; corrected reads without an image file are left out",
    "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}})
def export_corrections(since: datetime | None = None, until: datetime | None = None,
                       camera_id: str | None = None):
    """The corrections as a training set (operators and admins: it is every corrected image at once)."""
    tz = current_app.config["TIMEZONE"]
    since = to_utc(since, tz, since) if since else None
    until = to_utc(until, tz, until) if until else None
    audit(db.session, "corrections.export", user=_user(), ip=request.remote_addr,
          detail={"since": since.isoformat() if since else None,
                  "until": until.isoformat() if until else None, "camera_id": camera_id})
    db.session.commit()
    store = image_store_for(current_app)
    # Written to a temporary file, never held in memory (thousands of images), sent from it in chunks
    # and deleted once sent (or when the answer is closed).
    spool = tempfile.NamedTemporaryFile(prefix="lpr-corrections-", suffix=".zip", delete=False)
    try:
        with spool, zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as archive:
            write_training_set(archive, store, corrected(db.session, since, until, camera_id,
                                                         scope=current_scope()))
    except ImageStoreUnavailable:  # the object store is down: no training set with images missing
        os.unlink(spool.name)
        abort(503, "the image store cannot be read now; try again")
    except BaseException:
        os.unlink(spool.name)
        raise
    path = spool.name
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    response = Response(_chunks(path), mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="corrections-{stamp}.zip"',
        "Content-Length": str(os.path.getsize(path)), "Cache-Control": "no-store"})
    response.call_on_close(lambda: _remove(path))
    return response


def write_training_set(archive: zipfile.ZipFile, store: ImageStore, records) -> None:
    """Add each record's image as images/<id>.<ext> and labels.csv listing them (LABEL_COLUMNS)."""
    labels = io.StringIO()
    writer = csv.writer(labels)
    writer.writerow(LABEL_COLUMNS)
    for record in records:
        suffix = {"image/png": ".png"}.get(media_type(record.image_path), ".jpg")
        name = f"images/{record.id}{suffix}"
        try:
            _copy_image(archive, store, record.image_path, name)
        except (FileNotFoundError, ValueError):
            continue
        writer.writerow([name, record.plate_number, record.plate_corrected, record.camera_id,
                         record.captured_at.isoformat() if record.captured_at else ""])
    archive.writestr("labels.csv", labels.getvalue().encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)


def _copy_image(archive: zipfile.ZipFile, store: ImageStore, key: str, name: str) -> None:
    """Stream one stored image into the archive (from a file or an object store)."""
    with store.open(key) as source:
        with archive.open(name, "w") as out:
            shutil.copyfileobj(source, out, 64 * 1024)


def _chunks(path: str, size: int = 1 << 16) -> Iterator[bytes]:
    try:
        with open(path, "rb") as file:  # opened when the server starts sending
            while chunk := file.read(size):
                yield chunk
    finally:
        _remove(path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def corrected(session: Session, since: datetime | None, until: datetime | None,
              camera_id: str | None, *, scope: Scope = EVERYWHERE) -> Iterator[Record]:
    """The corrected reads with an image, oldest correction first (the index on camera and corrected_at);
    only those of the cameras `scope` sees."""
    query = select(Record).where(Record.corrected_at.is_not(None), Record.image_path.is_not(None))
    query = scoped(query, Record.camera_id, scope)
    if since is not None:
        query = query.where(Record.corrected_at >= since)
    if until is not None:
        query = query.where(Record.corrected_at < until)
    if camera_id:
        query = query.where(Record.camera_id == camera_id)
    query = query.order_by(Record.corrected_at, Record.id).execution_options(yield_per=500)
    yield from session.scalars(query)
