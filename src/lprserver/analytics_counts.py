"""The pre-aggregated counts the analytics read (SPEC §12 "Dashboard"), kept as reads are stored.

The ingest pipeline hands `count_reads` each batch's stored rows, in the batch's transaction, so a
read is counted exactly when it is stored: a repeated read (camera_id, event_id) is answered from the
first and never reaches it, and a batch that rolls back takes its counts with it. A batch costs one
statement per table (five at most), whatever its size: the rows are summed per key here and upserted
(`INSERT … ON CONFLICT DO UPDATE`, SQLite ≥ 3.24 and PostgreSQL alike), keys in a fixed order so two
store workers never wait on each other in a circle.

- analytics_hours: per camera and UTC hour (hours since the epoch): reads, blacklist hits, the sum and
  number of confidences, the first and last read and the longest gap between two reads of the hour.
  A gap that spans hours is found when the analytics read consecutive hours.
- analytics_plate_days / analytics_days: each plate read on a day (in TIMEZONE) once; a day's unique
  plates counted as its plates are first inserted.
- analytics_province_days: reads per province (its ISO code, '' when unknown) and day.

`rebuild` recomputes everything from lpr_records (`flask lpr rebuild-analytics`); `follow_correction`
moves a corrected read to its new plate, province and hit state. Retention deletes records but not
these rows: the analytics keep counting reads whose rows are gone.
"""

import functools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Float, Integer, case, cast, delete, func, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import AnalyticsDay, AnalyticsHour, AnalyticsPlateDay, AnalyticsProvinceDay, Record, UTCDateTime

UNKNOWN_PROVINCE = ""  # the province_code key of reads whose province is not known
AGGREGATE_TABLES = (AnalyticsHour, AnalyticsDay, AnalyticsPlateDay, AnalyticsProvinceDay)


def hour_of(moment: datetime) -> int:
    """The UTC hour a time falls in, as whole hours since 1970-01-01T00:00Z."""
    return int(moment.timestamp() // 3600)


def hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def seconds_between(session: Session, later, earlier):
    """`later - earlier` in seconds, for two timestamp columns or expressions."""
    if _dialect(session) == "postgresql":
        return func.date_part("epoch", later - earlier, type_=Float)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def count_reads(session: Session, rows: Iterable[Mapping[str, Any]], timezone: str) -> None:
    """Add stored reads to the counts. `rows` are lpr_records rows as inserted (received_at, camera_id,
    plate_normalized, province_code, confidence, blacklisted). The caller commits."""
    tz = ZoneInfo(timezone)
    hours: dict[tuple[int, str], list] = {}
    times: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    plate_days: set[tuple[date, str]] = set()
    provinces: Counter[tuple[date, str]] = Counter()
    for row in rows:
        at: datetime = row["received_at"]
        key = (hour_of(at), row["camera_id"])
        counts = hours.setdefault(key, [0, 0, 0.0, 0])
        counts[0] += 1
        counts[1] += bool(row["blacklisted"])
        if row["confidence"] is not None:
            counts[2] += row["confidence"]
            counts[3] += 1
        times[key].append(at)
        day = local_day(at, tz)
        plate_days.add((day, row["plate_normalized"]))
        provinces[(day, row["province_code"] or UNKNOWN_PROVINCE)] += 1
    if not hours:
        return
    values = []
    for (hour, camera_id), (reads, hits, confidence_sum, confidence_reads) in sorted(hours.items()):
        moments = sorted(times[(hour, camera_id)])
        gap = max(((b - a).total_seconds() for a, b in zip(moments, moments[1:], strict=False)), default=0.0)
        values.append({"hour": hour, "camera_id": camera_id, "reads": reads, "hits": hits,
                       "confidence_sum": confidence_sum, "confidence_reads": confidence_reads,
                       "first_at": moments[0], "last_at": moments[-1], "max_gap_seconds": gap})
    _add_hours(session, values)
    _add_plate_days(session, sorted(plate_days))
    _add_provinces(session, [{"day": day, "province_code": code, "reads": n}
                             for (day, code), n in sorted(provinces.items())])


@functools.cache
def _statements(dialect: str) -> dict[str, Any]:
    """The batch's upserts, built once per dialect (Core tables: no ORM bulk-insert path on the hot path)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    pg = dialect == "postgresql"
    most, fewest = (func.greatest, func.least) if pg else (func.max, func.min)
    hours = insert(AnalyticsHour.__table__)
    new, table = hours.excluded, AnalyticsHour.__table__.c
    gap = (func.date_part("epoch", new.first_at - table.last_at, type_=Float) if pg
           else (func.julianday(new.first_at) - func.julianday(table.last_at)) * 86400.0)
    days = insert(AnalyticsDay.__table__)
    provinces = insert(AnalyticsProvinceDay.__table__)
    return {
        "hours": hours.on_conflict_do_update(index_elements=["hour", "camera_id"], set_={
            "reads": table.reads + new.reads,
            "hits": table.hits + new.hits,
            "confidence_sum": table.confidence_sum + new.confidence_sum,
            "confidence_reads": table.confidence_reads + new.confidence_reads,
            "first_at": fewest(table.first_at, new.first_at),
            "last_at": most(table.last_at, new.last_at),
            # The gap from the hour's last read so far to this batch's first (none when the batch is
            # older: two store workers may commit out of order; rebuild-analytics finds the exact gap).
            "max_gap_seconds": most(table.max_gap_seconds, new.max_gap_seconds, gap),
        }),
        "plate_days": (insert(AnalyticsPlateDay.__table__)
                       .on_conflict_do_nothing(index_elements=["day", "plate_normalized"])
                       .returning(AnalyticsPlateDay.__table__.c.day)),
        "days": days.on_conflict_do_update(index_elements=["day"], set_={
            "unique_plates": AnalyticsDay.__table__.c.unique_plates + days.excluded.unique_plates}),
        "provinces": provinces.on_conflict_do_update(index_elements=["day", "province_code"], set_={
            "reads": AnalyticsProvinceDay.__table__.c.reads + provinces.excluded.reads}),
    }


def _add_hours(session: Session, values: list[dict[str, Any]]) -> None:
    session.execute(_statements(_dialect(session))["hours"], values)


def _add_plate_days(session: Session, pairs: list[tuple[date, str]]) -> None:
    """Insert the (day, plate) pairs not there yet; each new one is a unique plate more on its day."""
    rows = [{"day": day, "plate_normalized": plate} for day, plate in pairs]
    new = Counter(session.execute(_statements(_dialect(session))["plate_days"], rows).scalars().all())
    if new:
        _add_unique_plates(session, sorted(new.items()))


def _add_unique_plates(session: Session, days: list[tuple[date, int]]) -> None:
    session.execute(_statements(_dialect(session))["days"], [{"day": d, "unique_plates": n} for d, n in days])


def _add_provinces(session: Session, values: list[dict[str, Any]]) -> None:
    session.execute(_statements(_dialect(session))["provinces"], values)


# Corrections (SPEC §10) -------------------------------------------------------------------------------

def follow_correction(session: Session, before: Mapping[str, Any], record: Record, timezone: str) -> None:
    """Move a corrected read's counts from its plate, province and hit state `before` (corrections'
    snapshot: plate_normalized, province_code, blacklisted) to the record's own. Call it in the
    correction's transaction, after correct_record; the caller commits."""
    tz = ZoneInfo(timezone)
    day, at = local_day(record.received_at, tz), record.received_at
    old_plate, new_plate = before["plate_normalized"], record.plate_normalized
    if old_plate != new_plate:
        _add_plate_days(session, [(day, new_plate)])
        if not _plate_read_on(session, old_plate, day, tz, record.id):
            gone = session.execute(delete(AnalyticsPlateDay).where(
                AnalyticsPlateDay.day == day, AnalyticsPlateDay.plate_normalized == old_plate))
            if gone.rowcount:
                _add_unique_plates(session, [(day, -1)])
    old_code = before["province_code"] or UNKNOWN_PROVINCE
    new_code = record.province_code or UNKNOWN_PROVINCE
    if old_code != new_code:
        _add_provinces(session, sorted([{"day": day, "province_code": old_code, "reads": -1},
                                        {"day": day, "province_code": new_code, "reads": 1}],
                                       key=lambda v: v["province_code"]))
    if bool(before["blacklisted"]) != bool(record.blacklisted):
        session.execute(AnalyticsHour.__table__.update()
                        .where(AnalyticsHour.hour == hour_of(at), AnalyticsHour.camera_id == record.camera_id)
                        .values(hits=AnalyticsHour.hits + (1 if record.blacklisted else -1)))


def _plate_read_on(session: Session, plate: str, day: date, tz: ZoneInfo, other_than: int) -> bool:
    """Whether another record of `plate` was received on `day` (the plate index answers it)."""
    start = datetime.combine(day, datetime.min.time(), tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
    return session.scalar(select(Record.id).where(
        Record.plate_normalized == plate, Record.received_at >= start, Record.received_at < end,
        Record.id != other_than).limit(1)) is not None


# The backfill ---------------------------------------------------------------------------------------

def rebuild(session: Session, timezone: str) -> dict[str, int]:
    """Recompute every count from lpr_records, in one transaction; return the rows made per table.

    On PostgreSQL the aggregate tables are locked first: a batch stored meanwhile waits until the
    rebuild commits and then adds itself to the new counts, so none is lost or counted twice (storing
    waits for the rebuild: about a minute at 5 M rows, BENCHMARKS.md "Analytics"). SQLite's one writer
    gives the same. Counts the plates, provinces and hits as the records are now (corrections applied).
    The caller commits."""
    dialect = _dialect(session)
    if dialect == "postgresql":
        session.execute(text("LOCK TABLE analytics_hours, analytics_days, analytics_plate_days, "
                             "analytics_province_days IN EXCLUSIVE MODE"))
    for model in AGGREGATE_TABLES:
        session.execute(delete(model))
    day = _local_day_expression(session, timezone)
    session.execute(AnalyticsHour.__table__.insert().from_select(
        ["hour", "camera_id", "reads", "hits", "confidence_sum", "confidence_reads", "first_at", "last_at",
         "max_gap_seconds"], _hours_select(session)))
    session.execute(AnalyticsPlateDay.__table__.insert().from_select(
        ["day", "plate_normalized"], select(day, Record.plate_normalized).distinct()))
    session.execute(AnalyticsDay.__table__.insert().from_select(
        ["day", "unique_plates"],
        select(AnalyticsPlateDay.day, func.count()).group_by(AnalyticsPlateDay.day)))
    province = func.coalesce(Record.province_code, literal(UNKNOWN_PROVINCE))
    session.execute(AnalyticsProvinceDay.__table__.insert().from_select(
        ["day", "province_code", "reads"], select(day, province, func.count()).group_by(day, province)))
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in AGGREGATE_TABLES}


def _hour_expression(session: Session, column):
    if _dialect(session) == "postgresql":
        return cast(func.floor(func.date_part("epoch", column, type_=Float) / 3600), Integer)
    return cast(func.strftime("%s", column), Integer) // 3600


def _hours_select(session: Session):
    """Per camera and hour, from each read and the one before it at its camera in the same hour."""
    hour = _hour_expression(session, Record.received_at).label("hour")
    reads = select(
        Record.camera_id, hour, Record.blacklisted, Record.confidence, Record.received_at,
        func.lag(Record.received_at, type_=UTCDateTime()).over(partition_by=(Record.camera_id, hour),
                                          order_by=(Record.received_at, Record.id)).label("previous"),
    ).subquery()
    gap = func.coalesce(seconds_between(session, reads.c.received_at, reads.c.previous), 0.0)
    return select(
        reads.c.hour, reads.c.camera_id, func.count(),
        func.coalesce(func.sum(case((reads.c.blacklisted, 1), else_=0)), 0),
        func.coalesce(func.sum(reads.c.confidence), 0.0), func.count(reads.c.confidence),
        func.min(reads.c.received_at), func.max(reads.c.received_at), func.max(gap),
    ).group_by(reads.c.hour, reads.c.camera_id)


def _local_day_expression(session: Session, timezone: str):
    """received_at's calendar day in `timezone`, as the Date the pipeline writes."""
    if _dialect(session) == "postgresql":
        return cast(func.timezone(timezone, Record.received_at), Date)
    # SQLite knows no time zones: a function of this connection turns the stored UTC text into the day.
    tz = ZoneInfo(timezone)

    def day_of(value: str | None) -> str | None:
        if value is None:
            return None
        return datetime.fromisoformat(value).replace(tzinfo=UTC).astimezone(tz).date().isoformat()

    session.connection().connection.driver_connection.create_function(
        "lpr_local_day", 1, day_of, deterministic=True)
    return func.lpr_local_day(Record.received_at, type_=Date)
