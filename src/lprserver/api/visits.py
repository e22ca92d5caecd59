"""Visits (SPEC §10): vehicles on site now and the stays that ended, `GET /api/visits`."""

import marshmallow as ma
from flask import current_app, jsonify
from flask_login import login_required
from marshmallow import validate

from ..extensions import db
from ..models import utcnow
from ..plates import parse_plate
from ..records import camera_names
from ..sites import current_scope
from ..times import in_years, to_utc
from ..visit_list import VisitFilter, count_visits, find_visits, max_stays, visit_json
from . import bp
from .errors import error_response


def _in_years(moment) -> None:
    try:
        in_years(moment)
    except ValueError as exc:
        raise ma.ValidationError(str(exc)) from None


class VisitListArgs(ma.Schema):
    open = ma.fields.Boolean(metadata={
        "description": "`true`: vehicles on site now (visits not yet closed); `false`: closed visits only"})
    plate = ma.fields.String(validate=validate.Length(min=1, max=64), metadata={
        "description": "one plate, normalised as reads are (`กข 1234` finds `กข1234`)"})
    camera_id = ma.fields.String(validate=validate.Length(min=1, max=64), metadata={
        "description": "visits that entered or left through this camera"})
    time_from = ma.fields.DateTime(data_key="from", validate=_in_years, metadata={
        "description": "visits that entered or left at or after this time; without an offset it is "
                       "read in the server's TIMEZONE"})
    time_to = ma.fields.DateTime(data_key="to", validate=_in_years, metadata={
        "description": "visits that entered or left before this time"})
    page = ma.fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = ma.fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    before_id = ma.fields.Integer(validate=validate.Range(min=0, max=2**62), metadata={
        "description": "only visits with a smaller id: pass the `next_before_id` of the page before "
                       "(as fast at any depth, unlike `page`)"})

    @ma.validates_schema
    def _one_way_of_paging(self, data, **kwargs):
        if "before_id" in data and data.get("page", 1) != 1:
            raise ma.ValidationError("before_id cannot be combined with page", "before_id")


class VisitSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    plate = ma.fields.String(required=True, metadata={"description": "normalised, without the province"})
    province_code = ma.fields.String(allow_none=True)
    group = ma.fields.String(allow_none=True, metadata={
        "description": "the plate's known group when it entered (its `max_stay_minutes` applies)"})
    max_stay_minutes = ma.fields.Integer(allow_none=True)
    entered_at = ma.fields.String(allow_none=True, metadata={
        "format": "date-time", "description": "null for an exit read with no open visit"})
    entry_camera = ma.fields.String(allow_none=True, metadata={"description": "the entry camera's id"})
    entry_camera_name = ma.fields.String(allow_none=True)
    exited_at = ma.fields.String(allow_none=True, metadata={
        "format": "date-time", "description": "null while the vehicle is on site"})
    exit_camera = ma.fields.String(allow_none=True)
    exit_camera_name = ma.fields.String(allow_none=True)
    open = ma.fields.Boolean(required=True)
    stay_seconds = ma.fields.Integer(allow_none=True, metadata={
        "description": "how long it stayed; so far, for an open visit; null without an entry"})
    entry_record_id = ma.fields.Integer(allow_none=True)
    exit_record_id = ma.fields.Integer(allow_none=True)
    overstay = ma.fields.Boolean(required=True, metadata={
        "description": "stayed longer than its group's max_stay_minutes (or its overstay alert was raised)"})
    overstay_alerted_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})


class VisitPage(ma.Schema):
    visits = ma.fields.List(ma.fields.Nested(VisitSchema), required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)
    total_kind = ma.fields.String(required=True, validate=validate.OneOf(("exact", "at_least")))
    next_before_id = ma.fields.Integer(allow_none=True, metadata={
        "description": "pass as `before_id` for the next page; null on the last"})


@bp.get("/visits")
@login_required
@bp.arguments(VisitListArgs, location="query", as_kwargs=True)
@bp.response(200, VisitPage)
@bp.doc(tags=["visits"])
def list_visits(page: int, per_page: int, before_id: int | None = None, time_from=None, time_to=None,
                **filters):
    """List visits, newest first: `open=true` for the vehicles on site now, with how long so far.

    A visit is opened by a read at an entry camera (or sent with `direction: in`) and closed by
    the plate's next read at an exit camera (or `direction: out`); an exit with no open visit is
    kept as a visit with no entry.
    """
    tz, now = current_app.config["TIMEZONE"], utcnow()
    plate = filters.get("plate")
    criteria = VisitFilter(
        open=filters.get("open"),
        plate=parse_plate(plate).normalized if plate else None,
        camera_id=filters.get("camera_id"),
        since=to_utc(time_from, tz, None) if time_from else None,
        until=to_utc(time_to, tz, None) if time_to else None,
    )
    if criteria.since and criteria.until and criteria.until <= criteria.since:
        return error_response(400, "validation_error", "to: must be after from", "to")
    scope = current_scope()
    visits = find_visits(db.session, criteria, page, per_page, before_id, scope=scope)
    total, kind = count_visits(db.session, criteria, scope=scope)
    names, limits = camera_names(db.session, scope=scope), max_stays(db.session)
    return jsonify({
        "visits": [visit_json(v, now, names, limits) for v in visits],
        "page": page, "per_page": per_page, "total": total, "total_kind": kind,
        "next_before_id": visits[-1].id if len(visits) == per_page else None,
    })
