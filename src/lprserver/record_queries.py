"""Finding records: the filters of the records page and the API, as one query builder.

Services take arguments and return SQLAlchemy statements or rows; callers own
the session and the transaction (STYLE.md).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from .models import Record
from .plates import normalize_plate
from .records import COUNT_CAP, Total, capped_count

PLATE_MATCHES = ("exact", "prefix", "contains")


@dataclass(frozen=True)
class RecordFilter:
    """What a user asked for; every field is optional."""

    plate: str | None = None
    plate_match: str = "contains"
    camera_id: str | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None
    min_confidence: float | None = None
    blacklisted: bool | None = None
    since_id: int | None = None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered_records(criteria: RecordFilter) -> Select:
    """Return a SELECT of the records that match, unordered."""
    query = select(Record)
    if criteria.plate:
        plate = normalize_plate(criteria.plate)
        if criteria.plate_match == "exact":
            query = query.where(Record.plate_normalized == plate)
        elif criteria.plate_match == "prefix":
            query = query.where(Record.plate_normalized.like(_like_escape(plate) + "%", escape="\\"))
        else:
            query = query.where(Record.plate_normalized.like(f"%{_like_escape(plate)}%", escape="\\"))
    if criteria.camera_id:
        query = query.where(Record.camera_id == criteria.camera_id)
    if criteria.time_from is not None:
        query = query.where(Record.captured_at >= criteria.time_from)
    if criteria.time_to is not None:
        query = query.where(Record.captured_at < criteria.time_to)
    if criteria.min_confidence is not None:
        query = query.where(Record.confidence >= criteria.min_confidence)
    if criteria.blacklisted is not None:
        query = query.where(Record.blacklisted.is_(criteria.blacklisted))
    if criteria.since_id is not None:
        query = query.where(Record.id > criteria.since_id)
    return query


def ordered(query: Select, criteria: RecordFilter) -> Select:
    """Newest first; oldest first when polling with since_id, so a poller never skips a record."""
    return query.order_by(Record.id.asc() if criteria.since_id is not None else Record.id.desc())


def count_records(session: Session, criteria: RecordFilter, cap: int | None = COUNT_CAP) -> Total:
    """Return how many records match: exact up to `cap`, then "at least" (or the table's estimate)."""
    ids = filtered_records(criteria).with_only_columns(Record.id)
    return capped_count(session, ids, cap, unfiltered=criteria == RecordFilter())


def find_records(session: Session, criteria: RecordFilter, page: int = 1, per_page: int = 50,
                 before_id: int | None = None) -> list[Record]:
    """Return one page of matching records: by OFFSET for `page`, or the ones older than `before_id`.

    Keyset paging (`before_id`) costs the same at any depth; OFFSET reads every row it skips.
    """
    query = ordered(filtered_records(criteria), criteria).limit(per_page)
    if before_id is not None:
        return list(session.scalars(query.where(Record.id < before_id)))
    return list(session.scalars(query.offset((page - 1) * per_page)))


def iter_records(session: Session, criteria: RecordFilter, batch: int = 500) -> Iterator[Record]:
    """Yield every matching record, newest first, a batch at a time (for exports)."""
    last_id = None
    while True:
        query = filtered_records(criteria).order_by(Record.id.desc()).limit(batch)
        if last_id is not None:
            query = query.where(Record.id < last_id)
        rows = list(session.scalars(query))
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id
        session.expunge_all()
