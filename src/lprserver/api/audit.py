"""The audit log, read-only (SPEC §15 "Audit"): `GET /api/audit` and `GET /api/audit/export.csv`, admins."""

import marshmallow as ma
from flask import Response, current_app, jsonify, request, stream_with_context
from flask_login import current_user
from marshmallow import validate

from ..audit import audit
from ..audit_list import AuditFilter, audit_json, count_entries, export_csv, find_entries
from ..auth import require_role
from ..extensions import db
from ..models import utcnow
from ..sites import current_scope
from ..times import to_utc
from . import bp
from .schemas import TOTAL_KINDS, PageArgs, PageInfo, _in_years


class AuditFilterArgs(ma.Schema):
    user = ma.fields.String(validate=validate.Length(max=64), metadata={"description": "username, exact"})
    action = ma.fields.String(validate=validate.Length(max=64), metadata={
        "description": "exact (`plate.erase`), or a prefix ending in `*` or `.` (`records.*`)"})
    time_from = ma.fields.DateTime(data_key="from", validate=_in_years, metadata={
        "description": "inclusive; without an offset it is read in the server's TIMEZONE"})
    time_to = ma.fields.DateTime(data_key="to", validate=_in_years, metadata={"description": "exclusive"})


class AuditListArgs(AuditFilterArgs, PageArgs):
    pass


class AuditEntrySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    at = ma.fields.String(required=True, metadata={"format": "date-time"})
    user = ma.fields.String(allow_none=True, metadata={"description": "the username (kept after the user "
                                                                      "is deleted)"})
    action = ma.fields.String(required=True, metadata={"description": "login, records.search, "
                                                                      "records.export, record.image, "
                                                                      "plate.export, plate.erase, …"})
    target = ma.fields.String(allow_none=True, metadata={"description": "what it was done to: `record:12`, "
                                                                        "`plate:กข1234`, `user:somchai`"})
    detail = ma.fields.Dict(required=True, metadata={"description": "what the action says about itself "
                                                                    "(filters, counts, a reason)"})
    address = ma.fields.String(allow_none=True, metadata={"description": "the caller's IP address"})


class AuditPage(PageInfo):
    entries = ma.fields.List(ma.fields.Nested(AuditEntrySchema), required=True)
    total_kind = ma.fields.String(required=True, validate=validate.OneOf(TOTAL_KINDS), metadata={
        "description": "`exact`, or `at_least` when counting stopped at 10,000"})


def audit_filter(args: dict) -> AuditFilter:
    tz = current_app.config["TIMEZONE"]
    since, until = args.get("time_from"), args.get("time_to")
    return AuditFilter(user=(args.get("user") or "").strip(), action=(args.get("action") or "").strip(),
                       since=to_utc(since, tz, since) if since else None,
                       until=to_utc(until, tz, until) if until else None)


@bp.get("/audit")
@require_role("admin")
@bp.arguments(AuditListArgs, location="query", as_kwargs=True)
@bp.response(200, AuditPage)
@bp.doc(tags=["audit"])
def list_audit(page: int, per_page: int, **filters):
    """The audit log, newest first (admins). A site-limited admin sees the entries of the users limited
    to their own sites. Nothing here or anywhere edits or deletes an entry."""
    f, scope = audit_filter(filters), current_scope()
    entries = find_entries(db.session, f, page, per_page, scope)
    return jsonify({"entries": [audit_json(e) for e in entries], "page": page, "per_page": per_page,
                    **count_entries(db.session, f, scope).as_json()})


@bp.get("/audit/export.csv")
@require_role("admin")
@bp.arguments(AuditFilterArgs, location="query", as_kwargs=True)
@bp.doc(tags=["audit"], responses={200: {
    "description": "the matching entries as CSV, newest first (streamed); `at` in UTC, `detail` as JSON",
    "content": {"text/csv": {"schema": {"type": "string"}}}}})
def export_audit(**filters):
    """Export the audit log (same filters) as CSV; the export is itself audited (`audit.export`)."""
    f, scope = audit_filter(filters), current_scope()
    audit(db.session, "audit.export", user=current_user._get_current_object(),
          detail={k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in f.as_dict().items() if v},
          ip=request.remote_addr)
    db.session.commit()
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    return Response(stream_with_context(export_csv(db.session, f, "UTC", scope)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'})
