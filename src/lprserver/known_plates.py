"""Known plates and their groups (SPEC §10): add, change, delete, CSV import and export, a group's
settings. Every change is audited; callers commit. The daemon's KnownCache (known.py) sees the
changes at its next batch."""

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .audit import audit
from .blacklist import Actor
from .models import KnownGroup, KnownPlate
from .plates import PATTERN_WILDCARDS, is_valid_normalized, normalize_plate, parse_plate, province_by_code
from .records import province_error
from .times import YEARS, in_years, parse_local

__all__ = ["Actor", "KnownInputError", "KnownConflict"]

MAX_GROUP_LENGTH = 64
MAX_NAME_LENGTH = 128
MAX_NOTES_LENGTH = 2000
MAX_STAY_MINUTES = 100_000
MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 10_000
CSV_FIELDS = ("plate", "name", "notes", "group", "valid_from", "valid_until", "province_code")
TIME_RULE = f"a date or a date and time (YYYY-MM-DD or YYYY-MM-DDTHH:MM, years {YEARS[0]}-{YEARS[1]})"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class KnownInputError(ValueError):
    """A value a known plate or group cannot take; `field` names it."""

    status = 400

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class KnownConflict(KnownInputError):
    """The plate is a known plate of that group already (uq_known_plates_plate_group)."""

    status = 409


# --- checking values -----------------------------------------------------------------------------------

def check_group(name: str | None) -> str:
    """A group name as kept: trimmed, 1-64 characters, printable, no `/` (it is part of URLs)."""
    name = (name or "").strip()
    if not name:
        raise KnownInputError("group", "group is empty: name the group (residents, staff …)")
    if len(name) > MAX_GROUP_LENGTH:
        raise KnownInputError("group", f"group is over {MAX_GROUP_LENGTH} characters")
    if not name.isprintable() or "/" in name:
        raise KnownInputError("group", "group may not hold / or control characters")
    return name


def check_max_stay(minutes: Any) -> int | None:
    if minutes is None:
        return None
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_STAY_MINUTES:
        raise KnownInputError("max_stay_minutes", f"max_stay_minutes is a whole number from 1 to "
                                                  f"{MAX_STAY_MINUTES}, or null for no limit")
    return minutes


def _text(value: str | None, name: str, limit: int) -> str | None:
    value = (value or "").strip() or None
    if value is not None and len(value) > limit:
        raise KnownInputError(name, f"{name} is over {limit} characters")
    if value is not None and "\x00" in value:
        raise KnownInputError(name, f"{name} holds a NUL character")
    return value


def plate_matching(text: str | None, province_code: str | None = None) -> tuple[str, str, str | None]:
    """The plate as typed (trimmed), its normalised form without the province, and the province code:
    the one given, else the one the text names ("กข 1234 กรุงเทพมหานคร" -> TH-10)."""
    text = (text or "").strip()
    if not text or len(text) > 64:
        raise KnownInputError("plate", "plate is empty or over 64 characters")
    code = (province_code or "").strip()
    if code:
        province = province_by_code(code)
        if province is None:
            raise KnownInputError("province_code", "province_code " + province_error(code))
        code = province.code
    parsed = parse_plate(text)
    if any(ch in PATTERN_WILDCARDS for ch in parsed.normalized):
        raise KnownInputError("plate", "a known plate is one plate: * and ? are not allowed")
    if not is_valid_normalized(parsed.normalized):
        raise KnownInputError("plate", "plate is empty or over 32 characters once normalised")
    return text, parsed.normalized, code or parsed.province_code


def parse_time(text: str | None, name: str, timezone: str) -> datetime | None:
    """A time as people type it (in `timezone` without an offset); None for an empty one."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return parse_local(text, timezone)
    except ValueError:
        raise KnownInputError(name, f"{name} is not {TIME_RULE}") from None


def check_time(moment: datetime | None, name: str, timezone: str) -> datetime | None:
    """An API time: one without an offset is read in `timezone`."""
    if moment is None:
        return None
    try:
        in_years(moment)
    except ValueError as exc:
        raise KnownInputError(name, f"{name} {exc}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(timezone))


def check_range(valid_from: datetime | None, valid_until: datetime | None) -> None:
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise KnownInputError("valid_until", "valid_until must be after valid_from")


def given_province(row: KnownPlate) -> str | None:
    """The province code a plate was given on its own (None when it is the one its text names)."""
    named = parse_plate(row.plate).province_code
    return row.province_code if row.province_code != named else None


def is_current(row: KnownPlate, now: datetime) -> bool:
    return (row.valid_from is None or row.valid_from <= now) and \
        (row.valid_until is None or now < row.valid_until)


# --- groups ----------------------------------------------------------------------------------------------

def ensure_group(session: Session, name: str) -> KnownGroup:
    """The group of that name, created when new (no max stay)."""
    group = session.get(KnownGroup, name)
    if group is None:
        group = KnownGroup(name=name)
        session.add(group)
        session.flush()
    return group


def group_counts(session: Session) -> list[tuple[KnownGroup, int]]:
    """Every group with its number of known plates, by name."""
    counts = dict(session.execute(
        select(KnownPlate.group_name, func.count()).group_by(KnownPlate.group_name)).all())
    groups = session.scalars(select(KnownGroup).order_by(KnownGroup.name)).all()
    return [(g, counts.get(g.name, 0)) for g in groups]


def set_group(session: Session, actor: Actor, name: str, max_stay_minutes: Any) -> KnownGroup:
    """Set a group's max stay (creating the group when new) and audit the change."""
    name = check_group(name)
    minutes = check_max_stay(max_stay_minutes)
    group = session.get(KnownGroup, name)
    before = group.max_stay_minutes if group is not None else None
    group = group or ensure_group(session, name)
    group.max_stay_minutes = minutes
    session.flush()
    audit(session, "known_group.update", actor.user, target=f"known_group:{name}",
          detail={"max_stay_minutes": [before, minutes]}, ip=actor.ip)
    return group


# --- plates ----------------------------------------------------------------------------------------------

def snapshot(row: KnownPlate) -> dict[str, Any]:
    """A known plate's fields as plain JSON values, for the audit trail."""
    return {"plate": row.plate, "plate_normalized": row.plate_normalized, "province_code": row.province_code,
            "name": row.name, "notes": row.notes, "group": row.group_name,
            "valid_from": _iso(row.valid_from), "valid_until": _iso(row.valid_until)}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _no_twin(session: Session, normalized: str, group: str, own_id: int | None) -> None:
    query = select(KnownPlate.id).where(KnownPlate.plate_normalized == normalized,
                                        KnownPlate.group_name == group)
    if own_id is not None:
        query = query.where(KnownPlate.id != own_id)
    if session.scalar(query.limit(1)) is not None:
        raise KnownConflict("plate", f"{normalized} is a known plate of group {group} already")


def create_plate(session: Session, actor: Actor, plate: str, group: str, name: str | None = None,
                 notes: str | None = None, valid_from: datetime | None = None,
                 valid_until: datetime | None = None, province_code: str | None = None) -> KnownPlate:
    """Add a known plate (and its group when new) after checking every field; audit it. KnownInputError
    (KnownConflict for the same plate twice in one group) before anything is added."""
    text, normalized, code = plate_matching(plate, province_code)
    group = check_group(group)
    name, notes = _text(name, "name", MAX_NAME_LENGTH), _text(notes, "notes", MAX_NOTES_LENGTH)
    check_range(valid_from, valid_until)
    _no_twin(session, normalized, group, None)
    ensure_group(session, group)
    row = KnownPlate(plate=text, plate_normalized=normalized, province_code=code, name=name, notes=notes,
                     group_name=group, valid_from=valid_from, valid_until=valid_until, added_by=actor.name)
    session.add(row)
    session.flush()
    audit(session, "known.add", actor.user, target=f"known:{row.id}", detail=snapshot(row), ip=actor.ip)
    return row


EDITABLE = ("plate", "province_code", "name", "notes", "group", "valid_from", "valid_until")


def update_plate(session: Session, actor: Actor, row: KnownPlate, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply changes (any of EDITABLE; times already datetimes) and return {field: [old, new]}, audited.
    Without `province_code`, a new plate text that names a province sets it; one given on its own is
    kept. KnownInputError before anything is changed."""
    text = changes.get("plate", row.plate)
    given = changes["province_code"] if "province_code" in changes else given_province(row)
    text, normalized, code = plate_matching(text, given)
    group = check_group(changes["group"]) if "group" in changes else row.group_name
    name = _text(changes["name"], "name", MAX_NAME_LENGTH) if "name" in changes else row.name
    notes = _text(changes["notes"], "notes", MAX_NOTES_LENGTH) if "notes" in changes else row.notes
    valid_from = changes.get("valid_from", row.valid_from)
    valid_until = changes.get("valid_until", row.valid_until)
    check_range(valid_from, valid_until)
    _no_twin(session, normalized, group, row.id)
    if group != row.group_name:
        ensure_group(session, group)
    before = snapshot(row)
    row.plate, row.plate_normalized, row.province_code = text, normalized, code
    row.group_name, row.name, row.notes = group, name, notes
    row.valid_from, row.valid_until = valid_from, valid_until
    after = snapshot(row)
    changed = {key: [before[key], after[key]] for key in after if before[key] != after[key]}
    session.flush()
    if changed:
        audit(session, "known.update", actor.user, target=f"known:{row.id}", detail=changed, ip=actor.ip)
    return changed


def delete_plate(session: Session, actor: Actor, row: KnownPlate) -> None:
    audit(session, "known.delete", actor.user, target=f"known:{row.id}", detail=snapshot(row), ip=actor.ip)
    session.delete(row)
    session.flush()


def plates_query(group: str | None = None, plate: str | None = None):
    """Known plates, newest first, of a group and/or whose normalised plate contains `plate`."""
    query = select(KnownPlate)
    if group:
        query = query.where(KnownPlate.group_name == group.strip())
    if plate and normalize_plate(plate):
        query = query.where(KnownPlate.plate_normalized.contains(normalize_plate(plate), autoescape=True))
    return query.order_by(KnownPlate.id.desc())


# --- CSV -------------------------------------------------------------------------------------------------

@dataclass
class ImportReport:
    added: list[KnownPlate] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (line, plate, why)


def read_upload(upload) -> bytes:
    """An uploaded file's bytes, at most one past MAX_IMPORT_BYTES (a larger one is refused); the file
    (a temporary file on disk for a large upload) is closed at once."""
    if upload is None:
        return b""
    try:
        return upload.read(MAX_IMPORT_BYTES + 1)
    finally:
        upload.close()


def _unquoted(value: str) -> str:
    """A cell as export_rows wrote it: the quote that kept a spreadsheet from running it is dropped."""
    return value[1:] if value[:1] == "'" and value[1:2] in _FORMULA_STARTS else value


def import_csv(session: Session, actor: Actor, text: str, timezone: str) -> ImportReport:
    """Add one known plate per CSV row (columns plate, name, notes, group, valid_from, valid_until and,
    optionally, province_code). Every row is checked; a bad one is rejected with its line and reason and
    stores nothing, the good ones are added. KnownInputError (field `file`, nothing stored) for a file that
    is not CSV, lacks the plate or group column, or has more than MAX_IMPORT_ROWS rows."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [(name or "").strip().lower() for name in next(reader, [])]
        rows = list(reader)
    except csv.Error as exc:
        raise KnownInputError("file", f"the file is not CSV: {exc}") from None
    missing = [name for name in ("plate", "group") if name not in header]
    if missing:
        raise KnownInputError("file", f"the header has no {' or '.join(missing)} column (columns: "
                                      f"{', '.join(CSV_FIELDS)})")
    if len(rows) > MAX_IMPORT_ROWS:
        raise KnownInputError("file", f"{len(rows):,} rows: at most {MAX_IMPORT_ROWS:,} in one file; "
                                      "nothing was imported, split the file")
    report = ImportReport()
    for line, cells in enumerate(rows, start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        row = {name: _unquoted((cells[i] if i < len(cells) else "").strip()) for i, name in enumerate(header)}
        try:
            added = create_plate(session, actor, row.get("plate", ""), row.get("group", ""), row.get("name"),
                                 row.get("notes"), parse_time(row.get("valid_from"), "valid_from", timezone),
                                 parse_time(row.get("valid_until"), "valid_until", timezone),
                                 row.get("province_code"))
        except KnownInputError as exc:
            report.rejected.append((line, row.get("plate", ""), str(exc)))
            continue
        report.added.append(added)
    audit(session, "known.import", actor.user, detail={"added": len(report.added),
                                                       "rejected": len(report.rejected)}, ip=actor.ip)
    return report


def export_rows(session: Session, timezone: str) -> list[list[str]]:
    """The known plates as CSV rows, header first, oldest first, times in `timezone`."""
    tz = ZoneInfo(timezone)
    rows = [list(CSV_FIELDS)]
    for row in session.scalars(select(KnownPlate).order_by(KnownPlate.id)):
        values = (row.plate, row.name, row.notes, row.group_name, row.valid_from, row.valid_until,
                  given_province(row))
        rows.append([_cell(value, tz) for value in values])
    return rows


def _cell(value: Any, tz: ZoneInfo) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat()
    text = str(value)
    # Keep spreadsheets from running a note like "=HYPERLINK(...)" as a formula.
    return "'" + text if text[:1] in _FORMULA_STARTS else text
