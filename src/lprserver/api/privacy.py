"""A plate's data on request (SPEC §15): `GET /api/plates/<plate>/export.zip` and
`DELETE /api/plates/<plate>?reason=…`, admins only, in the caller's sites, both audited."""

import marshmallow as ma
from flask import abort, current_app, jsonify, request, send_file
from flask_login import current_user
from marshmallow import validate

from ..audit import audit
from ..auth import require_role
from ..extensions import db
from ..image_store import ImageStore, image_store_for
from ..images import ImageStoreUnavailable
from ..models import utcnow
from ..plate_history import plate_from_path
from ..privacy import REASON_MAX, PrivacyError, erase_plate, plate_export_zip
from ..sites import current_scope
from . import bp
from .errors import error_response

ZIP_DOC = {200: {"description": "the zip: README.txt (Thai and English), reads.csv, reads.json, "
                                "images/<id>.jpg, hits.csv, hits.json, alerts.json, visits.csv, visits.json, "
                                "corrections.json, lists.json",
                 "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
           404: {"description": "nothing is held about the plate in the caller's sites (or not a plate)"}}


class EraseArgs(ma.Schema):
    reason = ma.fields.String(required=True, validate=validate.Length(min=1, max=REASON_MAX), metadata={
        "description": "why the plate is erased (the request it answers), kept in the audit log"})


class EraseAnswer(ma.Schema):
    records = ma.fields.Integer(required=True, metadata={"description": "reads deleted"})
    files = ma.fields.Integer(required=True, metadata={"description": "image files deleted (images and "
                                                                       "thumbnails)"})


def _plate(text: str) -> str:
    normalized = plate_from_path(text)
    if normalized is None:
        abort(404, "not a plate")
    return normalized


def _store() -> ImageStore:
    return image_store_for(current_app)


@bp.get("/plates/<path:plate>/export.zip")
@require_role("admin")
@bp.doc(tags=["plates"], responses=ZIP_DOC)
def export_plate(plate: str):
    """Everything held about a plate, as one zip (admins; a site-limited admin gets their sites' data).

    The plate is normalised as in `GET /api/plates/<plate>`. Blacklist entries and known plates are
    global and always included. The export is audited (`plate.export`)."""
    normalized = _plate(plate)
    user, now = current_user._get_current_object(), utcnow()
    try:
        made = plate_export_zip(db.session, _store(), normalized, current_scope(), user=user, now=now,
                                timezone=current_app.config["TIMEZONE"])
    except ImageStoreUnavailable:  # an export is whole or not made: never a zip missing images silently
        abort(503, "the image store cannot be read now; try again")
    if made is None:
        abort(404, f"nothing is held about {normalized}")
    audit(db.session, "plate.export", user=user, target=f"plate:{normalized}",
          detail={**made.counts, **current_scope().audit_detail()}, ip=request.remote_addr)
    db.session.commit()
    name = f"plate-{normalized}-{now:%Y%m%d-%H%M%S}.zip"
    return send_file(made.file, mimetype="application/zip", as_attachment=True, download_name=name,
                     max_age=0)


@bp.delete("/plates/<plate:plate>")
@require_role("admin")
@bp.arguments(EraseArgs, location="query", as_kwargs=True)
@bp.response(200, EraseAnswer)
@bp.doc(tags=["plates"], responses={404: {"description": "nothing to erase in the caller's sites"}})
def erase(plate: str, reason: str):
    """Erase a plate's reads with their images and thumbnails, hits, alerts and visits (admins).

    A site-limited admin erases their sites' reads only. Blacklist entries and known plates stay
    (the operator's own lists), as does the audit log, which gets `plate.erase` with the reason and
    the counts. A read-only API token is refused (403)."""
    normalized = _plate(plate)
    try:
        result = erase_plate(db.session, _store(), normalized, current_scope(), reason=reason,
                             user=current_user._get_current_object(), timezone=current_app.config["TIMEZONE"],
                             ip=request.remote_addr)
    except PrivacyError as exc:
        return error_response(400, "validation_error", str(exc), exc.field)
    if result is None:
        abort(404, f"nothing is held about {normalized}")
    db.session.commit()
    return jsonify(result)
