"""Figures for the overview, the dashboard and GET /api/statistics: counted in the database, days and
hours in TIMEZONE. Read-only services.

Every figure takes a `scope` (SPEC §15 "Sites"): a user limited to sites counts only the reads, hits and
cameras of those sites' cameras; EVERYWHERE (the default) counts everything. The blacklist's size is
not site data and is the same for everyone."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Integer, cast, func, select, true
from sqlalchemy.orm import Session, joinedload

from .models import BlacklistDetection, BlacklistEntry, Camera, Record
from .records import Total, total_reads
from .sites import EVERYWHERE, Scope

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


def counts_per_hour(session: Session, column, since: datetime, *where) -> dict[int, int]:
    """Return {hour since the epoch: rows} of the rows whose `column` is at or after `since` (and `where`)."""
    hour = _hour_of(session, column).label("hour")
    rows = session.execute(select(hour, func.count()).where(column >= since, *where).group_by(hour)).all()
    return {int(h): n for h, n in rows}


def reads_per_hour(session: Session, now: datetime, timezone: str, *,
                   scope: Scope = EVERYWHERE) -> dict[str, list]:
    """Return the reads of the last 24 hours in hourly buckets labelled in local time (the dashboard)."""
    current = int(now.timestamp()) // 3600
    counts = counts_per_hour(session, Record.received_at, now - timedelta(hours=HOURS),
                             scope.cameras_clause(Record.camera_id))
    tz = ZoneInfo(timezone)
    hours = range(current - HOURS + 1, current + 1)
    return {
        "labels": [datetime.fromtimestamp(h * 3600, tz).strftime("%H:%M") for h in hours],
        "counts": [counts.get(h, 0) for h in hours],
        "first_hour": hours[0],
    }


def reads_per_camera(session: Session, since: datetime, *, scope: Scope = EVERYWHERE) -> list[dict[str, Any]]:
    """Return the 20 busiest cameras since `since`, busiest first (counted first, then named)."""
    counts = (select(Record.camera_id, func.count().label("reads"))
              .where(Record.received_at >= since, scope.cameras_clause(Record.camera_id))
              .group_by(Record.camera_id).order_by(func.count().desc()).limit(20).subquery())
    rows = session.execute(
        select(counts.c.camera_id, Camera.name, counts.c.reads).join(Camera, Camera.id == counts.c.camera_id)
        .order_by(counts.c.reads.desc(), counts.c.camera_id)
    ).all()
    return [{"camera_id": cid, "name": name, "count": n} for cid, name, n in rows]


def top_plates(session: Session, since: datetime, limit: int = 10, *,
               scope: Scope = EVERYWHERE) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Record.plate_normalized, func.count())
        .where(Record.received_at >= since, scope.cameras_clause(Record.camera_id))
        .group_by(Record.plate_normalized).order_by(func.count().desc(), Record.plate_normalized)
        .limit(limit)
    ).all()
    return [{"plate": plate, "count": n} for plate, n in rows]


def recent_hits(session: Session, limit: int = 10, *, scope: Scope = EVERYWHERE) -> list[BlacklistDetection]:
    """Return the latest blacklist detections with their record and entry loaded."""
    query = (select(BlacklistDetection)
             .options(joinedload(BlacklistDetection.record), joinedload(BlacklistDetection.entry))
             .order_by(BlacklistDetection.id.desc()).limit(limit))
    if scope.limited:
        query = query.where(hits_clause(scope))
    return list(session.scalars(query))


def hits_clause(scope: Scope):
    """A WHERE clause keeping the blacklist hits of reads at the cameras `scope` sees."""
    if not scope.limited:
        return true()
    return (select(Record.id).where(Record.id == BlacklistDetection.record_id,
                                    scope.cameras_clause(Record.camera_id)).exists())


def counters(session: Session, now: datetime, timezone: str, *, scope: Scope = EVERYWHERE) -> dict[str, int]:
    """Return the headline numbers: reads today and in the last hour, hits, cameras, blacklist size."""
    midnight = start_of_day(now, timezone)
    count = lambda query: session.scalar(query) or 0  # noqa: E731
    reads = scope.cameras_clause(Record.camera_id)
    hits = hits_clause(scope)
    cameras = scope.sites_clause(Camera.site)
    # count(*), not count(id): the received_at index alone answers it (an index-only scan).
    return {
        "reads_today": count(select(func.count()).where(Record.received_at >= midnight, reads)),
        "reads_last_hour": count(select(func.count())
                                 .where(Record.received_at >= now - timedelta(hours=1), reads)),
        "hits_today": count(select(func.count(BlacklistDetection.id))
                            .where(BlacklistDetection.detected_at >= midnight, hits)),
        "hits_unacknowledged": count(select(func.count(BlacklistDetection.id))
                                     .where(BlacklistDetection.acknowledged_at.is_(None), hits)),
        "cameras_online": count(select(func.count(Camera.id)).where(Camera.online.is_(True), cameras)),
        "cameras_total": count(select(func.count(Camera.id)).where(cameras)),
        # SPEC §11 "Camera offline": cameras with an open camera_offline alert.
        "cameras_silent": count(select(func.count(Camera.id))
                                .where(Camera.offline_alert_id.is_not(None), cameras)),
        "blacklist_active": count(select(func.count(BlacklistEntry.id))
                                  .where(BlacklistEntry.active.is_(True))),
    }


def dashboard_stats(session: Session, now: datetime, timezone: str, *,
                    scope: Scope = EVERYWHERE) -> dict[str, Any]:
    """Return everything the dashboard charts show (the periodic `stats` event carries it too)."""
    day_ago = now - timedelta(hours=HOURS)
    return {
        "counters": counters(session, now, timezone, scope=scope),
        "per_hour": reads_per_hour(session, now, timezone, scope=scope),
        "per_camera": reads_per_camera(session, day_ago, scope=scope),
        "top_plates": top_plates(session, day_ago, scope=scope),
        "at": now.isoformat(),
    }


def reads_today(session: Session, now: datetime, timezone: str, *,
                scope: Scope = EVERYWHERE) -> dict[str, int]:
    """Return {camera_id: reads since local midnight}."""
    today = start_of_day(now, timezone)
    return dict(session.execute(
        select(Record.camera_id, func.count())
        .where(Record.received_at >= today, scope.cameras_clause(Record.camera_id)).group_by(Record.camera_id)
    ).all())


def record_statistics(session: Session, now: datetime, timezone: str, hours: int = 24, *,
                      scope: Scope = EVERYWHERE) -> dict[str, Any]:
    """Return totals, reads per camera (today), reads and hits per UTC hour (last `hours`), cameras.
    A limited scope's total is an exact count of its cameras' reads (no planner estimate)."""
    today = start_of_day(now, timezone)
    in_scope = scope.cameras_clause(Record.camera_id)
    count = select(func.count()).select_from(Record).where(in_scope)
    hits = select(func.count()).select_from(BlacklistDetection).where(hits_clause(scope))
    cameras = select(func.count()).select_from(Camera).where(scope.sites_clause(Camera.site))
    per_camera = session.execute(
        select(Record.camera_id, func.count(), func.max(Record.received_at))
        .where(Record.received_at >= today, in_scope).group_by(Record.camera_id).order_by(func.count().desc())
    ).all()
    first = int(now.timestamp()) // 3600 - hours + 1
    since = datetime.fromtimestamp(first * 3600, UTC)
    reads = counts_per_hour(session, Record.received_at, since, in_scope)
    detections = counts_per_hour(session, BlacklistDetection.detected_at, since, hits_clause(scope))
    total = Total(session.scalar(count) or 0) if scope.limited else total_reads(session)
    return {
        **total.as_json("total_records"),
        "records_today": session.scalar(count.where(Record.received_at >= today)),
        "blacklist_hits": session.scalar(hits),
        "blacklist_hits_today": session.scalar(hits.where(BlacklistDetection.detected_at >= today)),
        "cameras_total": session.scalar(cameras),
        "cameras_online": session.scalar(cameras.where(Camera.online.is_(True))),
        "per_camera": [{"camera_id": c, "records_today": n, "last_read_at": last.isoformat()}
                       for c, n, last in per_camera],
        "per_hour": [{"hour": datetime.fromtimestamp(h * 3600, UTC).strftime("%Y-%m-%dT%H:00Z"),
                      "records": reads.get(h, 0), "blacklist_hits": detections.get(h, 0)}
                     for h in range(first, first + hours)],
        "generated_at": now,
    }
