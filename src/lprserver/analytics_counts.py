"""The pre-aggregated counts the analytics read (SPEC §12 "Dashboard"), kept as reads are stored.

The ingest pipeline hands `count_reads` each batch's stored rows, in the batch's transaction, so a
read is counted exactly when it is stored: a repeated read (camera_id, event_id) is answered from the
first and never reaches it, and a batch that rolls back takes its counts with it. A batch costs one
statement per table (eight at most, the last three only for plates new on their day), whatever its
size: the rows are summed per key here and upserted (`INSERT … ON CONFLICT DO UPDATE`, SQLite ≥ 3.24
and PostgreSQL alike), keys in a fixed order so two store workers never wait on each other in a circle.

- analytics_hours: per camera and UTC hour (hours since the epoch): reads, blacklist hits, the sum and
  number of confidences, the first and last read and the longest gap between two reads of the hour.
- analytics_camera_days: the same per camera and day in TIMEZONE, with the read that ends the day's
  longest gap (the cameras' figures and their longest silence read these: days x cameras rows).
- analytics_hour_totals: reads of all cameras per UTC hour (the heat map).
- analytics_plate_days / analytics_days: each plate read on a day once; a day's unique plates.
- analytics_day_gaps: the plates new on a day by the days since their previous day (0: first read).
  Unique plates from day a to b = those of days a..b whose previous day is before a (gap 0 or
  gap > day - a): exact, from at most (b - a + 1) x (distinct gaps) rows.
- analytics_province_days: reads per province (its ISO code, '' when unknown) and day.

`rebuild` recomputes everything from lpr_records (`flask lpr rebuild-analytics`); `follow_correction`
moves a corrected read to its new plate, province and hit state. Retention deletes records but not
these rows: the analytics keep counting reads whose rows are gone. Reads stored out of order (two
store workers' batches at midnight, a rebuild's) may leave a gap a little off until the next rebuild.
"""

import functools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Float, Integer, and_, bindparam, case, cast, delete, func, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import (
    AnalyticsCameraDay,
    AnalyticsDay,
    AnalyticsDayGap,
    AnalyticsHour,
    AnalyticsHourTotal,
    AnalyticsPlateDay,
    AnalyticsProvinceDay,
    Record,
    UTCDateTime,
)

UNKNOWN_PROVINCE = ""  # the province_code key of reads whose province is not known
AGGREGATE_TABLES = (AnalyticsHour, AnalyticsCameraDay, AnalyticsHourTotal, AnalyticsDay, AnalyticsPlateDay,
                    AnalyticsDayGap, AnalyticsProvinceDay)


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


def _spans(groups: dict[tuple, list]) -> list[dict[str, Any]]:
    """Per key: reads, hits, confidences, first and last read, the longest gap between two of them and
    the read that ends it. `groups` maps a key to its rows."""
    out = []
    for key, rows in sorted(groups.items()):
        moments = sorted(row["received_at"] for row in rows)
        gap, end = 0.0, None
        for before, after in zip(moments, moments[1:], strict=False):
            if (after - before).total_seconds() > gap:
                gap, end = (after - before).total_seconds(), after
        confidences = [row["confidence"] for row in rows if row["confidence"] is not None]
        out.append({"key": key, "reads": len(rows), "hits": sum(bool(row["blacklisted"]) for row in rows),
                    "confidence_sum": float(sum(confidences)), "confidence_reads": len(confidences),
                    "first_at": moments[0], "last_at": moments[-1], "max_gap_seconds": gap,
                    "max_gap_end_at": end})
    return out


def count_reads(session: Session, rows: Iterable[Mapping[str, Any]], timezone: str) -> None:
    """Add stored reads to the counts. `rows` are lpr_records rows as inserted (received_at, camera_id,
    plate_normalized, province_code, confidence, blacklisted). The caller commits."""
    tz = ZoneInfo(timezone)
    hours: dict[tuple, list] = defaultdict(list)
    camera_days: dict[tuple, list] = defaultdict(list)
    totals: Counter[int] = Counter()
    plate_days: set[tuple[date, str]] = set()
    provinces: Counter[tuple[date, str]] = Counter()
    for row in rows:
        at: datetime = row["received_at"]
        day = local_day(at, tz)
        hours[(hour_of(at), row["camera_id"])].append(row)
        camera_days[(day, row["camera_id"])].append(row)
        totals[hour_of(at)] += 1
        plate_days.add((day, row["plate_normalized"]))
        provinces[(day, row["province_code"] or UNKNOWN_PROVINCE)] += 1
    if not totals:
        return
    _upsert(session, "hours", [
        {**{k: v for k, v in span.items() if k not in ("key", "max_gap_end_at")},
         "hour": span["key"][0], "camera_id": span["key"][1]} for span in _spans(hours)])
    _upsert(session, "camera_days", [
        {**{k: v for k, v in span.items() if k != "key"}, "day": span["key"][0], "camera_id": span["key"][1]}
        for span in _spans(camera_days)])
    _upsert(session, "hour_totals", [{"hour": h, "reads": n} for h, n in sorted(totals.items())])
    _add_plate_days(session, sorted(plate_days))
    _upsert(session, "provinces", [{"day": day, "province_code": code, "reads": n}
                                   for (day, code), n in sorted(provinces.items())])


def _gap_expression(pg: bool, later, earlier):
    return (func.date_part("epoch", later - earlier, type_=Float) if pg
            else (func.julianday(later) - func.julianday(earlier)) * 86400.0)


@functools.cache
def _statements(dialect: str) -> dict[str, Any]:
    """The batch's upserts, built once per dialect (Core tables: no ORM bulk-insert path on the hot path)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    pg = dialect == "postgresql"
    most, fewest = (func.greatest, func.least) if pg else (func.max, func.min)

    def spans(model, keys):
        statement = insert(model.__table__)
        new, table = statement.excluded, model.__table__.c
        # The gap from the last read so far to this batch's first (none when the batch is older: two
        # store workers may commit out of order; rebuild-analytics then finds the exact gap).
        between = _gap_expression(pg, new.first_at, table.last_at)
        changes = {
            "reads": table.reads + new.reads,
            "hits": table.hits + new.hits,
            "confidence_sum": table.confidence_sum + new.confidence_sum,
            "confidence_reads": table.confidence_reads + new.confidence_reads,
            "first_at": fewest(table.first_at, new.first_at),
            "last_at": most(table.last_at, new.last_at),
            "max_gap_seconds": most(table.max_gap_seconds, new.max_gap_seconds, between),
        }
        if "max_gap_end_at" in table:
            changes["max_gap_end_at"] = case(
                (and_(between > table.max_gap_seconds, between >= new.max_gap_seconds), new.first_at),
                (new.max_gap_seconds > table.max_gap_seconds, new.max_gap_end_at),
                else_=table.max_gap_end_at)
        return statement.on_conflict_do_update(index_elements=keys, set_=changes).returning(table[keys[0]])

    def adding(model, keys, column):
        statement = insert(model.__table__)
        table = model.__table__.c
        return statement.on_conflict_do_update(index_elements=keys, set_={
            column: table[column] + statement.excluded[column]}).returning(table[keys[0]])

    plate_days = AnalyticsPlateDay.__table__
    return {
        "hours": spans(AnalyticsHour, ["hour", "camera_id"]),
        "camera_days": spans(AnalyticsCameraDay, ["day", "camera_id"]),
        "hour_totals": adding(AnalyticsHourTotal, ["hour"], "reads"),
        "plate_days": (insert(plate_days).on_conflict_do_nothing(index_elements=["day", "plate_normalized"])
                       .returning(plate_days.c.day, plate_days.c.plate_normalized)),
        "previous_days": (select(plate_days.c.plate_normalized, func.max(plate_days.c.day))
                          .where(plate_days.c.plate_normalized.in_(bindparam("plates", expanding=True)),
                                 plate_days.c.day < bindparam("day"))
                          .group_by(plate_days.c.plate_normalized)),
        "days": adding(AnalyticsDay, ["day"], "unique_plates"),
        "gaps": adding(AnalyticsDayGap, ["day", "gap"], "plates"),
        "provinces": adding(AnalyticsProvinceDay, ["day", "province_code"], "reads"),
    }


def _upsert(session: Session, name: str, rows: list[dict[str, Any]]):
    """Run one of the batch's upserts for all its rows. Each has RETURNING, so SQLAlchemy sends them as
    one INSERT … VALUES (…), (…) from one compiled statement ("insertmanyvalues"): without it psycopg2's
    executemany sent a statement per row (314 µs of CPU per read in batches of 64), and .values(rows)
    compiled the statement anew for each batch (372 µs)."""
    return session.connection().execute(_statements(_dialect(session))[name], rows)


def _add_plate_days(session: Session, pairs: list[tuple[date, str]]) -> None:
    """Insert the (day, plate) pairs not there yet. Each new one is a unique plate more on its day, and
    counted under the days since the plate's previous day (analytics_day_gaps)."""
    statements = _statements(_dialect(session))
    new = _upsert(session, "plate_days", [{"day": d, "plate_normalized": plate} for d, plate in pairs]).all()
    if not new:
        return
    by_day: dict[date, list[str]] = defaultdict(list)
    for day, plate in new:
        by_day[day].append(plate)
    gaps: Counter[tuple[date, int]] = Counter()
    for day, plates in sorted(by_day.items()):
        previous = dict(session.connection().execute(statements["previous_days"],
                                                     {"plates": plates, "day": day}).all())
        for plate in plates:
            gaps[(day, day_gap(day, previous.get(plate)))] += 1
    _upsert(session, "days", [{"day": d, "unique_plates": len(p)} for d, p in sorted(by_day.items())])
    _add_gaps(session, gaps)


def day_gap(day: date, previous: date | None) -> int:
    """Days since a plate's previous day, 0 when it was never read before."""
    return 0 if previous is None else (day - previous).days


def _add_gaps(session: Session, gaps: Mapping[tuple[date, int], int]) -> None:
    if gaps:
        _upsert(session, "gaps", [{"day": d, "gap": g, "plates": n} for (d, g), n in sorted(gaps.items())])


def _add_unique_plates(session: Session, days: list[tuple[date, int]]) -> None:
    _upsert(session, "days", [{"day": d, "unique_plates": n} for d, n in days])


def _add_provinces(session: Session, values: list[dict[str, Any]]) -> None:
    _upsert(session, "provinces", values)


# Corrections (SPEC §10) -------------------------------------------------------------------------------

def follow_correction(session: Session, before: Mapping[str, Any], record: Record, timezone: str) -> None:
    """Move a corrected read's counts from its plate, province and hit state `before` (corrections'
    snapshot: plate_normalized, province_code, blacklisted) to the record's own. Call it in the
    correction's transaction, after correct_record; the caller commits."""
    tz = ZoneInfo(timezone)
    day, at = local_day(record.received_at, tz), record.received_at
    old_plate, new_plate = before["plate_normalized"], record.plate_normalized
    if old_plate != new_plate:
        if session.get(AnalyticsPlateDay, (day, new_plate)) is None:
            _move_pair(session, day, new_plate, +1)
        if not _plate_read_on(session, old_plate, day, tz, record.id) and \
                session.get(AnalyticsPlateDay, (day, old_plate)) is not None:
            _move_pair(session, day, old_plate, -1)
    old_code = before["province_code"] or UNKNOWN_PROVINCE
    new_code = record.province_code or UNKNOWN_PROVINCE
    if old_code != new_code:
        _add_provinces(session, sorted([{"day": day, "province_code": old_code, "reads": -1},
                                        {"day": day, "province_code": new_code, "reads": 1}],
                                       key=lambda v: v["province_code"]))
    if bool(before["blacklisted"]) != bool(record.blacklisted):
        change = 1 if record.blacklisted else -1
        session.execute(AnalyticsHour.__table__.update()
                        .where(AnalyticsHour.hour == hour_of(at), AnalyticsHour.camera_id == record.camera_id)
                        .values(hits=AnalyticsHour.hits + change))
        camera_day = AnalyticsCameraDay
        session.execute(camera_day.__table__.update()
                        .where(camera_day.day == day, camera_day.camera_id == record.camera_id)
                        .values(hits=camera_day.hits + change))


def _move_pair(session: Session, day: date, plate: str, change: int) -> None:
    """Add (+1) or take away (-1) the pair (day, plate), keeping the day's unique plates and the gaps of
    this day and of the plate's next day right."""
    column = AnalyticsPlateDay.day
    mine = AnalyticsPlateDay.plate_normalized == plate
    previous = session.scalar(select(func.max(column)).where(mine, column < day))
    following = session.scalar(select(func.min(column)).where(mine, column > day))
    gaps: Counter[tuple[date, int]] = Counter({(day, day_gap(day, previous)): change})
    if following is not None:  # the next day's previous day was `previous` (+1) or becomes it (-1)
        gaps[(following, day_gap(following, previous))] -= change
        gaps[(following, day_gap(following, day))] += change
    if change > 0:
        session.add(AnalyticsPlateDay(day=day, plate_normalized=plate))
        session.flush()
    else:
        session.execute(delete(AnalyticsPlateDay).where(column == day, mine))
    _add_unique_plates(session, [(day, change)])
    _add_gaps(session, {key: n for key, n in gaps.items() if n})


def _plate_read_on(session: Session, plate: str, day: date, tz: ZoneInfo, other_than: int) -> bool:
    """Whether another record of `plate` was received on `day` (the plate index answers it)."""
    start = datetime.combine(day, datetime.min.time(), tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
    return session.scalar(select(Record.id).where(
        Record.plate_normalized == plate, Record.received_at >= start, Record.received_at < end,
        Record.id != other_than).limit(1)) is not None


# The backfill ---------------------------------------------------------------------------------------

SPAN_COLUMNS = ["camera_id", "reads", "hits", "confidence_sum", "confidence_reads", "first_at", "last_at",
                "max_gap_seconds"]


def rebuild(session: Session, timezone: str) -> dict[str, int]:
    """Recompute every count from lpr_records, in one transaction; return the rows made per table.

    On PostgreSQL the aggregate tables are locked first: a batch stored meanwhile waits until the
    rebuild commits and then adds itself to the new counts, so none is lost or counted twice (storing
    waits for the rebuild: BENCHMARKS.md "Analytics" has its time at 5 M rows). SQLite's one writer
    gives the same. Counts the plates, provinces and hits as the records are now (corrections applied).
    The caller commits."""
    if _dialect(session) == "postgresql":
        names = ", ".join(model.__tablename__ for model in AGGREGATE_TABLES)
        session.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
    for model in AGGREGATE_TABLES:
        session.execute(delete(model))
    day = _local_day_expression(session, timezone)
    hour = _hour_expression(session, Record.received_at)
    session.execute(AnalyticsHour.__table__.insert().from_select(
        ["hour", *SPAN_COLUMNS], _spans_select(session, hour, with_end=False)))
    session.execute(AnalyticsCameraDay.__table__.insert().from_select(
        ["day", *SPAN_COLUMNS, "max_gap_end_at"], _spans_select(session, day, with_end=True)))
    session.execute(AnalyticsHourTotal.__table__.insert().from_select(
        ["hour", "reads"],
        select(AnalyticsHour.hour, func.sum(AnalyticsHour.reads)).group_by(AnalyticsHour.hour)))
    session.execute(AnalyticsPlateDay.__table__.insert().from_select(
        ["day", "plate_normalized"], select(day, Record.plate_normalized).distinct()))
    session.execute(AnalyticsDay.__table__.insert().from_select(
        ["day", "unique_plates"],
        select(AnalyticsPlateDay.day, func.count()).group_by(AnalyticsPlateDay.day)))
    previous = func.lag(AnalyticsPlateDay.day).over(partition_by=AnalyticsPlateDay.plate_normalized,
                                                    order_by=AnalyticsPlateDay.day)
    gap = func.coalesce(_days_between(session, AnalyticsPlateDay.day, previous), 0)
    pairs = select(AnalyticsPlateDay.day, gap.label("gap")).subquery()
    session.execute(AnalyticsDayGap.__table__.insert().from_select(
        ["day", "gap", "plates"],
        select(pairs.c.day, pairs.c.gap, func.count()).group_by(pairs.c.day, pairs.c.gap)))
    province = func.coalesce(Record.province_code, literal(UNKNOWN_PROVINCE))
    session.execute(AnalyticsProvinceDay.__table__.insert().from_select(
        ["day", "province_code", "reads"], select(day, province, func.count()).group_by(day, province)))
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in AGGREGATE_TABLES}


def _hour_expression(session: Session, column):
    if _dialect(session) == "postgresql":
        return cast(func.floor(func.date_part("epoch", column, type_=Float) / 3600), Integer)
    return cast(func.strftime("%s", column), Integer) // 3600


def _days_between(session: Session, later, earlier):
    if _dialect(session) == "postgresql":
        return later - earlier
    return cast(func.julianday(later) - func.julianday(earlier), Integer)


def _spans_select(session: Session, key, with_end: bool):
    """Per `key` (an hour or a day) and camera: the reads' counts, and the longest gap between a read and
    the one before it at its camera with the same key (the earliest such gap's read after it)."""
    reads = select(
        key.label("key"), Record.camera_id, Record.blacklisted, Record.confidence, Record.received_at,
        func.lag(Record.received_at, type_=UTCDateTime()).over(
            partition_by=(Record.camera_id, key), order_by=(Record.received_at, Record.id)).label("previous"),
    ).subquery()
    gap = func.coalesce(seconds_between(session, reads.c.received_at, reads.c.previous), 0.0)
    ranked = select(reads, gap.label("gap"),
                    func.max(gap).over(partition_by=(reads.c.camera_id, reads.c.key)).label("top")).subquery()
    columns = [
        ranked.c.key, ranked.c.camera_id, func.count(),
        func.coalesce(func.sum(case((ranked.c.blacklisted, 1), else_=0)), 0),
        func.coalesce(func.sum(ranked.c.confidence), 0.0), func.count(ranked.c.confidence),
        func.min(ranked.c.received_at), func.max(ranked.c.received_at), func.max(ranked.c.gap),
    ]
    if with_end:
        # Within a millisecond of the longest: SQLite's julianday() arithmetic rounds equal gaps apart.
        columns.append(func.min(case((and_(ranked.c.gap >= ranked.c.top - 0.001, ranked.c.gap > 0),
                                      ranked.c.received_at))))
    return select(*columns).group_by(ranked.c.key, ranked.c.camera_id)


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
