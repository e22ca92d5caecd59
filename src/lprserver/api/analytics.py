"""GET /api/analytics (SPEC §12 "Dashboard"): the analytics page's figures, from the pre-aggregated
counts. Signed-in users of every role and read tokens, as GET /api/statistics."""

import marshmallow as ma
from flask import current_app
from flask_login import login_required
from marshmallow import validate

from ..analytics import DEFAULT_DAYS, MAX_DAYS, analytics
from ..extensions import db
from ..models import utcnow
from ..sites import current_scope
from . import bp

Int = ma.fields.Integer
Str = ma.fields.String
NStr = ma.fields.String(allow_none=True)
Day = ma.fields.String(required=True, metadata={"format": "date", "description": "a day in TIMEZONE"})
Moment = ma.fields.String(required=True, metadata={"format": "date-time"})


class AnalyticsArgs(ma.Schema):
    days = Int(load_default=DEFAULT_DAYS, validate=validate.Range(min=1, max=MAX_DAYS), metadata={
        "description": "the period's length in days (today included); compared with the days before it"})


class PeriodSchema(ma.Schema):
    start = ma.fields.String(required=True, attribute="from", data_key="from",
                             metadata={"format": "date-time"})
    end = ma.fields.String(required=True, attribute="to", data_key="to", metadata={"format": "date-time"})
    first_day = Day
    last_day = Day


class TotalsSchema(ma.Schema):
    reads = Int(required=True)
    unique_plates = Int(required=True)
    hits = Int(required=True, metadata={"description": "reads stored as blacklist hits"})


class ComparisonSchema(ma.Schema):
    current = ma.fields.Nested(TotalsSchema, required=True)
    previous = ma.fields.Nested(TotalsSchema, required=True)


class HeatmapSchema(ma.Schema):
    first_day = Day
    last_day = Day
    cells = ma.fields.List(ma.fields.List(Int()), required=True, metadata={
        "description": "7 rows (Monday first) of 24 reads each (hours of the day in TIMEZONE)"})
    max = Int(required=True)


class UniqueDaySchema(ma.Schema):
    day = Day
    unique_plates = Int(required=True)


class ProvinceSchema(ma.Schema):
    province_code = NStr
    name_th = NStr
    name_en = NStr
    reads = Int(required=True)


class CameraSchema(ma.Schema):
    camera_id = Str(required=True)
    name = NStr
    reads = Int(required=True)
    reads_per_hour = ma.fields.Float(required=True)
    mean_confidence = ma.fields.Float(allow_none=True)
    corrections = Int(required=True)
    last_read_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})
    longest_silence_seconds = Int(allow_none=True)
    longest_silence_from = ma.fields.String(allow_none=True, metadata={"format": "date-time"})
    longest_silence_to = ma.fields.String(allow_none=True, metadata={
        "format": "date-time", "description": "null while the silence goes on, or inside one hour"})


class AnalyticsSchema(ma.Schema):
    timezone = Str(required=True)
    generated_at = Moment
    days = Int(required=True)
    period = ma.fields.Nested(PeriodSchema, required=True)
    previous_period = ma.fields.Nested(PeriodSchema, required=True)
    comparison = ma.fields.Nested(ComparisonSchema, required=True)
    heatmap = ma.fields.Nested(HeatmapSchema, required=True)
    unique_plates_per_day = ma.fields.List(ma.fields.Nested(UniqueDaySchema), required=True)
    top_provinces = ma.fields.List(ma.fields.Nested(ProvinceSchema), required=True)
    cameras = ma.fields.List(ma.fields.Nested(CameraSchema), required=True)


@bp.get("/analytics")
@login_required
@bp.arguments(AnalyticsArgs, location="query", as_kwargs=True)
@bp.response(200, AnalyticsSchema)
@bp.doc(tags=["statistics"])
def get_analytics(days: int):
    """Reads by weekday and hour (4 weeks), unique plates per day (30 days), this period against the one
    before, top provinces and each camera's figures; days in TIMEZONE. A user limited to sites gets their
    sites' cameras' figures (counted from the reads themselves where the counts are for all cameras)."""
    return analytics(db.session, utcnow(), current_app.config["TIMEZONE"], days, scope=current_scope())
