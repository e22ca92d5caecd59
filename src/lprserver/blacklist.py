"""Blacklist services: matching reads and managing entries. Callers commit."""

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .audit import audit
from .models import BLACKLIST_CATEGORIES, BlacklistDetection, BlacklistEntry, User
from .plates import is_valid_normalized, normalize_plate
from .times import parse_local


def match_blacklist(session: Session, plate_normalized: str, now: datetime) -> list[BlacklistEntry]:
    """Return the active, unexpired entries whose normalised plate equals the read's."""
    query = select(BlacklistEntry).where(
        BlacklistEntry.plate_normalized == plate_normalized,
        BlacklistEntry.active.is_(True),
        or_(BlacklistEntry.expires_at.is_(None), BlacklistEntry.expires_at > now),
    )
    return list(session.scalars(query))


def match_blacklist_many(session: Session, plates: set[str],
                         now: datetime) -> dict[str, list[BlacklistEntry]]:
    """Match many normalised plates in one query: {plate: its active, unexpired entries} for the hits."""
    if not plates:
        return {}
    query = select(BlacklistEntry).where(
        BlacklistEntry.plate_normalized.in_(sorted(plates)),
        BlacklistEntry.active.is_(True),
        or_(BlacklistEntry.expires_at.is_(None), BlacklistEntry.expires_at > now),
    ).order_by(BlacklistEntry.id)
    hits: dict[str, list[BlacklistEntry]] = {}
    for entry in session.scalars(query):
        hits.setdefault(entry.plate_normalized, []).append(entry)
    return hits


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


def apply_entry_changes(session: Session, entry: BlacklistEntry, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply an API PATCH to an entry and return {field: [old, new]} for the audit trail."""
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


# --- Managing entries from the web app, every change audited ------------------------------

CSV_FIELDS = ("license_plate_text", "reason", "category", "expires_at", "active", "added_by",
              "created_at")


class BlacklistInputError(ValueError):
    """A value an entry cannot take; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Actor:
    """Who makes a change, for the audit trail."""

    user: User | None
    ip: str | None = None

    @property
    def name(self) -> str | None:
        return self.user.username if self.user is not None else None


def _entry_json(entry: BlacklistEntry) -> dict[str, Any]:
    return {"plate": entry.license_plate_text, "reason": entry.reason, "category": entry.category,
            "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
            "active": entry.active}


def _checked(plate: str, category: str, reason: str | None) -> tuple[str, str, str | None]:
    plate = (plate or "").strip()
    if not is_valid_normalized(normalize_plate(plate)) or len(plate) > 64:
        raise BlacklistInputError("license_plate_text", "the plate is empty or too long")
    if category not in BLACKLIST_CATEGORIES:
        raise BlacklistInputError("category", f"category must be one of {', '.join(BLACKLIST_CATEGORIES)}")
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > 2000:
        raise BlacklistInputError("reason", "the reason is over 2000 characters")
    if reason is not None and "\x00" in reason:
        raise BlacklistInputError("reason", "the reason holds a NUL character")
    return plate, category, reason


def create_entry(session: Session, actor: Actor, plate: str, reason: str | None = None,
                 category: str = "other", expires_at: datetime | None = None) -> BlacklistEntry:
    """Add a checked entry and audit it."""
    plate, category, reason = _checked(plate, category, reason)
    entry = add_entry(session, plate, reason, category, actor.name, expires_at)
    audit(session, "blacklist.add", actor.user, target=f"blacklist:{entry.id}",
          detail=_entry_json(entry), ip=actor.ip)
    return entry


def update_entry(session: Session, actor: Actor, entry: BlacklistEntry, plate: str, reason: str | None,
                 category: str, expires_at: datetime | None, active: bool) -> BlacklistEntry:
    """Change an entry and audit what it was and what it is now."""
    plate, category, reason = _checked(plate, category, reason)
    before = _entry_json(entry)
    entry.license_plate_text, entry.plate_normalized = plate, normalize_plate(plate)
    entry.reason, entry.category, entry.expires_at, entry.active = reason, category, expires_at, active
    audit(session, "blacklist.update", actor.user, target=f"blacklist:{entry.id}",
          detail={"before": before, "after": _entry_json(entry)}, ip=actor.ip)
    return entry


def expire_entry(session: Session, actor: Actor, entry: BlacklistEntry, now: datetime) -> BlacklistEntry:
    """Make an entry stop matching from now on, keeping it for the record."""
    entry.expires_at = now
    audit(session, "blacklist.expire", actor.user, target=f"blacklist:{entry.id}",
          detail=_entry_json(entry), ip=actor.ip)
    return entry


def delete_entry(session: Session, actor: Actor, entry: BlacklistEntry) -> None:
    """Delete an entry (its detections go with it) and audit what it was."""
    audit(session, "blacklist.delete", actor.user, target=f"blacklist:{entry.id}",
          detail=_entry_json(entry), ip=actor.ip)
    session.delete(entry)


def is_current(entry: BlacklistEntry, now: datetime) -> bool:
    """Tell whether an entry matches reads now."""
    return entry.active and (entry.expires_at is None or entry.expires_at > now)


@dataclass
class ImportReport:
    added: list[BlacklistEntry] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (line, plate, why)


def _parse_expiry(text: str, timezone: str) -> datetime | None:
    text = (text or "").strip()
    if not text:
        return None
    return parse_local(text, timezone)


def import_csv(session: Session, actor: Actor, text: str, timezone: str, now: datetime) -> ImportReport:
    """Add one entry per CSV row (columns: plate, reason, category, expires_at); report the rest."""
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    fields = {(name or "").strip().lower() for name in reader.fieldnames or []}
    plate_column = next((c for c in ("license_plate_text", "plate", "plate_number") if c in fields), None)
    if plate_column is None:
        report.rejected.append((1, "", "no plate column (license_plate_text or plate) in the header"))
        return report
    listed = set(session.scalars(select(BlacklistEntry.plate_normalized).where(
        BlacklistEntry.active.is_(True),
        or_(BlacklistEntry.expires_at.is_(None), BlacklistEntry.expires_at > now))))
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
        plate = row.get(plate_column, "")
        try:
            expires_at = _parse_expiry(row.get("expires_at", ""), timezone)
            if normalize_plate(plate) in listed:
                raise BlacklistInputError("license_plate_text", "already on the blacklist")
            entry = create_entry(session, actor, plate, row.get("reason"), row.get("category") or "other",
                                 expires_at)
        except BlacklistInputError as exc:
            report.rejected.append((line, plate, str(exc)))
            continue
        except ValueError:
            report.rejected.append((line, plate, "expires_at is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)"))
            continue
        listed.add(entry.plate_normalized)
        report.added.append(entry)
    audit(session, "blacklist.import", actor.user, detail={"added": len(report.added),
                                                           "rejected": len(report.rejected)}, ip=actor.ip)
    return report


def export_rows(session: Session, timezone: str) -> list[list[str]]:
    """Return the blacklist as CSV rows, header first, times in `timezone`."""
    tz = ZoneInfo(timezone)
    rows = [list(CSV_FIELDS)]
    for entry in session.scalars(select(BlacklistEntry).order_by(BlacklistEntry.id)):
        rows.append([_csv_cell(getattr(entry, name), tz) for name in CSV_FIELDS])
    return rows


def _csv_cell(value: Any, tz: ZoneInfo) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    # Keep spreadsheets from running a reason like "=HYPERLINK(...)" as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
