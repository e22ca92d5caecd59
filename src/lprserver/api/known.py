"""Known plates and their groups (SPEC §10): list, add, read, change, delete, CSV import and export;
a group's max stay. Operators and admins change; viewers read."""

import csv
import io

import marshmallow as ma
from flask import Response, current_app, request
from flask_login import current_user, login_required
from marshmallow import validate
from sqlalchemy import func, select

from .. import known_plates as service
from ..audit import audit
from ..auth import require_role
from ..extensions import db
from ..models import KnownPlate, utcnow
from ..plates import PROVINCE_CODES
from . import bp
from .errors import error_response
from .schemas import PageArgs, PageInfo, _in_years, _known_province

WRITERS = ("admin", "operator")
Str = ma.fields.String
TIME_DESCRIPTION = "ISO 8601; without an offset it is read in the server's TIMEZONE"
GROUP_DESCRIPTION = ("1-64 characters, no `/` (`residents`, `staff` …); a new name creates the group "
                     "(no max stay)")


def _plate_fields(required: bool) -> dict:
    """The fields of a known plate a caller sends: all of them for POST (plate and group required), any
    of them for PATCH."""
    return {
        "plate": Str(required=required, validate=validate.Length(min=1, max=64), metadata={
            "description": "the plate as typed; a province it names (`กข 1234 กรุงเทพมหานคร`) sets "
                           "`province_code` unless one is given"}),
        "province_code": Str(allow_none=True, validate=_known_province, metadata={
            "description": "ISO 3166-2:TH (`TH-10`): then reads of another known province are not this "
                           "plate; null or absent: the province the plate names, if any",
            "enum": list(PROVINCE_CODES)}),
        "name": Str(allow_none=True, validate=validate.Length(max=service.MAX_NAME_LENGTH)),
        "notes": Str(allow_none=True, validate=validate.Length(max=service.MAX_NOTES_LENGTH)),
        "group": Str(required=required, validate=validate.Length(min=1, max=service.MAX_GROUP_LENGTH),
                     metadata={"description": GROUP_DESCRIPTION}),
        "valid_from": ma.fields.DateTime(allow_none=True, validate=_in_years,
                                         metadata={"description": TIME_DESCRIPTION}),
        "valid_until": ma.fields.DateTime(allow_none=True, validate=_in_years, metadata={
            "description": "exclusive, after `valid_from`; " + TIME_DESCRIPTION}),
    }


class KnownPlateIn(ma.Schema):
    locals().update(_plate_fields(True))


class KnownPlatePatch(ma.Schema):
    locals().update(_plate_fields(False))


class KnownPlateSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    plate = Str(required=True, metadata={"description": "as typed"})
    plate_normalized = Str(required=True, metadata={"description": "without the province"})
    province_code = Str(allow_none=True)
    name = Str(allow_none=True)
    notes = Str(allow_none=True)
    group = Str(required=True, attribute="group_name")
    valid_from = ma.fields.DateTime(allow_none=True)
    valid_until = ma.fields.DateTime(allow_none=True)
    current = ma.fields.Boolean(required=True, metadata={"description": "valid now"})
    added_by = Str(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class KnownListArgs(PageArgs):
    group = Str(validate=validate.Length(max=service.MAX_GROUP_LENGTH), metadata={"description": "exact"})
    plate = Str(validate=validate.Length(max=64), metadata={"description": "contains, normalised"})


class KnownPlatePage(PageInfo):
    plates = ma.fields.List(ma.fields.Nested(KnownPlateSchema), required=True)


class RejectedRow(ma.Schema):
    line = ma.fields.Integer(required=True, metadata={"description": "1 is the header"})
    plate = Str(required=True)
    reason = Str(required=True)


class ImportAnswer(ma.Schema):
    added = ma.fields.Integer(required=True)
    ids = ma.fields.List(ma.fields.Integer(), required=True, metadata={"description": "of the plates added"})
    rejected = ma.fields.List(ma.fields.Nested(RejectedRow), required=True)


class KnownGroupSchema(ma.Schema):
    name = Str(required=True)
    max_stay_minutes = ma.fields.Integer(allow_none=True, metadata={
        "description": "an open visit of a plate of this group longer than this raises `overstay`"})
    plates = ma.fields.Integer(required=True, metadata={"description": "how many known plates it has"})


class KnownGroupList(ma.Schema):
    groups = ma.fields.List(ma.fields.Nested(KnownGroupSchema), required=True)


class KnownGroupIn(ma.Schema):
    max_stay_minutes = ma.fields.Integer(required=True, allow_none=True, strict=True, validate=validate.Range(
        min=1, max=service.MAX_STAY_MINUTES), metadata={"description": "1-100000, or null for no limit"})


def _actor() -> service.Actor:
    return service.Actor(current_user._get_current_object(), request.remote_addr)


def _refused(exc: service.KnownInputError):
    db.session.rollback()
    code = "conflict" if exc.status == 409 else "validation_error"
    return error_response(exc.status, code, f"{exc.field}: {exc}", exc.field)


def _shown(row: KnownPlate) -> KnownPlate:
    row.current = service.is_current(row, utcnow())
    return row


def _times(data: dict) -> dict:
    timezone = current_app.config["TIMEZONE"]
    for name in ("valid_from", "valid_until"):
        if name in data:
            data[name] = service.check_time(data[name], name, timezone)
    return data


@bp.get("/known-plates")
@login_required
@bp.arguments(KnownListArgs, location="query", as_kwargs=True)
@bp.response(200, KnownPlatePage)
@bp.doc(tags=["known plates"])
def list_known_plates(page: int, per_page: int, group=None, plate=None):
    """List known plates, newest first."""
    query = service.plates_query(group, plate)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page))
    return {"plates": [_shown(r) for r in rows], "page": page, "per_page": per_page, "total": total}


@bp.post("/known-plates")
@require_role(*WRITERS)
@bp.arguments(KnownPlateIn)
@bp.response(201, KnownPlateSchema)
@bp.alt_response(400, description="`validation_error` with `field`: a bad plate, province code, group, "
                                  "time, or `valid_until` not after `valid_from`; nothing is added")
@bp.alt_response(409, description="`conflict`: the plate is a known plate of that group already")
@bp.doc(tags=["known plates"])
def create_known_plate(data: dict):
    """Add a known plate (operators and admins); a new group name creates the group."""
    try:
        data = _times(data)
        row = service.create_plate(db.session, _actor(), data["plate"], data["group"], data.get("name"),
                                   data.get("notes"), data.get("valid_from"), data.get("valid_until"),
                                   data.get("province_code"))
    except service.KnownInputError as exc:
        return _refused(exc)
    db.session.commit()
    return _shown(row)


@bp.get("/known-plates/<id:plate_id>")
@login_required
@bp.response(200, KnownPlateSchema)
@bp.doc(tags=["known plates"])
def get_known_plate(plate_id: int):
    """Return one known plate."""
    return _shown(db.get_or_404(KnownPlate, plate_id))


@bp.patch("/known-plates/<id:plate_id>")
@require_role(*WRITERS)
@bp.arguments(KnownPlatePatch)
@bp.response(200, KnownPlateSchema)
@bp.alt_response(400, description="`validation_error` with `field`, as for POST; nothing is changed")
@bp.alt_response(409, description="`conflict`: the plate is a known plate of that group already")
@bp.doc(tags=["known plates"])
def update_known_plate(changes: dict, plate_id: int):
    """Change some fields of a known plate (operators and admins)."""
    row = db.get_or_404(KnownPlate, plate_id)
    try:
        service.update_plate(db.session, _actor(), row, _times(changes))
    except service.KnownInputError as exc:
        return _refused(exc)
    db.session.commit()
    return _shown(row)


@bp.delete("/known-plates/<id:plate_id>")
@require_role(*WRITERS)
@bp.response(204)
@bp.doc(tags=["known plates"])
def delete_known_plate(plate_id: int):
    """Delete a known plate (the audit trail keeps what it was)."""
    service.delete_plate(db.session, _actor(), db.get_or_404(KnownPlate, plate_id))
    db.session.commit()


@bp.get("/known-plates/export.csv")
@login_required
@bp.response(200, description="CSV (UTF-8 with a BOM): " + ", ".join(service.CSV_FIELDS) +
             "; times in the server's TIMEZONE; province_code only when given apart from the plate",
             content_type="text/csv")
@bp.doc(tags=["known plates"])
def export_known_plates():
    """Every known plate as CSV, in the columns the import takes."""
    out = io.StringIO()
    csv.writer(out).writerows(service.export_rows(db.session, current_app.config["TIMEZONE"]))
    audit(db.session, "known.export", current_user._get_current_object(), ip=request.remote_addr)
    db.session.commit()
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=lpr-known-plates.csv"})


IMPORT_BODY = {
    "required": True,
    "description": "a CSV file (UTF-8, at most 2 MB and 10,000 rows), as the body (`text/csv`) or as "
                   "the `file` field of a form",
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
    },
}


@bp.post("/known-plates/import")
@require_role(*WRITERS)
@bp.response(200, ImportAnswer)
@bp.alt_response(400, description="`validation_error` (field `file`): no file, not UTF-8, not CSV, no "
                                  "`plate` or `group` column, or over 10,000 rows; nothing is stored")
@bp.alt_response(413, description="`payload_too_large`: over 2 MB")
@bp.alt_response(415, description="`unsupported_media_type`: neither text/csv nor multipart/form-data")
@bp.doc(tags=["known plates"], requestBody=IMPORT_BODY)
def import_known_plates():
    """Add known plates from CSV (columns plate, name, notes, group, valid_from, valid_until and, optionally,
    province_code). Each row is checked: bad rows are rejected with their line and reason and store
    nothing, the good ones are added."""
    if (request.content_length or 0) > service.MAX_IMPORT_BYTES + 64 * 1024:
        return error_response(413, "payload_too_large", "the CSV file is over 2 MB: split it")
    if request.mimetype == "multipart/form-data":
        data = service.read_upload(request.files.get("file"))
    elif request.mimetype == "text/csv":
        data = request.get_data(cache=False)
    else:
        return error_response(415, "unsupported_media_type",
                              "send the CSV as a text/csv body or the file field of a multipart form")
    if len(data) > service.MAX_IMPORT_BYTES:
        return error_response(413, "payload_too_large", "the CSV file is over 2 MB: split it")
    if not data.strip():
        return error_response(400, "validation_error",
                              "file: send a CSV file (a text/csv body or the file field)", "file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return error_response(400, "validation_error", "file: the file is not UTF-8 text", "file")
    try:
        report = service.import_csv(db.session, _actor(), text, current_app.config["TIMEZONE"])
    except service.KnownInputError as exc:
        return _refused(exc)
    db.session.commit()
    return {"added": len(report.added), "ids": [row.id for row in report.added],
            "rejected": [{"line": line, "plate": plate, "reason": why}
                         for line, plate, why in report.rejected]}


@bp.get("/known-groups")
@login_required
@bp.response(200, KnownGroupList)
@bp.doc(tags=["known plates"])
def list_known_groups():
    """List the groups of known plates with their max stay and number of plates."""
    return {"groups": [{"name": g.name, "max_stay_minutes": g.max_stay_minutes, "plates": n}
                       for g, n in service.group_counts(db.session)]}


@bp.put("/known-groups/<group>")
@require_role(*WRITERS)
@bp.arguments(KnownGroupIn)
@bp.response(200, KnownGroupSchema)
@bp.alt_response(400, description="`validation_error`: a name that is not 1-64 characters, or "
                                  "`max_stay_minutes` not 1-100000 or null")
@bp.doc(tags=["known plates"])
def put_known_group(data: dict, group: str):
    """Set a group's max stay (operators and admins); a group not there yet is created."""
    try:
        row = service.set_group(db.session, _actor(), group, data["max_stay_minutes"])
    except service.KnownInputError as exc:
        return _refused(exc)
    db.session.commit()
    plates = db.session.scalar(select(func.count()).where(KnownPlate.group_name == row.name))
    return {"name": row.name, "max_stay_minutes": row.max_stay_minutes, "plates": plates}

