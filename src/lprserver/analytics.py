"""What /analytics and GET /api/analytics show (SPEC §12 "Dashboard"), read from the pre-aggregated
counts (analytics_counts.py), never from lpr_records' rows: each figure reads at most a few thousand
aggregate rows, so it answers in milliseconds at 5 M records (BENCHMARKS.md "Analytics").

Days are calendar days in TIMEZONE; a period of `days` days ends now and starts at local midnight
`days - 1` days ago (today counts as a day); the previous period is the `days` days before it. The
hourly counts are UTC hours, shown in TIMEZONE: exact for zones whose offset is whole hours (Asia/Bangkok
is UTC+7). Read-only services.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .analytics_counts import UNKNOWN_PROVINCE, hour_of, hour_start, seconds_between
from .models import (
    AnalyticsDay,
    AnalyticsHour,
    AnalyticsPlateDay,
    AnalyticsProvinceDay,
    Camera,
    Record,
    UTCDateTime,
)
from .plates import province_by_code

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


def totals(session: Session, period: Period) -> dict[str, int]:
    """Reads, unique plates and blacklist hits of a period."""
    first, last = period.hours
    reads, hits = session.execute(
        select(func.coalesce(func.sum(AnalyticsHour.reads), 0),
               func.coalesce(func.sum(AnalyticsHour.hits), 0))
        .where(AnalyticsHour.hour >= first, AnalyticsHour.hour < last)).one()
    return {"reads": int(reads), "unique_plates": unique_plates(session, period.first_day, period.last_day),
            "hits": int(hits)}


def unique_plates(session: Session, first: date, last: date) -> int:
    """Plates read at least once from `first` to `last` (days, both included)."""
    if first == last:
        return session.scalar(select(AnalyticsDay.unique_plates).where(AnalyticsDay.day == first)) or 0
    plates = (select(AnalyticsPlateDay.plate_normalized)
              .where(AnalyticsPlateDay.day >= first, AnalyticsPlateDay.day <= last)
              .group_by(AnalyticsPlateDay.plate_normalized).subquery())
    return session.scalar(select(func.count()).select_from(plates)) or 0


def heatmap(session: Session, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """Reads by weekday (Monday first) and hour of the day in TIMEZONE, over the last four weeks."""
    today = now.astimezone(tz).date()
    first_day = today - timedelta(days=HEATMAP_DAYS - 1)
    first = hour_of(midnight(first_day, tz))
    rows = session.execute(select(AnalyticsHour.hour, func.sum(AnalyticsHour.reads))
                           .where(AnalyticsHour.hour >= first).group_by(AnalyticsHour.hour)).all()
    cells = [[0] * 24 for _ in range(7)]
    for hour, reads in rows:
        local = hour_start(hour).astimezone(tz)
        cells[local.weekday()][local.hour] += int(reads)
    return {"first_day": first_day.isoformat(), "last_day": today.isoformat(), "cells": cells,
            "max": max(max(row) for row in cells)}


def unique_per_day(session: Session, now: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Unique plates of each of the last 30 days, oldest first (0 for a day without reads)."""
    today = now.astimezone(tz).date()
    days = [today - timedelta(days=n) for n in range(UNIQUE_DAYS - 1, -1, -1)]
    counts = dict(session.execute(select(AnalyticsDay.day, AnalyticsDay.unique_plates)
                                  .where(AnalyticsDay.day >= days[0])).all())
    return [{"day": day.isoformat(), "unique_plates": counts.get(day, 0)} for day in days]


def top_provinces(session: Session, period: Period, limit: int = TOP_PROVINCES) -> list[dict[str, Any]]:
    """The provinces whose plates were read most in a period (unknown provinces as code null)."""
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


def per_camera(session: Session, period: Period) -> list[dict[str, Any]]:
    """Each camera's reads, reads per hour, mean confidence, corrections, last read and longest silence
    in a period; busiest first."""
    first, last = period.hours
    in_period = (AnalyticsHour.hour >= first, AnalyticsHour.hour < last)
    sums = {row.camera_id: row for row in session.execute(
        select(AnalyticsHour.camera_id, func.sum(AnalyticsHour.reads).label("reads"),
               func.sum(AnalyticsHour.confidence_sum).label("confidence_sum"),
               func.sum(AnalyticsHour.confidence_reads).label("confidence_reads"))
        .where(*in_period).group_by(AnalyticsHour.camera_id))}
    last_read = (select(AnalyticsHour.last_at).where(AnalyticsHour.camera_id == Camera.id)
                 .order_by(AnalyticsHour.hour.desc()).limit(1).scalar_subquery())
    cameras = session.execute(select(Camera.id, Camera.name, last_read.label("last_read_at"))).all()
    # Corrections are few and kept on their records: counted through the partial index on corrected_at.
    corrections = dict(session.execute(
        select(Record.camera_id, func.count()).where(Record.corrected_at >= period.start)
        .group_by(Record.camera_id)).all())
    silences = longest_silences(session, first, last)
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


def longest_silences(session: Session, first: int, last: int) -> dict[str, tuple]:
    """{camera_id: (seconds, from, to)}: each camera's longest gap between two reads in hours [first, last):
    from one hour's last read to the next read (its next hour's first), or inside an hour (its
    max_gap_seconds; from and to None then: the hour keeps only the gap's length)."""
    previous = func.lag(AnalyticsHour.last_at, type_=UTCDateTime()).over(partition_by=AnalyticsHour.camera_id,
                                                    order_by=AnalyticsHour.hour)
    hours = select(AnalyticsHour.camera_id, AnalyticsHour.first_at, AnalyticsHour.max_gap_seconds,
                   previous.label("previous")).where(
        AnalyticsHour.hour >= first, AnalyticsHour.hour < last, AnalyticsHour.reads > 0).subquery()
    between = func.coalesce(seconds_between(session, hours.c.first_at, hours.c.previous), -1.0)
    ranked = select(
        hours.c.camera_id, between.label("seconds"), hours.c.previous, hours.c.first_at,
        func.max(hours.c.max_gap_seconds).over(partition_by=hours.c.camera_id).label("inside"),
        func.row_number().over(partition_by=hours.c.camera_id, order_by=between.desc()).label("rank"),
    ).subquery()
    out: dict[str, tuple] = {}
    best = select(ranked.c.camera_id, ranked.c.seconds, ranked.c.previous, ranked.c.first_at,
                  ranked.c.inside).where(ranked.c.rank == 1)
    for camera_id, seconds, before, after, inside in session.execute(best):
        if seconds >= (inside or 0) and seconds > 0:
            out[camera_id] = (float(seconds), before, after)
        elif inside:
            out[camera_id] = (float(inside), None, None)
    return out


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def analytics(session: Session, now: datetime, timezone: str, days: int = DEFAULT_DAYS) -> dict[str, Any]:
    """Everything /analytics and GET /api/analytics show."""
    tz = ZoneInfo(timezone)
    current, previous = periods(now, days, tz)
    return {
        "timezone": timezone,
        "generated_at": now.isoformat(),
        "days": days,
        "period": current.as_json(),
        "previous_period": previous.as_json(),
        "comparison": {"current": totals(session, current), "previous": totals(session, previous)},
        "heatmap": heatmap(session, now, tz),
        "unique_plates_per_day": unique_per_day(session, now, tz),
        "top_provinces": top_provinces(session, current),
        "cameras": per_camera(session, current),
    }
