"""Summary reports (SPEC §12 "Reports"): one shape, `summary()`, that the XLSX, the PDF, the /reports
page and the scheduled e-mail all show: reads, unique plates, blacklist hits and their
acknowledgements, alerts, visits; in total, per camera and per day (days in TIMEZONE).

A period is `from`/`to` as people give them: dates (`2026-12-01`: whole days in TIMEZONE, `to`
included) or ISO 8601 times (`to` excluded). Read-only services: callers own the session.

Sites (SPEC §15): a report for a user limited to sites (`scope`) covers the cameras of those sites only:
reads, plates, hits, alerts (by the alert's camera) and visits (by the entry's or the exit's camera); a
camera of another site is refused as unknown. Its unique plates are counted from lpr_records (the
pre-aggregated days count all cameras together).
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from .analytics import unique_plates
from .analytics_counts import hour_of, hour_start
from .models import (
    ALERT_TRIGGERS,
    Alert,
    AnalyticsDay,
    AnalyticsHour,
    BlacklistDetection,
    Camera,
    Record,
    Visit,
)
from .sites import EVERYWHERE, Scope
from .times import YEARS

MAX_DAYS = 366  # a leap year; a longer report is refused (400)
TOTALS = ("reads", "unique_plates", "hits", "hits_acknowledged", "alerts", "alerts_acknowledged",
          "visits_entered", "visits_exited")
DAY_COUNTS = ("reads", "unique_plates", "hits", "hits_acknowledged", "alerts", "visits_entered",
              "visits_exited")
CAMERA_COUNTS = ("reads", "unique_plates", "hits", "hits_acknowledged", "alerts", "visits_entered",
                 "visits_exited")


class ReportError(ValueError):
    """A period or filter that cannot be reported; `field` names the parameter at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, and the site's time zone its days are counted in."""

    start: datetime
    end: datetime
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def first_day(self) -> date:
        return self.start.astimezone(self.zone).date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).astimezone(self.zone).date()

    def days(self) -> list[date]:
        """The local days the period touches, in order."""
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(count)]

    def day_starts(self) -> list[datetime]:
        """Local midnight of each day after the first, as UTC-aware times (the days' boundaries)."""
        return [datetime.combine(d, time(), self.zone) for d in self.days()[1:]]


def _moment(text: str, field: str, timezone: str, is_end: bool) -> datetime:
    """A date (a whole local day: its start, or for `to` the next day's start) or an ISO 8601 time."""
    text = text.strip()
    zone = ZoneInfo(timezone)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if not YEARS[0] <= day.year <= YEARS[1]:
                raise ValueError
            return datetime.combine(day + timedelta(days=1 if is_end else 0), time(), zone)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(field, _("%(field)s: '%(value)s' is not a date (YYYY-MM-DD) or an ISO 8601 "
                                   "time in the years 1970-2100", field=field, value=text[:40])) from None
    if not YEARS[0] <= moment.year <= YEARS[1]:
        raise ReportError(field, _("%(field)s: '%(value)s' is not a date (YYYY-MM-DD) or an ISO 8601 "
                                   "time in the years 1970-2100", field=field, value=text[:40]))
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def parse_period(from_text: str | None, to_text: str | None, timezone: str, now: datetime) -> Period:
    """Read `from`/`to` (either may be left out: `to` defaults to today, `from` to six days before
    `to`'s day, so a report covers the last seven days). ReportError says what is wrong."""
    zone = ZoneInfo(timezone)
    end = _moment(to_text, "to", timezone, True) if to_text and to_text.strip() else \
        datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(), zone)
    if from_text and from_text.strip():
        start = _moment(from_text, "from", timezone, False)
    else:
        last = (end - timedelta(microseconds=1)).astimezone(zone).date()
        start = datetime.combine(last - timedelta(days=6), time(), zone)
    if start >= end:
        raise ReportError("from", _("from must be before to"))
    if end - start > timedelta(days=MAX_DAYS):
        raise ReportError("to", _("a report covers at most %(days)s days", days=MAX_DAYS))
    return Period(start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC")), timezone)


def check_camera(session: Session, camera_id: str | None, scope: Scope = EVERYWHERE) -> str | None:
    """The camera filter, or None for all cameras; ReportError for a camera that does not exist (or is
    of a site outside `scope`)."""
    camera_id = (camera_id or "").strip() or None
    if camera_id is not None and (len(camera_id) > 64 or not _seen(session, camera_id, scope)):
        raise ReportError("camera_id", _("there is no camera '%(camera)s'", camera=camera_id[:64]))
    return camera_id


def _seen(session: Session, camera_id: str, scope: Scope) -> bool:
    camera = session.get(Camera, camera_id)
    return camera is not None and scope.sees_camera(camera)


# --- counting --------------------------------------------------------------------------------------

def local_day(session: Session, column, period: Period):
    """The local day (in the period's time zone) a UTC timestamp falls on: PostgreSQL converts with its
    own time zone data; SQLite, which has none, compares with the days' boundaries."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(period.timezone, column))
    days, starts = period.days(), period.day_starts()
    if not starts:
        return literal(days[0].isoformat())
    return case(*[(column < start, day.isoformat()) for day, start in zip(days, starts, strict=False)],
                else_=days[-1].isoformat())


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _in(column, period: Period):
    return (column >= period.start) & (column < period.end)


def read_counts(session: Session, period: Period, camera_id: str | None,
                scope: Scope = EVERYWHERE) -> dict[str, Any]:
    """Reads and unique plates by (day, camera), by day, by camera and in all. Reads and the days'
    unique plates come from the analytics' pre-aggregated counts (analytics_counts.py) when the period's
    days are whole UTC hours; the rest from lpr_records."""
    counted_days = _counted_days(period, camera_id) and not scope.limited
    counted = raw_read_counts(session, period, camera_id, days=not counted_days, scope=scope)
    if _on_hours(period):
        counted["reads"] = hourly_reads(session, period, camera_id, scope)
    if counted_days:
        counted["day_plates"] = dict(session.execute(
            select(AnalyticsDay.day, AnalyticsDay.unique_plates)
            .where(AnalyticsDay.day >= period.first_day, AnalyticsDay.day <= period.last_day)).all())
        counted["plates"] = unique_plates(session, period.first_day, period.last_day)
    return counted


def _on_hours(period: Period) -> bool:
    """Whether the period and each of its days start on a whole UTC hour (any zone with a whole-hour
    offset, for dates): then the hourly counts add up to its days exactly."""
    return all(t.minute == 0 and t.second == 0 and t.microsecond == 0
               for t in (period.start, period.end, *period.day_starts()))


def _counted_days(period: Period, camera_id: str | None) -> bool:
    """The days' unique plates are counted for all cameras and whole local days only."""
    zone = period.zone
    return camera_id is None and all(t.astimezone(zone).time() == time() for t in (period.start, period.end))


def hourly_reads(session: Session, period: Period, camera_id: str | None,
                 scope: Scope = EVERYWHERE) -> dict[tuple, int]:
    """Reads by (local day, camera) summed from analytics_hours."""
    first, last = hour_of(period.start), hour_of(period.end)
    query = (select(AnalyticsHour.hour, AnalyticsHour.camera_id, AnalyticsHour.reads)
             .where(AnalyticsHour.hour >= first, AnalyticsHour.hour < last,
                    scope.cameras_clause(AnalyticsHour.camera_id)))
    if camera_id:
        query = query.where(AnalyticsHour.camera_id == camera_id)
    reads: dict[tuple, int] = {}
    for hour, camera, n in session.execute(query).all():
        key = (hour_start(hour).astimezone(period.zone).date(), camera)
        reads[key] = reads.get(key, 0) + n
    return reads


def raw_read_counts(session: Session, period: Period, camera_id: str | None,
                    days: bool = True, scope: Scope = EVERYWHERE) -> dict[str, Any]:
    """Reads and unique plates counted in lpr_records (`days`: also the unique plates of each day)."""
    day = local_day(session, Record.received_at, period).label("day")
    where = [_in(Record.received_at, period), scope.cameras_clause(Record.camera_id)]
    if camera_id:
        where.append(Record.camera_id == camera_id)
    plates = func.count(Record.plate_normalized.distinct())
    counted: dict[str, Any] = {"day_plates": {}, "plates": 0}
    if not _on_hours(period):
        counted["reads"] = {(_day(d), c): n for d, c, n in session.execute(
            select(day, Record.camera_id, func.count()).where(*where).group_by(day, Record.camera_id)).all()}
    if days:
        counted["day_plates"] = {_day(d): n for d, n in session.execute(
            select(day, plates).where(*where).group_by(day)).all()}
        counted["plates"] = session.scalar(select(plates).where(*where)) or 0
    counted["camera_plates"] = dict(session.execute(select(Record.camera_id, plates).where(*where)
                                                    .group_by(Record.camera_id)).all())
    return counted


def hit_counts(session: Session, period: Period, camera_id: str | None,
               scope: Scope = EVERYWHERE) -> dict[tuple, tuple[int, int]]:
    """Blacklist hits and how many were acknowledged, by (day, camera)."""
    day = local_day(session, BlacklistDetection.detected_at, period).label("day")
    query = (select(day, Record.camera_id, func.count(), func.count(BlacklistDetection.acknowledged_at))
             .join(Record, Record.id == BlacklistDetection.record_id)
             .where(_in(BlacklistDetection.detected_at, period), scope.cameras_clause(Record.camera_id))
             .group_by(day, Record.camera_id))
    if camera_id:
        query = query.where(Record.camera_id == camera_id)
    return {(_day(d), c): (n, acked) for d, c, n, acked in session.execute(query).all()}


def alert_counts(session: Session, period: Period, camera_id: str | None,
                 scope: Scope = EVERYWHERE) -> list[tuple]:
    """Alerts as (day, camera, trigger, count, acknowledged)."""
    day = local_day(session, Alert.created_at, period).label("day")
    query = (select(day, Alert.camera_id, Alert.trigger, func.count(), func.count(Alert.acknowledged_at))
             .where(_in(Alert.created_at, period), scope.cameras_clause(Alert.camera_id))
             .group_by(day, Alert.camera_id, Alert.trigger))
    if camera_id:
        query = query.where(Alert.camera_id == camera_id)
    return [(_day(d), c, t, n, acked) for d, c, t, n, acked in session.execute(query).all()]


def visit_counts(session: Session, period: Period, camera_id: str | None,
                 scope: Scope = EVERYWHERE) -> dict[str, dict[tuple, int]]:
    """Visits that entered and that left in the period, by (day, camera of the entry or the exit)."""
    counted = {}
    for name, at, camera in (("visits_entered", Visit.entered_at, Visit.entry_camera_id),
                             ("visits_exited", Visit.exited_at, Visit.exit_camera_id)):
        day = local_day(session, at, period).label("day")
        query = (select(day, camera, func.count()).where(_in(at, period), scope.cameras_clause(camera))
                 .group_by(day, camera))
        if camera_id:
            query = query.where(camera == camera_id)
        counted[name] = {(_day(d), c): n for d, c, n in session.execute(query).all()}
    return counted


# --- the summary -----------------------------------------------------------------------------------

def summary(session: Session, period: Period, camera_id: str | None = None,
            now: datetime | None = None, *, scope: Scope = EVERYWHERE) -> dict[str, Any]:
    """The report of `period` (one camera, or all `scope` sees): totals, per camera (busiest first), per
    day."""
    reads = read_counts(session, period, camera_id, scope)
    hits = hit_counts(session, period, camera_id, scope)
    alerts = alert_counts(session, period, camera_id, scope)
    visits = visit_counts(session, period, camera_id, scope)
    days = {d: dict.fromkeys(DAY_COUNTS, 0) for d in period.days()}
    cameras: dict[str, dict[str, int]] = {}

    def add(day: date, camera: str | None, name: str, n: int) -> None:
        if day in days:
            days[day][name] += n
        if camera:
            cameras.setdefault(camera, dict.fromkeys(CAMERA_COUNTS, 0))[name] += n

    for (day, camera), n in reads["reads"].items():
        add(day, camera, "reads", n)
    for (day, camera), (n, acked) in hits.items():
        add(day, camera, "hits", n)
        add(day, camera, "hits_acknowledged", acked)
    by_trigger = {t: {"count": 0, "acknowledged": 0} for t in ALERT_TRIGGERS}
    for day, camera, trigger, n, acked in alerts:
        add(day, camera, "alerts", n)
        if trigger in by_trigger:
            by_trigger[trigger]["count"] += n
            by_trigger[trigger]["acknowledged"] += acked
    for name, counted in visits.items():
        for (day, camera), n in counted.items():
            add(day, camera, name, n)
    for day, n in reads["day_plates"].items():
        if day in days:
            days[day]["unique_plates"] = n
    for camera, n in reads["camera_plates"].items():
        cameras.setdefault(camera, dict.fromkeys(CAMERA_COUNTS, 0))["unique_plates"] = n
    if camera_id:
        cameras = {camera_id: cameras.get(camera_id, dict.fromkeys(CAMERA_COUNTS, 0))}
    return _shape(session, period, camera_id, days, cameras, reads["plates"], by_trigger, now)


def _shape(session: Session, period: Period, camera_id: str | None, days: dict, cameras: dict,
           plates: int, by_trigger: dict, now: datetime | None) -> dict[str, Any]:
    names = dict(session.execute(select(Camera.id, Camera.name).where(Camera.id.in_(list(cameras)))).all()) \
        if cameras else {}
    totals = {name: sum(d[name] for d in days.values()) for name in DAY_COUNTS if name != "unique_plates"}
    totals["unique_plates"] = plates
    totals["alerts_acknowledged"] = sum(t["acknowledged"] for t in by_trigger.values())
    per_camera = [{"camera_id": cid, "name": names.get(cid), **counts} for cid, counts in cameras.items()]
    per_camera.sort(key=lambda row: (-row["reads"], row["camera_id"]))
    return {
        "period": {"start": period.start, "end": period.end, "timezone": period.timezone,
                   "first_day": period.first_day, "last_day": period.last_day, "days": len(days)},
        "camera_id": camera_id,
        "camera_name": names.get(camera_id) if camera_id else None,
        "totals": {name: totals[name] for name in TOTALS},
        "alerts_by_trigger": by_trigger,
        "per_camera": per_camera,
        "per_day": [{"day": d, **counts} for d, counts in days.items()],
        "generated_at": now,
    }


# --- how people read it (XLSX, PDF, the page, the e-mail): call inside the language's context ---------

def labels() -> dict[str, str]:
    """The report's column and row names in the current language."""
    return {
        "reads": _("Reads"), "unique_plates": _("Unique plates"), "hits": _("Blacklist hits"),
        "hits_acknowledged": _("Hits acknowledged"), "alerts": _("Alerts"),
        "alerts_acknowledged": _("Alerts acknowledged"), "visits_entered": _("Vehicles entered"),
        "visits_exited": _("Vehicles left"), "day": _("Day"), "camera_id": _("Camera ID"),
        "name": _("Camera"), "all_cameras": _("All cameras"), "period": _("Period"),
        "cameras": _("Cameras"), "generated": _("Generated"), "figure": _("Figure"), "value": _("Value"),
        "title": _("LPR summary report"), "per_day": _("Per day"), "per_camera": _("Per camera"),
        "summary": _("Summary"), "reads_per_day": _("Reads per day"),
        "reads_per_camera": _("Reads per camera"), "alerts_by_trigger": _("Alerts by kind"),
        "timezone": _("Time zone"), "count": _("Count"), "acknowledged": _("Acknowledged"),
    }


def trigger_labels() -> dict[str, str]:
    return {"blacklist": _("Blacklist"), "not_on_list": _("Not on list"), "overstay": _("Overstay"),
            "camera_offline": _("Camera offline")}


def show_day(day: date, era: str) -> str:
    """A calendar day as people read it, its year in DATE_ERA (SPEC §12 "Dates")."""
    from .times import ERA_OFFSETS

    return f"{day.year + ERA_OFFSETS.get(era, 0):04d}-{day:%m-%d}"


def period_text(report: dict[str, Any], era: str) -> str:
    """`2026-12-01 – 2026-12-07` for whole days, with the times when the period starts or ends mid-day."""
    from .times import show_local

    period = report["period"]
    zone = ZoneInfo(period["timezone"])
    whole = all(t.astimezone(zone).time() == time() for t in (period["start"], period["end"]))
    if whole:
        first, last = show_day(period["first_day"], era), show_day(period["last_day"], era)
        return first if first == last else f"{first} – {last}"
    fmt = "%Y-%m-%d %H:%M"
    return f"{show_local(period['start'], zone, era, fmt)} – {show_local(period['end'], zone, era, fmt)}"


def camera_text(report: dict[str, Any]) -> str:
    if not report["camera_id"]:
        return labels()["all_cameras"]
    name = report["camera_name"]
    return f"{name} ({report['camera_id']})" if name else report["camera_id"]
