"""Reading visits (SPEC §10 "Visits") for `GET /api/visits` and the `/visits` page.

Each query is served by one of the visits table's indexes, so it costs the same with 5 M visits:
vehicles on site now by `uq_visits_open_plate` (partial, `exited_at IS NULL`), a day's closed visits by
`ix_visits_exited_at`, a time range by `ix_visits_entered_at` and `ix_visits_exited_at`, a plate by
`ix_visits_plate`.

Sites (SPEC §15): a site-limited caller sees the visits whose cameras (entry, exit, whichever it has) are
all cameras of their sites (`in_scope`); an unlimited one sees every visit, with the same SQL as before.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from .models import KnownGroup, Visit
from .sites import EVERYWHERE, Scope
from .visits import stay_seconds

COUNT_LIMIT = 10_000  # totals are exact up to this many, "at least" past it


@dataclass
class VisitFilter:
    open: bool | None = None  # True: on site now; False: closed (or exits without an entry)
    plate: str | None = None  # normalised
    camera_id: str | None = None  # the entry or the exit camera
    since: datetime | None = None  # entered or exited at or after
    until: datetime | None = None  # entered or exited before


def in_scope(query: Select, scope: Scope = EVERYWHERE) -> Select:
    """Keep the visits `scope` sees: each camera the visit has (entry, exit) is one of its cameras."""
    if not scope.limited:
        return query
    seen = scope.camera_ids()
    return query.where(or_(Visit.entry_camera_id.is_(None), Visit.entry_camera_id.in_(seen)),
                       or_(Visit.exit_camera_id.is_(None), Visit.exit_camera_id.in_(seen)),
                       or_(Visit.entry_camera_id.is_not(None), Visit.exit_camera_id.is_not(None)))


def visits_query(f: VisitFilter, scope: Scope = EVERYWHERE) -> Select:
    query = in_scope(select(Visit), scope)
    if f.open is True:
        query = query.where(Visit.exited_at.is_(None))
    elif f.open is False:
        query = query.where(Visit.exited_at.is_not(None))
    if f.plate:
        query = query.where(Visit.plate_normalized == f.plate)
    if f.camera_id:
        query = query.where(or_(Visit.entry_camera_id == f.camera_id, Visit.exit_camera_id == f.camera_id))
    if f.since is not None or f.until is not None:
        query = query.where(or_(_in_range(Visit.entered_at, f.since, f.until),
                                _in_range(Visit.exited_at, f.since, f.until)))
    return query


def _in_range(column, since: datetime | None, until: datetime | None):
    parts = [column >= since] if since is not None else [column.is_not(None)]
    if until is not None:
        parts.append(column < until)
    return and_(*parts)


def find_visits(session: Session, f: VisitFilter, page: int, per_page: int,
                before_id: int | None = None, *, scope: Scope = EVERYWHERE) -> list[Visit]:
    """Visits newest first (by id), a page of them, or the ones before `before_id` (keyset)."""
    query = visits_query(f, scope)
    if before_id is not None:
        query = query.where(Visit.id < before_id)
    else:
        query = query.offset((page - 1) * per_page)
    return list(session.scalars(query.order_by(Visit.id.desc()).limit(per_page)))


def count_visits(session: Session, f: VisitFilter, *, scope: Scope = EVERYWHERE) -> tuple[int, str]:
    """How many visits match: (count, "exact") up to COUNT_LIMIT, (COUNT_LIMIT, "at_least") past it."""
    capped = visits_query(f, scope).with_only_columns(Visit.id).limit(COUNT_LIMIT + 1).subquery()
    total = session.scalar(select(func.count()).select_from(capped)) or 0
    return (COUNT_LIMIT, "at_least") if total > COUNT_LIMIT else (total, "exact")


def on_site(session: Session, limit: int = 1000, *, scope: Scope = EVERYWHERE) -> list[Visit]:
    """Vehicles on site now, the longest there first (the partial index holds only open visits)."""
    return list(session.scalars(in_scope(select(Visit), scope).where(Visit.exited_at.is_(None))
                                .order_by(Visit.entered_at, Visit.id).limit(limit)))


def closed_between(session: Session, since: datetime, until: datetime, limit: int, offset: int = 0, *,
                   scope: Scope = EVERYWHERE) -> list[Visit]:
    """Visits that ended in [since, until), in the order they ended."""
    return list(session.scalars(
        in_scope(select(Visit), scope).where(Visit.exited_at >= since, Visit.exited_at < until)
        .order_by(Visit.exited_at, Visit.id).limit(limit).offset(offset)))


@dataclass
class DaySummary:
    count: int  # visits that ended in the day
    with_entry: int  # of which had an entry (the others are exits without one)
    mean_stay_seconds: int | None


def day_summary(session: Session, since: datetime, until: datetime, *,
                scope: Scope = EVERYWHERE) -> DaySummary:
    """How many visits ended in [since, until) and their mean stay (of those with an entry): two columns
    of the day's rows, read through the exited_at index, averaged here on either database."""
    rows = session.execute(in_scope(select(Visit.entered_at, Visit.exited_at), scope)
                           .where(Visit.exited_at >= since, Visit.exited_at < until)).all()
    stays = [(exited - entered).total_seconds() for entered, exited in rows if entered is not None]
    mean = round(sum(stays) / len(stays)) if stays else None
    return DaySummary(len(rows), len(stays), mean)


def max_stays(session: Session) -> dict[str, int]:
    """Each group's max_stay_minutes, for the groups that have one."""
    return dict(session.execute(select(KnownGroup.name, KnownGroup.max_stay_minutes)
                                .where(KnownGroup.max_stay_minutes.is_not(None))).all())


def is_overstay(visit: Visit, now: datetime, limits: dict[str, int]) -> bool:
    """Alerted already, or stayed (or has stayed so far) longer than its group allows."""
    if visit.overstay_alerted_at is not None:
        return True
    limit = limits.get(visit.group_name or "")
    stay = stay_seconds(visit, now)
    return limit is not None and stay is not None and stay > limit * 60


def visit_json(visit: Visit, now: datetime, names: dict[str, str | None], limits: dict[str, int]
               ) -> dict[str, Any]:
    """A visit as `GET /api/visits` lists it."""
    return {
        "id": visit.id,
        "plate": visit.plate_normalized,
        "province_code": visit.province_code,
        "group": visit.group_name,
        "max_stay_minutes": limits.get(visit.group_name or ""),
        "entered_at": _iso(visit.entered_at),
        "entry_camera": visit.entry_camera_id,
        "entry_camera_name": names.get(visit.entry_camera_id) if visit.entry_camera_id else None,
        "exited_at": _iso(visit.exited_at),
        "exit_camera": visit.exit_camera_id,
        "exit_camera_name": names.get(visit.exit_camera_id) if visit.exit_camera_id else None,
        "open": visit.exited_at is None,
        "stay_seconds": stay_seconds(visit, now),
        "entry_record_id": visit.entry_record_id,
        "exit_record_id": visit.exit_record_id,
        "overstay": is_overstay(visit, now, limits),
        "overstay_alerted_at": _iso(visit.overstay_alerted_at),
    }


def duration_text(seconds: int | None) -> str:
    """`3 h 12 min`, `2 h`, `12 min`, `45 s`, `2 d 3 h`; an em dash for none."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
