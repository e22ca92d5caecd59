"""Figures for the overview, the dashboard and GET /api/statistics: counted in the database, days and
hours in TIMEZONE. Read-only services."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Integer, cast, func, select
from sqlalchemy.orm import Session, joinedload

from .models import BlacklistDetection, BlacklistEntry, Camera, Record
from .records import total_reads

HOURS = 24


def start_of_day(now: datetime, timezone: str) -> datetime:
    """Return midnight of `now`'s day in the site's time zone, as an aware datetime."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _hour_of(session: Session, column):
    """The hour a UTC timestamp falls in, as hours since the epoch: one expression on both databases."""
    if session.get_bind().dialect.name == "postgresql":
        # date_part gives a double; EXTRACT gives a numeric since PostgreSQL 14, and that
        # arithmetic on each of a day's rows took about twice as long.
        return cast(func.floor(func.date_part("epoch", column, type_=Float) / 3600), Integer)
    return cast(func.strftime("%s", column), Integer) // 3600


def counts_per_hour(session: Session, column, since: datetime) -> dict[int, int]:
    """Return {hour since the epoch: rows} of the rows whose `column` is at or after `since`."""
    hour = _hour_of(session, column).label("hour")
    rows = session.execute(select(hour, func.count()).where(column >= since).group_by(hour)).all()
    return {int(h): n for h, n in rows}


def reads_per_hour(session: Session, now: datetime, timezone: str) -> dict[str, list]:
    """Return the reads of the last 24 hours in hourly buckets labelled in local time (the dashboard)."""
    current = int(now.timestamp()) // 3600
    counts = counts_per_hour(session, Record.received_at, now - timedelta(hours=HOURS))
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
    midnight = start_of_day(now, timezone)
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
        # SPEC §11 "Camera offline": cameras with an open camera_offline alert.
        "cameras_silent": count(select(func.count(Camera.id)).where(Camera.offline_alert_id.is_not(None))),
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


def reads_today(session: Session, now: datetime, timezone: str) -> dict[str, int]:
    """Return {camera_id: reads since local midnight}."""
    today = start_of_day(now, timezone)
    return dict(session.execute(
        select(Record.camera_id, func.count()).where(Record.received_at >= today).group_by(Record.camera_id)
    ).all())


def record_statistics(session: Session, now: datetime, timezone: str, hours: int = 24) -> dict[str, Any]:
    """Return totals, reads per camera (today), reads and hits per UTC hour (last `hours`), cameras."""
    today = start_of_day(now, timezone)
    count = select(func.count()).select_from(Record)
    hits = select(func.count()).select_from(BlacklistDetection)
    per_camera = session.execute(
        select(Record.camera_id, func.count(), func.max(Record.received_at))
        .where(Record.received_at >= today).group_by(Record.camera_id).order_by(func.count().desc())
    ).all()
    first = int(now.timestamp()) // 3600 - hours + 1
    since = datetime.fromtimestamp(first * 3600, UTC)
    reads = counts_per_hour(session, Record.received_at, since)
    detections = counts_per_hour(session, BlacklistDetection.detected_at, since)
    return {
        **total_reads(session).as_json("total_records"),
        "records_today": session.scalar(count.where(Record.received_at >= today)),
        "blacklist_hits": session.scalar(hits),
        "blacklist_hits_today": session.scalar(hits.where(BlacklistDetection.detected_at >= today)),
        "cameras_total": session.scalar(select(func.count()).select_from(Camera)),
        "cameras_online": session.scalar(
            select(func.count()).select_from(Camera).where(Camera.online.is_(True))),
        "per_camera": [{"camera_id": c, "records_today": n, "last_read_at": last.isoformat()}
                       for c, n, last in per_camera],
        "per_hour": [{"hour": datetime.fromtimestamp(h * 3600, UTC).strftime("%Y-%m-%dT%H:00Z"),
                      "records": reads.get(h, 0), "blacklist_hits": detections.get(h, 0)}
                     for h in range(first, first + hours)],
        "generated_at": now,
    }
