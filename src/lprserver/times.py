"""Times sent by cameras and typed by people: read in the site's TIMEZONE, kept in UTC (README
"Sending reads" and "Configure")."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

# The years a time may lie in (README "Sending reads"); year 1 or 9999 cannot even change zone.
YEARS = (1970, 2100)


def in_years(moment: datetime | None) -> datetime | None:
    """Refuse (ValueError) a time outside YEARS; return it otherwise."""
    if moment is not None and not YEARS[0] <= moment.year <= YEARS[1]:
        raise ValueError(f"must lie in the years {YEARS[0]}-{YEARS[1]}")
    return moment


def to_utc(moment: datetime | None, timezone: str, default: datetime) -> datetime:
    """Return a time in UTC, reading one without an offset in `timezone`; `default` when there is none."""
    if moment is None:
        return default
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)


def parse_local(text: str, timezone: str) -> datetime:
    """Read an ISO 8601 date or time as people type it (`2026-01-31`, `2026-01-31T08:00`), in `timezone`
    when it has no offset; ValueError when it is not one or lies outside YEARS."""
    moment = in_years(datetime.fromisoformat(text.strip()))
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(timezone))


# SPEC §12 "Dates": DATE_ERA=be shows Buddhist-era years (2569 for 2026) to people; the API keeps ISO 8601.
ERA_OFFSETS = {"ce": 0, "be": 543}


def show_local(moment: datetime, timezone: str | ZoneInfo, era: str = "ce",
               fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An aware time as people read it: in `timezone`, the year (`%Y`) in `era`."""
    local = moment.astimezone(timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone))
    offset = ERA_OFFSETS.get(era, 0)
    if offset:
        fmt = fmt.replace("%Y", str(local.year + offset))
    return local.strftime(fmt)
