"""Reading the audit log (SPEC §15 "Audit"): the /audit page, `GET /api/audit` and its CSV export.

The log is append-only for the app: this module only reads it (audit.py writes it; no route edits or
deletes an entry; its own retention setting ages it out). Newest first, by id (ids grow with `at`).

A site-limited admin sees the entries of the users limited to their own sites (every site of the user
among the admin's), not those of unlimited users or of no user (failed sign-ins): an entry may name a
plate searched or exported at another site.
"""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from .models import AuditEntry, User
from .records import COUNT_CAP, Total, capped_count
from .sites import EVERYWHERE, Scope

CSV_COLUMNS = ("id", "at", "user", "action", "target", "detail", "address")
EXPORT_CHUNK = 1000
MAX_FILTER = 64


@dataclass(frozen=True)
class AuditFilter:
    """`user` and `action` exact; an `action` ending in `*` or `.` is a prefix (`records.*`, `plate.`);
    `since` inclusive, `until` exclusive (UTC)."""

    user: str = ""
    action: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"user": self.user, "action": self.action, "from": self.since, "to": self.until}


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as GET /api/audit lists it (SPEC §15: id, at, user, action, detail, address), with
    its `target` (what the action was done to: `record:12`, `plate:กข1234`, `user:somchai`)."""
    return {"id": entry.id, "at": entry.at.isoformat() if entry.at else None, "user": entry.username,
            "action": entry.action, "target": entry.target, "detail": entry.detail or {}, "address": entry.ip}


def visible_users(session: Session, scope: Scope) -> list[int] | None:
    """The ids of the users whose entries a limited scope sees (None: every entry)."""
    if not scope.limited:
        return None
    mine = scope.sites or frozenset()
    ids = [uid for uid, sites in session.execute(select(User.id, User.sites)) if sites and set(sites) <= mine]
    return ids


def entries_query(session: Session, f: AuditFilter, scope: Scope = EVERYWHERE) -> Select:
    query = select(AuditEntry)
    if f.user:
        query = query.where(AuditEntry.username == f.user)
    if f.action:
        if f.action.endswith("*"):
            query = query.where(AuditEntry.action.startswith(f.action[:-1], autoescape=True))
        elif f.action.endswith("."):
            query = query.where(AuditEntry.action.startswith(f.action, autoescape=True))
        else:
            query = query.where(AuditEntry.action == f.action)
    if f.since is not None:
        query = query.where(AuditEntry.at >= f.since)
    if f.until is not None:
        query = query.where(AuditEntry.at < f.until)
    users = visible_users(session, scope)
    if users is not None:
        query = query.where(AuditEntry.user_id.in_(users) if users else false())
    return query


def find_entries(session: Session, f: AuditFilter, page: int = 1, per_page: int = 50,
                 scope: Scope = EVERYWHERE) -> list[AuditEntry]:
    """One page of the matching entries, newest first."""
    query = entries_query(session, f, scope).order_by(AuditEntry.id.desc())
    return list(session.scalars(query.limit(per_page).offset((page - 1) * per_page)))


def count_entries(session: Session, f: AuditFilter, scope: Scope = EVERYWHERE,
                  cap: int | None = COUNT_CAP) -> Total:
    """How many entries match, exact up to `cap` (then `at_least`)."""
    return capped_count(session, entries_query(session, f, scope).with_only_columns(AuditEntry.id), cap)


def actions(session: Session) -> list[str]:
    """The actions the log holds (the page's action choices)."""
    return sorted(session.scalars(select(AuditEntry.action).distinct()))


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # keep spreadsheets from running a value as a formula
    return value


def export_csv(session: Session, f: AuditFilter, timezone: str, scope: Scope = EVERYWHERE,
               bom: bool = False) -> Iterator[str]:
    """Yield the matching entries as CSV, newest first, a chunk at a time; `at` in `timezone` with its
    offset; `detail` as JSON."""
    tz = ZoneInfo(timezone)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    yield ("\ufeff" if bom else "") + _taken(out)
    query = entries_query(session, f, scope).order_by(AuditEntry.id.desc())
    last: int | None = None
    while True:
        page = query if last is None else query.where(AuditEntry.id < last)
        rows = list(session.scalars(page.limit(EXPORT_CHUNK)))
        if not rows:
            break
        for entry in rows:
            shown = audit_json(entry)
            shown["at"] = entry.at.astimezone(tz).isoformat()
            shown["detail"] = json.dumps(shown["detail"], ensure_ascii=False, sort_keys=True, default=str)
            writer.writerow([_cell(shown[c]) for c in CSV_COLUMNS])
        last = rows[-1].id
        for entry in rows:
            session.expunge(entry)
        yield _taken(out)


def _taken(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text
