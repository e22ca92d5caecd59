"""What /analytics and GET /api/analytics show (SPEC §12 "Dashboard"), read from the pre-aggregated
counts (analytics_counts.py), never from lpr_records' rows: each figure reads at most a few thousand
aggregate rows, so it answers in milliseconds at 5 M records (BENCHMARKS.md "Analytics").

Days are calendar days in TIMEZONE; a period of `days` days ends now and starts at local midnight
`days - 1` days ago (today counts as a day); the previous period is the `days` days before it. The
hourly counts are UTC hours, shown in TIMEZONE: exact for zones whose offset is whole hours (Asia/Bangkok
is UTC+7). Read-only services.

Sites (SPEC §15): for a user limited to sites (`scope`), the per-camera counts (analytics_hours,
analytics_camera_days) are simply filtered by camera; the counts kept for all cameras together (unique
plates, plates per day, provinces) cannot be split by camera, so those figures are counted from
lpr_records' rows of the scope's cameras instead: slower (it reads the period's rows of those cameras:
README "Sites"), exact, and only over the reads retention has kept (the counts keep reads whose rows are
gone).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, func, select, union_all
from sqlalchemy.orm import Session

from .analytics_counts import UNKNOWN_PROVINCE, _local_day_expression, hour_of, hour_start
from .models import (
    AnalyticsCameraDay,
    AnalyticsDay,
    AnalyticsDayGap,
    AnalyticsHour,
    AnalyticsHourTotal,
    AnalyticsProvinceDay,
    Camera,
    Record,
)
from .plates import province_by_code
from .sites import EVERYWHERE, Scope

HEATMAP_DAYS = 28  # four weeks
UNIQUE_DAYS = 30
DEFAULT_DAYS = 7
MAX_DAYS = 90
TOP_PROVINCES = 10


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC; `first_day` … `last_day` are its days in TIMEZONE."""

    start: datetime
    end: datetime
    first_day: date
    last_day: date

    @property
    def hours(self) -> tuple[int, int]:
        """The UTC hours it covers, [first, last + 1)."""
        return hour_of(self.start), hour_of(self.end - timedelta(microseconds=1)) + 1

    def as_json(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(),
                "first_day": self.first_day.isoformat(), "last_day": self.last_day.isoformat()}


def midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)


def periods(now: datetime, days: int, tz: ZoneInfo) -> tuple[Period, Period]:
    """This period (the last `days` days, today included, up to now) and the one before it."""
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    before = first - timedelta(days=days)
    return (Period(midnight(first, tz), now, first, today),
            Period(midnight(before, tz), midnight(first, tz), before, first - timedelta(days=1)))


def totals(session: Session, period: Period, tz: ZoneInfo, scope: Scope = EVERYWHERE) -> dict[str, int]:
    """Reads, unique plates and blacklist hits of a period."""
    reads, hits = session.execute(
        select(func.coalesce(func.sum(AnalyticsCameraDay.reads), 0),
               func.coalesce(func.sum(AnalyticsCameraDay.hits), 0))
        .where(AnalyticsCameraDay.day >= period.first_day, AnalyticsCameraDay.day <= period.last_day,
               scope.cameras_clause(AnalyticsCameraDay.camera_id))).one()
    return {"reads": int(reads),
            "unique_plates": unique_plates(session, period.first_day, period.last_day, scope=scope, tz=tz),
            "hits": int(hits)}


def _days_reads(first: date, last: date, tz: ZoneInfo, scope: Scope):
    """The WHERE clause of lpr_records' reads from day `first` to day `last` at the scope's cameras."""
    return (Record.received_at >= midnight(first, tz),
            Record.received_at < midnight(last + timedelta(days=1), tz),
            scope.cameras_clause(Record.camera_id))


def unique_plates(session: Session, first: date, last: date, *, scope: Scope = EVERYWHERE,
                  tz: ZoneInfo | None = None) -> int:
    """Plates read at least once from `first` to `last` (days, both included): those read on one of these
    days whose previous day was before `first` (analytics_day_gaps), each counted on its first day. For a
    limited scope, counted in lpr_records (`tz` is then needed)."""
    if scope.limited:
        return session.scalar(select(func.count(Record.plate_normalized.distinct()))
                              .where(*_days_reads(first, last, tz, scope))) or 0
    rows = session.execute(select(AnalyticsDayGap.day, AnalyticsDayGap.gap, AnalyticsDayGap.plates)
                           .where(AnalyticsDayGap.day >= first, AnalyticsDayGap.day <= last)).all()
    return sum(plates for day, gap, plates in rows if gap == 0 or gap > (day - first).days)


def heatmap(session: Session, now: datetime, tz: ZoneInfo, scope: Scope = EVERYWHERE) -> dict[str, Any]:
    """Reads by weekday (Monday first) and hour of the day in TIMEZONE, over the last four weeks."""
    today = now.astimezone(tz).date()
    first_day = today - timedelta(days=HEATMAP_DAYS - 1)
    first = hour_of(midnight(first_day, tz))
    if scope.limited:  # the cameras' own hours, summed
        rows = session.execute(
            select(AnalyticsHour.hour, func.sum(AnalyticsHour.reads))
            .where(AnalyticsHour.hour >= first, scope.cameras_clause(AnalyticsHour.camera_id))
            .group_by(AnalyticsHour.hour)).all()
    else:
        rows = session.execute(select(AnalyticsHourTotal.hour, AnalyticsHourTotal.reads)
                               .where(AnalyticsHourTotal.hour >= first)).all()
    cells = [[0] * 24 for _ in range(7)]
    for hour, reads in rows:
        local = hour_start(hour).astimezone(tz)
        cells[local.weekday()][local.hour] += int(reads)
    return {"first_day": first_day.isoformat(), "last_day": today.isoformat(), "cells": cells,
            "max": max(max(row) for row in cells)}


def unique_per_day(session: Session, now: datetime, tz: ZoneInfo,
                   scope: Scope = EVERYWHERE) -> list[dict[str, Any]]:
    """Unique plates of each of the last 30 days, oldest first (0 for a day without reads)."""
    today = now.astimezone(tz).date()
    days = [today - timedelta(days=n) for n in range(UNIQUE_DAYS - 1, -1, -1)]
    if scope.limited:
        day = _local_day_expression(session, str(tz)).label("day")
        counts = {_as_date(d): n for d, n in session.execute(
            select(day, func.count(Record.plate_normalized.distinct()))
            .where(*_days_reads(days[0], today, tz, scope)).group_by(day)).all()}
    else:
        counts = dict(session.execute(select(AnalyticsDay.day, AnalyticsDay.unique_plates)
                                      .where(AnalyticsDay.day >= days[0])).all())
    return [{"day": day.isoformat(), "unique_plates": counts.get(day, 0)} for day in days]


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def top_provinces(session: Session, period: Period, limit: int = TOP_PROVINCES, *, scope: Scope = EVERYWHERE,
                  tz: ZoneInfo | None = None) -> list[dict[str, Any]]:
    """The provinces whose plates were read most in a period (unknown provinces as code null)."""
    if scope.limited:
        code = func.coalesce(Record.province_code, UNKNOWN_PROVINCE)
        reads = func.count()
        rows = session.execute(
            select(code, reads).where(*_days_reads(period.first_day, period.last_day, tz, scope))
            .group_by(code).order_by(reads.desc(), code).limit(limit)).all()
    else:
        reads = func.sum(AnalyticsProvinceDay.reads)
        rows = session.execute(
            select(AnalyticsProvinceDay.province_code, reads)
            .where(AnalyticsProvinceDay.day >= period.first_day, AnalyticsProvinceDay.day <= period.last_day)
            .group_by(AnalyticsProvinceDay.province_code).having(reads > 0)
            .order_by(reads.desc(), AnalyticsProvinceDay.province_code).limit(limit)).all()
    out = []
    for code, n in rows:
        province = province_by_code(code) if code != UNKNOWN_PROVINCE else None
        out.append({"province_code": province.code if province else None,
                    "name_th": province.name_th if province else None,
                    "name_en": province.name_en if province else None, "reads": int(n)})
    return out


def per_camera(session: Session, period: Period, scope: Scope = EVERYWHERE) -> list[dict[str, Any]]:
    """Each camera's reads, reads per hour, mean confidence, corrections, last read and longest silence
    in a period; busiest first."""
    days = AnalyticsCameraDay
    in_period = (days.day >= period.first_day, days.day <= period.last_day,
                 scope.cameras_clause(days.camera_id))
    sums = {row.camera_id: row for row in session.execute(
        select(days.camera_id, func.sum(days.reads).label("reads"),
               func.sum(days.confidence_sum).label("confidence_sum"),
               func.sum(days.confidence_reads).label("confidence_reads"))
        .where(*in_period).group_by(days.camera_id))}
    last_read = (select(days.last_at).where(days.camera_id == Camera.id)
                 .order_by(days.day.desc()).limit(1).scalar_subquery())
    cameras = session.execute(select(Camera.id, Camera.name, last_read.label("last_read_at"))
                              .where(scope.sites_clause(Camera.site))).all()
    # Corrections are few and kept on their records: counted through the partial index on corrected_at.
    corrections = dict(session.execute(
        select(Record.camera_id, func.count()).where(Record.corrected_at >= period.start)
        .group_by(Record.camera_id)).all())
    silences = longest_silences(session, period, scope)
    hours = max((period.end - period.start).total_seconds() / 3600, 1 / 60)
    out = []
    for camera_id, name, last_read_at in cameras:
        row = sums.get(camera_id)
        reads = int(row.reads) if row else 0
        silence = silences.get(camera_id)
        if last_read_at is not None:  # a silence going on now counts, from the last read until now
            since = max(last_read_at, period.start)
            now_silent = (period.end - since).total_seconds()
            if silence is None or now_silent > silence[0]:
                silence = (now_silent, since, None)
        out.append({
            "camera_id": camera_id, "name": name, "reads": reads, "reads_per_hour": round(reads / hours, 2),
            "mean_confidence": (round(row.confidence_sum / row.confidence_reads, 2)
                                if row and row.confidence_reads else None),
            "corrections": corrections.get(camera_id, 0),
            "last_read_at": last_read_at.isoformat() if last_read_at else None,
            "longest_silence_seconds": round(silence[0]) if silence else None,
            "longest_silence_from": _iso(silence[1]) if silence else None,
            "longest_silence_to": _iso(silence[2]) if silence else None,
        })
    out.sort(key=lambda c: (-c["reads"], c["camera_id"]))
    return out


def _epoch(session: Session, column):
    """A timestamp column as seconds since the epoch (a float is much cheaper to fetch than a time)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_part("epoch", column, type_=Float)
    return (func.julianday(column) - 2440587.5) * 86400.0


def longest_silences(session: Session, period: Period, scope: Scope = EVERYWHERE) -> dict[str, tuple]:
    """{camera_id: (seconds, from, to)}: each camera's longest gap between two of its reads in a period:
    inside a day (the day's longest, ending at max_gap_end_at) or from one day's last read to the next
    day's first; the earliest of equal gaps. Found in the database from a row per camera and day, so only
    a row per camera comes back (fetching every camera's days cost more than finding the gaps)."""
    days = AnalyticsCameraDay
    first, last, end = (_epoch(session, days.first_at), _epoch(session, days.last_at),
                        _epoch(session, days.max_gap_end_at))
    before = func.lag(last).over(partition_by=days.camera_id, order_by=days.day)
    lagged = select(days.camera_id, first.label("first"), days.max_gap_seconds.label("gap"), end.label("end"),
                    before.label("before")).where(
        days.day >= period.first_day, days.day <= period.last_day, days.reads > 0,
        scope.cameras_clause(days.camera_id)).subquery()
    between = select(lagged.c.camera_id, (lagged.c.first - lagged.c.before).label("seconds"),
                     lagged.c.before.label("start"), lagged.c.first.label("end")).where(
        lagged.c.before.is_not(None))
    inside = select(lagged.c.camera_id, lagged.c.gap, lagged.c.end - lagged.c.gap, lagged.c.end).where(
        lagged.c.end.is_not(None), lagged.c.gap > 0)
    gaps = union_all(between, inside).subquery()
    ranked = select(gaps, func.row_number().over(partition_by=gaps.c.camera_id,
                                                 order_by=(gaps.c.seconds.desc(), gaps.c.start)).label("rank")
                    ).subquery()
    found = session.execute(select(ranked.c.camera_id, ranked.c.seconds, ranked.c.start, ranked.c.end)
                            .where(ranked.c.rank == 1)).all()
    return {camera_id: (float(seconds), datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
            for camera_id, seconds, start, end in found if seconds > 0}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def analytics(session: Session, now: datetime, timezone: str, days: int = DEFAULT_DAYS, *,
              scope: Scope = EVERYWHERE) -> dict[str, Any]:
    """Everything /analytics and GET /api/analytics show (of the scope's cameras)."""
    tz = ZoneInfo(timezone)
    current, previous = periods(now, days, tz)
    return {
        "timezone": timezone,
        "generated_at": now.isoformat(),
        "days": days,
        "period": current.as_json(),
        "previous_period": previous.as_json(),
        "comparison": {"current": totals(session, current, tz, scope),
                       "previous": totals(session, previous, tz, scope)},
        "heatmap": heatmap(session, now, tz, scope),
        "unique_plates_per_day": unique_per_day(session, now, tz, scope),
        "top_provinces": top_provinces(session, current, scope=scope, tz=tz),
        "cameras": per_camera(session, current, scope),
    }
