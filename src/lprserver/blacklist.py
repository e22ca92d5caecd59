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
from .models import BLACKLIST_CATEGORIES, MATCH_MODES, BlacklistDetection, BlacklistEntry, User
from .plates import MAX_PLATE_LENGTH, PATTERN_WILDCARDS, is_valid_normalized, parse_plate, province_by_code
from .records import province_error
from .times import parse_local


def entry_matching(text: str, match: str = "exact",
                   province_code: str | None = None) -> tuple[str, str | None]:
    """The normalised plate (a pattern keeps its `*` and `?`) and the province code an entry keeps: the
    one given, else the one its text names ("กข 1234 กรุงเทพมหานคร" -> ("กข1234", "TH-10")). Raises
    BlacklistInputError for an unknown match or province code and a pattern that cannot be one."""
    if match not in MATCH_MODES:
        raise BlacklistInputError("match", f"match must be one of {', '.join(MATCH_MODES)}")
    code = (province_code or "").strip()
    if code:
        province = province_by_code(code)
        if province is None:
            raise BlacklistInputError("province_code", "province_code " + province_error(code))
        code = province.code
    parsed = parse_plate(text or "")
    plate = parsed.normalized
    if match == "pattern":
        if sum(ch not in PATTERN_WILDCARDS for ch in plate) < 2:
            raise BlacklistInputError("license_plate_text", "a pattern needs at least two characters that "
                                                            "are not wildcards (* any run, ? one character)")
        if len(plate) > MAX_PLATE_LENGTH:
            raise BlacklistInputError("license_plate_text", f"a pattern is at most {MAX_PLATE_LENGTH} "
                                                            "characters once normalised")
    elif any(ch in PATTERN_WILDCARDS for ch in plate):
        raise BlacklistInputError("license_plate_text", "* and ? are wildcards only in a pattern: choose "
                                                        "match pattern, or leave them out")
    if not is_valid_normalized(plate):
        raise BlacklistInputError("license_plate_text", "the plate is empty or over 32 characters once "
                                                        "normalised")
    return plate, code or parsed.province_code


def given_province(entry: BlacklistEntry) -> str | None:
    """The province code an entry was given on its own, None when it is the one its text names (or none):
    a change of the text then takes the new text's province."""
    named = parse_plate(entry.license_plate_text).province_code
    return entry.province_code if entry.province_code != named else None


def add_entry(
    session: Session,
    license_plate_text: str,
    reason: str | None = None,
    category: str = "other",
    added_by: str | None = None,
    expires_at: datetime | None = None,
    match: str = "exact",
    province_code: str | None = None,
) -> BlacklistEntry:
    """Add a blacklist entry; the plate is kept as typed and normalised without its province (see
    entry_matching; BlacklistInputError before anything is added)."""
    plate, code = entry_matching(license_plate_text, match, province_code)
    entry = BlacklistEntry(
        license_plate_text=license_plate_text,
        plate_normalized=plate,
        match=match,
        province_code=code,
        reason=reason,
        category=category,
        added_by=added_by,
        expires_at=expires_at,
    )
    session.add(entry)
    session.flush()
    return entry


EDITABLE_FIELDS = ("license_plate_text", "match", "province_code", "reason", "category", "added_by",
                   "expires_at", "active")


def apply_entry_changes(session: Session, entry: BlacklistEntry, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply an API PATCH to an entry and return {field: [old, new]} for the audit trail. Without a
    `province_code`, a new plate text that names a province sets it; one given on its own is kept.
    BlacklistInputError (nothing changed) for a bad match, province code or pattern."""
    text = changes.get("license_plate_text", entry.license_plate_text)
    given = changes["province_code"] if "province_code" in changes else given_province(entry)
    plate, code = entry_matching(text, changes.get("match", entry.match), given)
    changes = {**changes, "province_code": code}
    changed: dict[str, Any] = {}
    for name in EDITABLE_FIELDS:
        if name in changes and getattr(entry, name) != changes[name]:
            changed[name] = [_plain(getattr(entry, name)), _plain(changes[name])]
            setattr(entry, name, changes[name])
    entry.plate_normalized = plate
    session.flush()
    return changed


def entry_snapshot(entry: BlacklistEntry) -> dict[str, Any]:
    """Return an entry's fields as plain JSON values, for the audit trail."""
    return {name: _plain(getattr(entry, name)) for name in ("id", "plate_normalized", *EDITABLE_FIELDS)}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def blacklist_statistics(session: Session, since: datetime, *, scope=None) -> dict[str, Any]:
    """Count entries and hits: totals, per category, since a moment, unacknowledged, top plates. The
    entries are global; the hits only those of reads at the cameras `scope` sees (SPEC §15)."""
    from .sites import EVERYWHERE
    from .statistics import hits_clause

    in_scope = hits_clause(scope or EVERYWHERE)
    by_category = dict(session.execute(
        select(BlacklistEntry.category, func.count()).group_by(BlacklistEntry.category)).all())
    hits = select(func.count()).select_from(BlacklistDetection).where(in_scope)
    top = session.execute(
        select(BlacklistEntry.id, BlacklistEntry.license_plate_text, func.count(BlacklistDetection.id))
        .join(BlacklistDetection, BlacklistDetection.entry_id == BlacklistEntry.id).where(in_scope)
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
              "created_at", "match", "province_code")


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
    return {"plate": entry.license_plate_text, "match": entry.match, "province_code": entry.province_code,
            "reason": entry.reason, "category": entry.category,
            "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
            "active": entry.active}


def _checked(plate: str, category: str, reason: str | None) -> tuple[str, str, str | None]:
    plate = (plate or "").strip()
    if not plate or len(plate) > 64:
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
                 category: str = "other", expires_at: datetime | None = None, match: str = "exact",
                 province_code: str | None = None) -> BlacklistEntry:
    """Add a checked entry and audit it."""
    plate, category, reason = _checked(plate, category, reason)
    entry = add_entry(session, plate, reason, category, actor.name, expires_at, match, province_code)
    audit(session, "blacklist.add", actor.user, target=f"blacklist:{entry.id}",
          detail=_entry_json(entry), ip=actor.ip)
    return entry


def update_entry(session: Session, actor: Actor, entry: BlacklistEntry, plate: str, reason: str | None,
                 category: str, expires_at: datetime | None, active: bool, match: str | None = None,
                 province_code: str | None = None) -> BlacklistEntry:
    """Change an entry and audit what it was and what it is now. `match` None keeps the entry's;
    `province_code` None or empty takes the one the plate text names, if any."""
    plate, category, reason = _checked(plate, category, reason)
    match = entry.match if match is None else match
    normalized, code = entry_matching(plate, match, province_code)
    before = _entry_json(entry)
    entry.license_plate_text, entry.plate_normalized = plate, normalized
    entry.match, entry.province_code = match, code
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
    """Add one entry per CSV row (columns: plate, reason, category, expires_at, match, province_code;
    a missing match is exact, a missing province_code the one the plate names, if any); report the
    rest. A row repeating a current entry (the same plate, match and province) is rejected."""
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    fields = {(name or "").strip().lower() for name in reader.fieldnames or []}
    plate_column = next((c for c in ("license_plate_text", "plate", "plate_number") if c in fields), None)
    if plate_column is None:
        report.rejected.append((1, "", "no plate column (license_plate_text or plate) in the header"))
        return report
    listed = {tuple(row) for row in session.execute(select(
        BlacklistEntry.plate_normalized, BlacklistEntry.match, BlacklistEntry.province_code).where(
        BlacklistEntry.active.is_(True),
        or_(BlacklistEntry.expires_at.is_(None), BlacklistEntry.expires_at > now)))}
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
        plate = row.get(plate_column, "")
        match = (row.get("match") or "exact").lower()
        try:
            expires_at = _parse_expiry(row.get("expires_at", ""), timezone)
            if plate.strip():
                normalized, code = entry_matching(plate, match, row.get("province_code"))
                if (normalized, match, code) in listed:
                    raise BlacklistInputError("license_plate_text", "already on the blacklist")
            entry = create_entry(session, actor, plate, row.get("reason"), row.get("category") or "other",
                                 expires_at, match, row.get("province_code"))
        except BlacklistInputError as exc:
            report.rejected.append((line, plate, str(exc)))
            continue
        except ValueError:
            report.rejected.append((line, plate, "expires_at is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)"))
            continue
        listed.add((entry.plate_normalized, entry.match, entry.province_code))
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
