"""A plate's history (SPEC §10): `GET /api/plates/<plate>`, as the plate's page shows it."""

import marshmallow as ma
from flask import abort, jsonify
from flask_login import login_required
from marshmallow import validate

from ..extensions import db
from ..models import MATCH_MODES, utcnow
from ..plate_history import MAX_PER_PAGE, PER_PAGE, ROUTE_LIMIT, plate_from_path, plate_history
from ..sites import current_scope
from . import bp
from .schemas import KnownShown

Str = ma.fields.String
NStr = ma.fields.String(allow_none=True)
NFloat = ma.fields.Float(allow_none=True)
Time = ma.fields.String(metadata={"format": "date-time"})
NTime = ma.fields.String(allow_none=True, metadata={"format": "date-time"})


class PlateArgs(ma.Schema):
    before_id = ma.fields.Integer(validate=validate.Range(min=0, max=2**62), metadata={
        "description": "only sightings with a smaller record id: pass the `next_before_id` of the answer "
                       "before to get the next (older) page"})
    per_page = ma.fields.Integer(load_default=PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE),
                                 metadata={"description": "sightings per page"})


class PlateCamera(ma.Schema):
    camera_id = Str(required=True)
    name = NStr
    reads = ma.fields.Integer(required=True, metadata={"description": "reads of this plate at this camera"})
    last_seen = NTime
    latitude = NFloat
    longitude = NFloat


class PlateBlacklistEntry(ma.Schema):
    id = ma.fields.Integer(required=True)
    license_plate_text = Str(required=True)
    plate_normalized = Str(required=True)
    match = Str(required=True, validate=validate.OneOf(MATCH_MODES))
    match_type = ma.fields.String(allow_none=True, metadata={
        "description": "how the entry names this plate: exact, normalized, lookalike, fuzzy or pattern; "
                       "null for an inactive or expired entry of another plate"})
    province_code = NStr
    category = Str(required=True)
    reason = NStr
    active = ma.fields.Boolean(required=True)
    expires_at = NTime
    in_force = ma.fields.Boolean(required=True, metadata={"description": "active and not expired"})


class PlateKnownEntry(ma.Schema):
    id = ma.fields.Integer(required=True)
    plate = Str(required=True)
    name = NStr
    group = Str(required=True)
    province_code = NStr
    notes = NStr
    valid_from = NTime
    valid_until = NTime
    current = ma.fields.Boolean(required=True, metadata={"description": "valid now"})


class PlateEntries(ma.Schema):
    blacklist = ma.fields.List(ma.fields.Nested(PlateBlacklistEntry), required=True)
    known = ma.fields.List(ma.fields.Nested(PlateKnownEntry), required=True)


class PlateCorrection(ma.Schema):
    record_id = ma.fields.Integer(required=True)
    plate_number = Str(required=True, metadata={"description": "as the camera sent it"})
    plate_corrected = NStr
    corrected_by = NStr
    corrected_at = Time


class PlateSighting(ma.Schema):
    record_id = ma.fields.Integer(required=True)
    thumbnail_url = NStr
    camera_id = Str(required=True)
    camera_name = NStr
    captured_at = Time
    received_at = Time
    confidence = NFloat


class PlateStop(ma.Schema):
    camera_id = Str(required=True)
    camera_name = NStr
    latitude = ma.fields.Float(allow_none=True, metadata={
        "description": "where the stop's read says it was, else where its camera is; null when neither says"})
    longitude = NFloat
    first_seen = Time
    last_seen = Time
    reads = ma.fields.Integer(required=True)
    first_record_id = ma.fields.Integer(required=True)
    last_record_id = ma.fields.Integer(required=True)


class PlateHistory(ma.Schema):
    plate = Str(required=True, metadata={"description": "normalised, without the province: 1กข1234"})
    province = ma.fields.String(allow_none=True, metadata={"description": "of the newest read"})
    province_code = NStr
    reads = ma.fields.Integer(required=True)
    first_seen = ma.fields.String(required=True, metadata={
        "format": "date-time", "description": "when the server received the first read"})
    last_seen = ma.fields.String(required=True, metadata={
        "format": "date-time", "description": "when the server received the newest read"})
    first_record_id = ma.fields.Integer(required=True)
    last_record_id = ma.fields.Integer(required=True)
    blacklisted = ma.fields.Boolean(required=True, metadata={
        "description": "a blacklist entry in force names this plate"})
    known = ma.fields.Nested(KnownShown, allow_none=True, metadata={
        "description": "the current known plate of this plate, null when none"})
    cameras = ma.fields.List(ma.fields.Nested(PlateCamera), required=True, metadata={
        "description": "every camera the plate was read at, most reads first"})
    entries = ma.fields.Nested(PlateEntries, required=True)
    corrections = ma.fields.List(ma.fields.Nested(PlateCorrection), required=True, metadata={
        "description": "reads corrected onto this plate, newest correction first (at most 100)"})
    sightings = ma.fields.List(ma.fields.Nested(PlateSighting), required=True, metadata={
        "description": "reads of this plate, newest first (by record id)"})
    next_before_id = ma.fields.Integer(allow_none=True, metadata={
        "description": "pass as `before_id` for the next (older) page; null on the last page"})
    route = ma.fields.List(ma.fields.Nested(PlateStop), required=True, metadata={
        "description": f"the newest {ROUTE_LIMIT} sightings in time order (received), consecutive reads "
                       "at one camera as one stop"})
    route_sightings = ma.fields.Integer(required=True, metadata={
        "description": f"how many sightings the route is drawn from (at most {ROUTE_LIMIT})"})


@bp.get("/plates/<plate:plate>")
@login_required
@bp.arguments(PlateArgs, location="query", as_kwargs=True)
@bp.response(200, PlateHistory)
@bp.doc(tags=["plates"], responses={404: {
    "description": "never read (or not a plate), or read only at cameras of sites the caller does not see"}})
def get_plate(plate: str, per_page: int, before_id: int | None = None):
    """A plate's history: counts, cameras, the lists naming it, corrections, sightings and route.

    The plate in the path is normalised first: `กข 1234`, `กข-1234` and `กข1234` name the same plate,
    and a province in the text (`กข 1234 กรุงเทพมหานคร`) is dropped. Page the sightings with
    `before_id` (the answer's `next_before_id`); the rest of the answer is the same on every page.
    """
    normalized = plate_from_path(plate)
    if normalized is None:
        abort(404, "not a plate")
    history = plate_history(db.session, normalized, utcnow(), before_id=before_id, per_page=per_page,
                            scope=current_scope())
    if history is None:
        abort(404, f"no reads of {normalized}")
    return jsonify(history.as_json())
