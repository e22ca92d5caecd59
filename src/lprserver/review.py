"""The review queue (SPEC §10 "Review"): reads under REVIEW_CONFIDENCE and look-alike or fuzzy hits wait,
oldest first, until an operator confirms or corrects them. Callers commit."""

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .audit import audit
from .models import BlacklistDetection, BlacklistEntry, Record, User
from .records import scoped
from .sites import EVERYWHERE, Scope

REVIEWED_MATCHES = ("lookalike", "fuzzy")
COUNT_CAP = 1000  # the nav's count stops here ("999+"): one short index scan per page


class ReviewError(Exception):
    """A read that cannot be confirmed: `status` 404 (no such read) or 409 (not waiting)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def pending_query(scope: Scope = EVERYWHERE):
    return scoped(select(Record).where(Record.review_state == "pending"), Record.camera_id, scope)


def pending_count(session: Session, cap: int | None = None, *, scope: Scope = EVERYWHERE) -> int:
    """How many reads wait (through the partial index ix_lpr_records_review); at most `cap`; only the
    reads of the cameras `scope` sees."""
    ids = scoped(select(Record.id).where(Record.review_state == "pending"), Record.camera_id, scope)
    if cap is not None:
        ids = ids.limit(cap)
    return session.scalar(select(func.count()).select_from(ids.subquery()))


def pending_page(session: Session, after_id: int | None, limit: int, *,
                 scope: Scope = EVERYWHERE) -> list[Record]:
    """The waiting reads after `after_id` (of the cameras `scope` sees), oldest first."""
    query = pending_query(scope)
    if after_id is not None:
        query = query.where(Record.id > after_id)
    return list(session.scalars(query.order_by(Record.id).limit(limit)))


def reasons_for(session: Session, records: list[Record], threshold: float) -> dict[int, list[dict[str, Any]]]:
    """Why each read waits: `low_confidence` (its confidence and the threshold) and each look-alike or
    fuzzy hit (`lookalike` / `fuzzy`, with the entry that matched)."""
    found: dict[int, list[dict[str, Any]]] = {r.id: [] for r in records}
    for r in records:
        if r.confidence is not None and r.confidence < threshold:
            found[r.id].append({"kind": "low_confidence", "confidence": r.confidence, "threshold": threshold})
    if records:
        rows = session.execute(
            select(BlacklistDetection, BlacklistEntry)
            .join(BlacklistEntry, BlacklistEntry.id == BlacklistDetection.entry_id)
            .where(BlacklistDetection.record_id.in_([r.id for r in records]),
                   BlacklistDetection.match_type.in_(REVIEWED_MATCHES))
            .order_by(BlacklistDetection.id)).all()
        for detection, entry in rows:
            found[detection.record_id].append({
                "kind": detection.match_type, "detection_id": detection.id,
                "entry": {"id": entry.id, "license_plate_text": entry.license_plate_text,
                          "plate_normalized": entry.plate_normalized, "match": entry.match,
                          "province_code": entry.province_code, "category": entry.category,
                          "reason": entry.reason}})
    return found


def confirm_record(session: Session, record: Record | None, user: User, now: datetime,
                   ip: str | None = None) -> Record:
    """Confirm a waiting read as the camera sent it. Raises ReviewError for no read or one not waiting."""
    if record is None:
        raise ReviewError(404, "not_found", "there is no record with this id")
    if record.review_state != "pending":
        state = record.review_state or "never needed review"
        raise ReviewError(409, "not_pending", f"this read is not waiting for review ({state})")
    record.review_state, record.reviewed_by, record.reviewed_at = "confirmed", user.username, now
    audit(session, "record.confirm", user=user, target=f"record:{record.id}", ip=ip,
          detail={"plate_normalized": record.plate_normalized, "province_code": record.province_code})
    return record
