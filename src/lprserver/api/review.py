"""The review queue (SPEC §10 "Review"): `GET /api/review`, oldest first, and
`POST /api/review/<record_id>/confirm`. Correcting a waiting read is `PATCH /api/records/<id>`."""

import marshmallow as ma
from flask import current_app, jsonify, request
from flask_login import current_user, login_required

from ..auth import require_role
from ..extensions import db
from ..known import known_for
from ..models import utcnow
from ..records import camera_names, visible_record
from ..review import ReviewError, confirm_record, pending_count, pending_page, reasons_for
from ..sites import current_scope
from ..url_ids import MAX_ROW_ID
from ..wire import record_json
from . import bp
from .corrections import answer_record
from .errors import error_response
from .schemas import RecordSchema

WRITERS = ("admin", "operator")


class ReviewArgs(ma.Schema):
    after_id = ma.fields.Integer(validate=ma.validate.Range(min=0, max=MAX_ROW_ID), metadata={
        "description": "only reads after this id: pass the page's `next_after_id` for the next page"})
    per_page = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))


class ReviewEntry(ma.Schema):
    id = ma.fields.Integer()
    license_plate_text = ma.fields.String()
    plate_normalized = ma.fields.String()
    match = ma.fields.String()
    province_code = ma.fields.String(allow_none=True)
    category = ma.fields.String()
    reason = ma.fields.String(allow_none=True)


class ReviewReason(ma.Schema):
    kind = ma.fields.String(required=True, metadata={
        "description": "`low_confidence`, or the hit's match: `lookalike` or `fuzzy`"})
    confidence = ma.fields.Float(metadata={"description": "low_confidence: the read's confidence (%)"})
    threshold = ma.fields.Float(metadata={"description": "low_confidence: REVIEW_CONFIDENCE"})
    detection_id = ma.fields.Integer(metadata={"description": "a hit: its detection"})
    entry = ma.fields.Nested(ReviewEntry, metadata={"description": "a hit: the blacklist entry it matched"})


class ReviewItem(ma.Schema):
    record = ma.fields.Nested(RecordSchema, required=True)
    reasons = ma.fields.List(ma.fields.Nested(ReviewReason), required=True)


class ReviewPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ReviewItem), required=True)
    per_page = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True, metadata={"description": "how many reads wait in all"})
    next_after_id = ma.fields.Integer(allow_none=True, metadata={
        "description": "pass as `after_id` for the next page; null on the last one"})


@bp.get("/review")
@login_required
@bp.arguments(ReviewArgs, location="query", as_kwargs=True)
@bp.response(200, ReviewPage)
@bp.doc(tags=["review"])
def list_review(per_page: int, after_id: int | None = None):
    """The reads waiting for review, oldest first, each with why it waits."""
    scope = current_scope()
    records = pending_page(db.session, after_id, per_page, scope=scope)
    reasons = reasons_for(db.session, records, float(current_app.config["REVIEW_CONFIDENCE"]))
    names = camera_names(db.session, scope=scope)
    known = known_for(db.session, [(r.plate_normalized, r.province_code) for r in records], utcnow())
    return jsonify({
        "items": [{"record": record_json(r, names.get(r.camera_id), known.get((r.plate_normalized,
                                                                               r.province_code))),
                   "reasons": reasons[r.id]} for r in records],
        "per_page": per_page,
        "total": pending_count(db.session, scope=scope),
        "next_after_id": records[-1].id if len(records) == per_page else None,
    })


@bp.post("/review/<id:record_id>/confirm")
@require_role(*WRITERS)
@bp.response(200, RecordSchema)
@bp.alt_response(404, description="`not_found`: no record with this id")
@bp.alt_response(409, description="`not_pending`: the read is not waiting (confirmed or corrected already, "
                                  "or never needed review)")
@bp.doc(tags=["review"])
def confirm(record_id: int):
    """Confirm a waiting read as the camera sent it (operators and admins)."""
    try:
        # a read of another site is "no such read" (SPEC §15 "Sites")
        record = confirm_record(db.session, visible_record(db.session, record_id, current_scope()),
                                current_user._get_current_object(), utcnow(), ip=request.remote_addr)
    except ReviewError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.code, str(exc))
    db.session.commit()
    return answer_record(record)

