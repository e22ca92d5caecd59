"""The visits page (SPEC §10): vehicles on site now with how long, and a day's closed visits."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app, render_template, request
from flask_babel import gettext as _
from flask_login import login_required

from ..extensions import db
from ..models import utcnow
from ..records import camera_names
from ..sites import current_scope
from ..visit_list import closed_between, day_summary, is_overstay, max_stays, on_site
from ..visits import stay_seconds
from . import bp

PER_PAGE = 200  # a day's closed visits per page
ON_SITE_LIMIT = 1000


def _day(text: str | None, today: date) -> tuple[date, str | None]:
    if not text:
        return today, None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return today, _("'%(text)s' is not a day: use YYYY-MM-DD", text=text[:40])
    if not 1970 <= day.year <= 2100:
        return today, _("the day must lie in the years 1970-2100")
    return day, None


def duration_text(seconds: int | None) -> str:
    """visit_list.duration_text in the page's language: `3 h 12 min`, `2 h`, `12 min`, `45 s`, `2 d 3 h`."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return _("%(s)s s", s=seconds)
    hours, minutes = divmod(seconds // 60, 60)
    days, hours = divmod(hours, 24)
    if days:
        return _("%(d)s d %(h)s h", d=days, h=hours)
    if not hours:
        return _("%(m)s min", m=minutes)
    return _("%(h)s h %(m)s min", h=hours, m=minutes) if minutes else _("%(h)s h", h=hours)


@bp.get("/visits")
@login_required
def visits():
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    now = utcnow()
    today = now.astimezone(tz).date()
    day, error = _day(request.args.get("day"), today)
    start = datetime.combine(day, datetime.min.time(), tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
    page_number = min(max(request.args.get("p", 1, type=int), 1), 10**6)
    scope = current_scope()
    limits, names = max_stays(db.session), camera_names(db.session, scope=scope)
    here = [(v, stay_seconds(v, now), is_overstay(v, now, limits))
            for v in on_site(db.session, ON_SITE_LIMIT, scope=scope)]
    closed = [(v, stay_seconds(v, now), is_overstay(v, now, limits))
              for v in closed_between(db.session, start, end, PER_PAGE + 1, (page_number - 1) * PER_PAGE,
                                      scope=scope)]
    summary = day_summary(db.session, start, end, scope=scope)
    return render_template(
        "visits.html", on_site_rows=here, closed=closed[:PER_PAGE], more=len(closed) > PER_PAGE,
        page_number=page_number, summary=summary, day=day, today=today, error=error, names=names,
        limits=limits, duration=duration_text, now=now,
        previous_day=day - timedelta(days=1), next_day=day + timedelta(days=1),
        overstays=sum(1 for _, _, over in here if over), on_site_limit=ON_SITE_LIMIT,
    ), 400 if error else 200
