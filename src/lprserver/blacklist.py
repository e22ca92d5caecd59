"""Blacklist services: matching reads and managing entries. Callers commit."""

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .models import BlacklistDetection, BlacklistEntry
from .plates import normalize_plate


def match_blacklist(session: Session, plate_normalized: str, now: datetime) -> list[BlacklistEntry]:
    """Return the active, unexpired entries whose normalised plate equals the read's."""
    query = select(BlacklistEntry).where(
        BlacklistEntry.plate_normalized == plate_normalized,
        BlacklistEntry.active.is_(True),
        or_(BlacklistEntry.expires_at.is_(None), BlacklistEntry.expires_at > now),
    )
    return list(session.scalars(query))


def add_entry(
    session: Session,
    license_plate_text: str,
    reason: str | None = None,
    category: str = "other",
    added_by: str | None = None,
    expires_at: datetime | None = None,
) -> BlacklistEntry:
    """Add a blacklist entry; the plate is kept as typed and normalised."""
    entry = BlacklistEntry(
        license_plate_text=license_plate_text,
        plate_normalized=normalize_plate(license_plate_text),
        reason=reason,
        category=category,
        added_by=added_by,
        expires_at=expires_at,
    )
    session.add(entry)
    session.flush()
    return entry


EDITABLE_FIELDS = ("license_plate_text", "reason", "category", "added_by", "expires_at", "active")


def update_entry(session: Session, entry: BlacklistEntry, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply changes to an entry and return {field: [old, new]} for the audit trail."""
    changed: dict[str, Any] = {}
    for name in EDITABLE_FIELDS:
        if name in changes and getattr(entry, name) != changes[name]:
            changed[name] = [_plain(getattr(entry, name)), _plain(changes[name])]
            setattr(entry, name, changes[name])
    if "license_plate_text" in changed:
        entry.plate_normalized = normalize_plate(entry.license_plate_text)
    session.flush()
    return changed


def entry_snapshot(entry: BlacklistEntry) -> dict[str, Any]:
    """Return an entry's fields as plain JSON values, for the audit trail."""
    return {name: _plain(getattr(entry, name)) for name in ("id", "plate_normalized", *EDITABLE_FIELDS)}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def blacklist_statistics(session: Session, since: datetime) -> dict[str, Any]:
    """Count entries and hits: totals, per category, since a moment, unacknowledged, top plates."""
    by_category = dict(session.execute(
        select(BlacklistEntry.category, func.count()).group_by(BlacklistEntry.category)).all())
    hits = select(func.count()).select_from(BlacklistDetection)
    top = session.execute(
        select(BlacklistEntry.id, BlacklistEntry.license_plate_text, func.count(BlacklistDetection.id))
        .join(BlacklistDetection, BlacklistDetection.entry_id == BlacklistEntry.id)
        .group_by(BlacklistEntry.id, BlacklistEntry.license_plate_text)
        .order_by(func.count(BlacklistDetection.id).desc(), BlacklistEntry.id).limit(10)
    ).all()
    return {
        "total_entries": sum(by_category.values()),
        "active_entries": session.scalar(
            select(func.count()).select_from(BlacklistEntry).where(BlacklistEntry.active.is_(True))),
        "by_category": by_category,
        "total_detections": session.scalar(hits),
        "detections_today": session.scalar(hits.where(BlacklistDetection.detected_at >= since)),
        "unacknowledged_detections": session.scalar(
            hits.where(BlacklistDetection.acknowledged_at.is_(None))),
        "top_plates": [{"entry_id": i, "license_plate_text": t, "detections": n} for i, t, n in top],
    }


def acknowledge_detection(detection: BlacklistDetection, user_id: int, now: datetime) -> bool:
    """Mark a hit as seen by a user; return False when it was acknowledged already."""
    if detection.acknowledged_at is not None:
        return False
    detection.acknowledged_by, detection.acknowledged_at = user_id, now
    return True
