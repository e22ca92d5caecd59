"""Summary reports over the API (SPEC §12 "Reports"): `GET /api/reports/summary.xlsx` and `.pdf`; a user
limited to sites gets the report of their sites' cameras (another site's camera is refused as unknown)."""

import marshmallow as ma
from flask import Response, current_app, request
from flask_login import current_user, login_required
from marshmallow import validate

from ..audit import audit
from ..extensions import db
from ..models import utcnow
from ..report_files import report_file
from ..report_pdf import ReportFontMissing
from ..reports import ReportError
from ..sites import current_scope
from . import bp
from .errors import error_response

PERIOD_HELP = ("a date `YYYY-MM-DD` (a whole day in the server's TIMEZONE) or an ISO 8601 time (without an "
               "offset read in TIMEZONE)")


class ReportArgs(ma.Schema):
    time_from = ma.fields.String(data_key="from", validate=validate.Length(max=40), metadata={
        "description": f"the period's start, inclusive: {PERIOD_HELP}; default six days before `to`",
        "example": "2026-11-01"})
    time_to = ma.fields.String(data_key="to", validate=validate.Length(max=40), metadata={
        "description": f"the period's end: {PERIOD_HELP}; a date is included (up to its midnight), a time "
                       "is excluded; default today. At most 366 days after `from`", "example": "2026-11-30"})
    camera_id = ma.fields.String(validate=validate.Length(max=64), metadata={
        "description": "only this camera (an unknown camera is refused)"})


def _download(kind: str, time_from: str | None = None, time_to: str | None = None,
              camera_id: str | None = None):
    try:
        made = report_file(db.session, current_app.config, kind, time_from, time_to, camera_id, utcnow(),
                           scope=current_scope())
    except ReportError as exc:
        return error_response(400, "validation_error", exc.message, exc.field)
    except ReportFontMissing as exc:  # the site's setup is at fault, not the request
        return error_response(503, "report_font_missing", str(exc))
    audit(db.session, f"reports.{kind}", user=current_user._get_current_object(),
          detail={"from": made.period.start.isoformat(), "to": made.period.end.isoformat(),
                  "camera_id": camera_id or None, "door": "api"}, ip=request.remote_addr)
    db.session.commit()
    return Response(made.data, mimetype=made.mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{made.filename}"'})


FILE_DOC = {
    "xlsx": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
             {"schema": {"type": "string", "format": "binary"}}},
    "pdf": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
}


@bp.get("/reports/summary.xlsx")
@login_required
@bp.arguments(ReportArgs, location="query", as_kwargs=True)
@bp.doc(tags=["reports"], responses={200: {
    "description": "the workbook: sheets Summary, Per camera and Per day", "content": FILE_DOC["xlsx"]}})
def summary_xlsx(**args):
    """The summary report of a period as an Excel workbook: reads, unique plates, hits and their
    acknowledgements, alerts, visits; in total, per camera and per day (days in TIMEZONE)."""
    return _download("xlsx", **args)


@bp.get("/reports/summary.pdf")
@login_required
@bp.arguments(ReportArgs, location="query", as_kwargs=True)
@bp.doc(tags=["reports"], responses={200: {
    "description": "the PDF, with a Thai font embedded and charts of reads per day and per camera",
    "content": FILE_DOC["pdf"]}})
def summary_pdf(**args):
    """The summary report of a period as a PDF (the same figures as the workbook, with charts)."""
    return _download("pdf", **args)
