"""Figures for the overview and the dashboard: counted in the database, bucketed in TIMEZONE."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Integer, cast, func, select
from sqlalchemy.orm import Session, joinedload

from .models import BlacklistDetection, BlacklistEntry, Camera, Record

HOURS = 24


def local_midnight(now: datetime, timezone: str) -> datetime:
    """Return the start of today in `timezone`, as an aware datetime."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _hour_bucket(session: Session):
    # Hours since the epoch: the same expression on both databases' own date functions.
    if session.get_bind().dialect.name == "postgresql":
        # date_part gives a double; EXTRACT gives a numeric since PostgreSQL 14, and that
        # arithmetic on each of a day's rows took about twice as long.
        return cast(func.floor(func.date_part("epoch", Record.received_at, type_=Float) / 3600), Integer)
    return cast(func.strftime("%s", Record.received_at), Integer) // 3600


def reads_per_hour(session: Session, now: datetime, timezone: str) -> dict[str, list]:
    """Return the reads of the last 24 hours in hourly buckets labelled in local time."""
    current = int(now.timestamp()) // 3600
    bucket = _hour_bucket(session).label("bucket")
    rows = session.execute(
        select(bucket, func.count()).where(Record.received_at >= now - timedelta(hours=HOURS))
        .group_by(bucket)
    ).all()
    counts = {int(b): n for b, n in rows}
    tz = ZoneInfo(timezone)
    hours = range(current - HOURS + 1, current + 1)
    return {
        "labels": [datetime.fromtimestamp(h * 3600, tz).strftime("%H:%M") for h in hours],
        "counts": [counts.get(h, 0) for h in hours],
        "first_hour": hours[0],
    }


def reads_per_camera(session: Session, since: datetime) -> list[dict[str, Any]]:
    """Return the 20 busiest cameras since `since`, busiest first (counted first, then named)."""
    counts = (select(Record.camera_id, func.count().label("reads")).where(Record.received_at >= since)
              .group_by(Record.camera_id).order_by(func.count().desc()).limit(20).subquery())
    rows = session.execute(
        select(counts.c.camera_id, Camera.name, counts.c.reads).join(Camera, Camera.id == counts.c.camera_id)
        .order_by(counts.c.reads.desc(), counts.c.camera_id)
    ).all()
    return [{"camera_id": cid, "name": name, "count": n} for cid, name, n in rows]


def top_plates(session: Session, since: datetime, limit: int = 10) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Record.plate_normalized, func.count()).where(Record.received_at >= since)
        .group_by(Record.plate_normalized).order_by(func.count().desc(), Record.plate_normalized)
        .limit(limit)
    ).all()
    return [{"plate": plate, "count": n} for plate, n in rows]


def recent_hits(session: Session, limit: int = 10) -> list[BlacklistDetection]:
    """Return the latest blacklist detections with their record and entry loaded."""
    query = (select(BlacklistDetection)
             .options(joinedload(BlacklistDetection.record), joinedload(BlacklistDetection.entry))
             .order_by(BlacklistDetection.id.desc()).limit(limit))
    return list(session.scalars(query))


def counters(session: Session, now: datetime, timezone: str) -> dict[str, int]:
    """Return the headline numbers: reads today and in the last hour, hits, cameras, blacklist size."""
    midnight = local_midnight(now, timezone)
    count = lambda query: session.scalar(query) or 0  # noqa: E731
    # count(*), not count(id): the received_at index alone answers it (an index-only scan).
    return {
        "reads_today": count(select(func.count()).where(Record.received_at >= midnight)),
        "reads_last_hour": count(select(func.count()).where(Record.received_at >= now - timedelta(hours=1))),
        "hits_today": count(select(func.count(BlacklistDetection.id))
                            .where(BlacklistDetection.detected_at >= midnight)),
        "hits_unacknowledged": count(select(func.count(BlacklistDetection.id))
                                     .where(BlacklistDetection.acknowledged_at.is_(None))),
        "cameras_online": count(select(func.count(Camera.id)).where(Camera.online.is_(True))),
        "cameras_total": count(select(func.count(Camera.id))),
        "blacklist_active": count(select(func.count(BlacklistEntry.id))
                                  .where(BlacklistEntry.active.is_(True))),
    }


def dashboard_stats(session: Session, now: datetime, timezone: str) -> dict[str, Any]:
    """Return everything the dashboard charts show (the periodic `stats` event carries it too)."""
    day_ago = now - timedelta(hours=HOURS)
    return {
        "counters": counters(session, now, timezone),
        "per_hour": reads_per_hour(session, now, timezone),
        "per_camera": reads_per_camera(session, day_ago),
        "top_plates": top_plates(session, day_ago),
        "at": now.isoformat(),
    }


def reads_today_per_camera(session: Session, now: datetime, timezone: str) -> dict[str, int]:
    midnight = local_midnight(now, timezone)
    rows = session.execute(select(Record.camera_id, func.count()).where(Record.received_at >= midnight)
                           .group_by(Record.camera_id)).all()
    return dict(rows)
