"""Blacklist: entries (list, add, read, change, delete), hits and their statistics. The entries are global;
a user limited to sites sees the hits of their sites' cameras only, and another site's hit is not found
(SPEC §15)."""

from flask import current_app, request
from flask_login import current_user, login_required
from sqlalchemy import func, select

from ..audit import audit
from ..auth import require_role
from ..blacklist import (
    BlacklistInputError,
    acknowledge_detection,
    add_entry,
    apply_entry_changes,
    blacklist_statistics,
    entry_snapshot,
)
from ..extensions import db
from ..models import BlacklistDetection, BlacklistEntry, Record, utcnow
from ..plates import normalize_plate
from ..sites import current_scope
from ..statistics import hits_clause, start_of_day
from . import bp
from .errors import error_response
from .schemas import (
    BlacklistEntrySchema,
    BlacklistIn,
    BlacklistListArgs,
    BlacklistPage,
    BlacklistPatch,
    BlacklistStatistics,
    DetectionArgs,
    DetectionPage,
    DetectionSchema,
)

WRITERS = ("admin", "operator")


def _user():
    return current_user._get_current_object()


@bp.get("/blacklist")
@login_required
@bp.arguments(BlacklistListArgs, location="query", as_kwargs=True)
@bp.response(200, BlacklistPage)
@bp.doc(tags=["blacklist"])
def list_blacklist(page: int, per_page: int, active=None, category=None, match=None, plate=None):
    """List blacklist entries, newest first."""
    query = select(BlacklistEntry)
    if active is not None:
        query = query.where(BlacklistEntry.active.is_(active))
    if category:
        query = query.where(BlacklistEntry.category == category)
    if match:
        query = query.where(BlacklistEntry.match == match)
    if plate:
        query = query.where(BlacklistEntry.plate_normalized.contains(normalize_plate(plate), autoescape=True))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    entries = db.session.scalars(
        query.order_by(BlacklistEntry.id.desc()).limit(per_page).offset((page - 1) * per_page))
    return {"entries": list(entries), "page": page, "per_page": per_page, "total": total}


@bp.post("/blacklist")
@require_role(*WRITERS)
@bp.arguments(BlacklistIn)
@bp.response(201, BlacklistEntrySchema)
@bp.alt_response(400, description="`validation_error` with `field`: an unknown `match` or `province_code`, "
                                  "a pattern with fewer than two characters that are not wildcards …")
@bp.doc(tags=["blacklist"])
def create_blacklist_entry(data: dict):
    """Add a plate to the blacklist (operators and admins)."""
    try:
        entry = add_entry(db.session, data["license_plate_text"], data.get("reason"), data["category"],
                          data.get("added_by") or _user().username, data.get("expires_at"), data["match"],
                          data.get("province_code"))
    except BlacklistInputError as exc:
        db.session.rollback()
        return _refused(exc)
    audit(db.session, "blacklist.add", user=_user(), target=f"blacklist:{entry.id}",
          detail=entry_snapshot(entry), ip=request.remote_addr)
    db.session.commit()
    return entry


@bp.get("/blacklist/<id:entry_id>")
@login_required
@bp.response(200, BlacklistEntrySchema)
@bp.doc(tags=["blacklist"])
def get_blacklist_entry(entry_id: int):
    """Return one blacklist entry."""
    return db.get_or_404(BlacklistEntry, entry_id)


@bp.patch("/blacklist/<id:entry_id>")
@require_role(*WRITERS)
@bp.arguments(BlacklistPatch)
@bp.response(200, BlacklistEntrySchema)
@bp.alt_response(400, description="`validation_error` with `field`, as for POST; nothing is changed")
@bp.doc(tags=["blacklist"])
def update_blacklist_entry(changes: dict, entry_id: int):
    """Change some fields of an entry: reason, category, expiry, active, match, province, the plate itself."""
    entry = db.get_or_404(BlacklistEntry, entry_id)
    try:
        changed = apply_entry_changes(db.session, entry, changes)
    except BlacklistInputError as exc:
        db.session.rollback()
        return _refused(exc)
    if changed:
        audit(db.session, "blacklist.update", user=_user(), target=f"blacklist:{entry.id}",
              detail=changed, ip=request.remote_addr)
    db.session.commit()
    return entry


def _refused(exc: BlacklistInputError):
    return error_response(400, "validation_error", f"{exc.field}: {exc}", exc.field)


@bp.delete("/blacklist/<id:entry_id>")
@require_role(*WRITERS)
@bp.response(204)
@bp.doc(tags=["blacklist"])
def delete_blacklist_entry(entry_id: int):
    """Delete an entry (its hits go with it; the audit trail keeps what it was)."""
    entry = db.get_or_404(BlacklistEntry, entry_id)
    audit(db.session, "blacklist.delete", user=_user(), target=f"blacklist:{entry.id}",
          detail=entry_snapshot(entry), ip=request.remote_addr)
    db.session.delete(entry)
    db.session.commit()


@bp.get("/blacklist/statistics")
@login_required
@bp.response(200, BlacklistStatistics)
@bp.doc(tags=["blacklist"])
def get_blacklist_statistics():
    """Count entries and hits: totals, per category, today, unacknowledged, top plates."""
    return blacklist_statistics(db.session, start_of_day(utcnow(), current_app.config["TIMEZONE"]),
                                scope=current_scope())


def detection_json(detection: BlacklistDetection, record: Record, entry: BlacklistEntry) -> dict:
    return {
        "id": detection.id, "record_id": detection.record_id, "entry_id": detection.entry_id,
        "match_type": detection.match_type, "detected_at": detection.detected_at,
        "acknowledged_by": detection.acknowledged_by, "acknowledged_at": detection.acknowledged_at,
        "plate_number": record.plate_number, "camera_id": record.camera_id,
        "license_plate_text": entry.license_plate_text, "category": entry.category,
        "reason": entry.reason,
    }


@bp.get("/blacklist/detections")
@login_required
@bp.arguments(DetectionArgs, location="query", as_kwargs=True)
@bp.response(200, DetectionPage)
@bp.doc(tags=["blacklist"])
def list_detections(page: int, per_page: int, acknowledged=None, entry_id=None):
    """List blacklist hits, newest first (of the user's sites)."""
    query = select(BlacklistDetection).where(hits_clause(current_scope()))
    if acknowledged is not None:
        column = BlacklistDetection.acknowledged_at
        query = query.where(column.is_not(None) if acknowledged else column.is_(None))
    if entry_id is not None:
        query = query.where(BlacklistDetection.entry_id == entry_id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.execute(
        select(BlacklistDetection, Record, BlacklistEntry)
        .join(Record, Record.id == BlacklistDetection.record_id)
        .join(BlacklistEntry, BlacklistEntry.id == BlacklistDetection.entry_id)
        .where(BlacklistDetection.id.in_(query.with_only_columns(BlacklistDetection.id)))
        .order_by(BlacklistDetection.detected_at.desc(), BlacklistDetection.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return {"detections": [detection_json(*row) for row in rows], "page": page,
            "per_page": per_page, "total": total}


@bp.post("/blacklist/detections/<id:detection_id>/acknowledge")
@require_role(*WRITERS)
@bp.response(200, DetectionSchema)
@bp.doc(tags=["blacklist"])
def acknowledge(detection_id: int):
    """Acknowledge a hit (operators and admins); acknowledging twice keeps the first."""
    detection = db.first_or_404(select(BlacklistDetection).where(
        BlacklistDetection.id == detection_id, hits_clause(current_scope())))
    if acknowledge_detection(detection, _user().id, utcnow()):
        audit(db.session, "blacklist.acknowledge", user=_user(), target=f"detection:{detection.id}",
              ip=request.remote_addr)
        db.session.commit()
    record = db.session.get(Record, detection.record_id)
    entry = db.session.get(BlacklistEntry, detection.entry_id)
    return detection_json(detection, record, entry)
