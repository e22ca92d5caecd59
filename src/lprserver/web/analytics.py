"""/analytics (SPEC §12 "Dashboard"): the heat map, unique plates per day, this period against the one
before, top provinces and the cameras' figures, from the pre-aggregated counts (lprserver.analytics).
Every signed-in role sees it; the charts are drawn by static/js/analytics.js from the page's JSON."""

from datetime import date, datetime

from flask import abort, current_app, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from ..analytics import DEFAULT_DAYS, MAX_DAYS, analytics
from ..extensions import db
from ..models import utcnow
from ..sites import current_scope
from . import bp, showdate

PERIODS = (1, 7, 14, 30, 90)  # the page's choices; the API takes any 1 to MAX_DAYS
WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
            _l("Sunday"))


def duration(seconds: int | None) -> str:
    """A length of time as people read it: 3 d 4 h, 2 h 5 min, 12 min, 40 s."""
    if seconds is None:
        return "—"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return _("%(d)d d %(h)d h", d=days, h=hours)
    if hours:
        return _("%(h)d h %(m)d min", h=hours, m=minutes)
    if minutes:
        return _("%(m)d min", m=minutes)
    return _("%(s)d s", s=secs)


def change(current: int, previous: int) -> str:
    """The change from the previous period, as a signed percentage ("" when there was nothing before)."""
    if not previous:
        return ""
    return f"{(current - previous) * 100 / previous:+.0f}%"


def province_name(province: dict) -> str:
    if province["province_code"] is None:
        return _("Unknown")
    thai = str(get_locale() or "th").startswith("th")
    return province["name_th"] if thai else province["name_en"]


def heat_style(reads: int, top: int) -> str:
    """A cell's background: from white (no reads) to the darkest blue (the busiest hour)."""
    share = reads / top if top else 0
    return f"background-color: rgba(13, 110, 253, {0.08 + 0.92 * share:.2f})" if reads else ""


@bp.get("/analytics")
@login_required
def analytics_page():
    raw = (request.args.get("days") or "").strip() or str(DEFAULT_DAYS)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        abort(400, _("days must be a whole number from 1 to %(max)d", max=MAX_DAYS))
    data = analytics(db.session, utcnow(), current_app.config["TIMEZONE"], int(raw), scope=current_scope())
    charts = {
        "unique": {"labels": [showdate(date.fromisoformat(d["day"])) for d in data["unique_plates_per_day"]],
                   "counts": [d["unique_plates"] for d in data["unique_plates_per_day"]]},
        "provinces": {"labels": [province_name(p) for p in data["top_provinces"]],
                      "counts": [p["reads"] for p in data["top_provinces"]]},
        "cameras": {"labels": [c["name"] or c["camera_id"] for c in data["cameras"][:20]],
                    "counts": [c["reads_per_hour"] for c in data["cameras"][:20]]},
    }
    return render_template("analytics.html", data=data, charts=charts, periods=PERIODS, weekdays=WEEKDAYS,
                           duration=duration, change=change, heat_style=heat_style,
                           when=datetime.fromisoformat, day=date.fromisoformat)
