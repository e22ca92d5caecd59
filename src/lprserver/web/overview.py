"""The overview (/) and the live dashboard: a user limited to sites sees their cameras' figures only."""

from flask import current_app, render_template
from flask_login import login_required
from sqlalchemy import func, select

from ..extensions import db
from ..models import Record, utcnow
from ..records import camera_names
from ..sites import current_scope
from ..statistics import counters, dashboard_stats, recent_hits
from ..wire import record_json
from . import bp

FEED_SIZE = 20


@bp.get("/")
@login_required
def overview():
    now, tz, scope = utcnow(), current_app.config["TIMEZONE"], current_scope()
    return render_template("overview.html", counters=counters(db.session, now, tz, scope=scope),
                           hits=recent_hits(db.session, 5, scope=scope), names=camera_names(db.session))


@bp.get("/dashboard")
@login_required
def dashboard():
    names, scope = camera_names(db.session), current_scope()
    in_scope = scope.cameras_clause(Record.camera_id)
    latest = db.session.scalars(select(Record).where(in_scope).order_by(Record.id.desc())
                                .limit(FEED_SIZE)).all()
    stats = dashboard_stats(db.session, utcnow(), current_app.config["TIMEZONE"], scope=scope)
    # The newest id of all (not of the scope): /live/missed starts after it and filters by scope itself.
    last_id = db.session.scalar(select(func.max(Record.id))) or 0
    return render_template("dashboard.html", stats=stats, last_id=last_id,
                           feed=[record_json(r, names.get(r.camera_id)) for r in latest],
                           hits=recent_hits(db.session, 10, scope=scope), names=names)
