"""GET /api/statistics: totals, per camera, per hour, blacklist hits."""

from flask import current_app
from flask_login import login_required

from ..extensions import db
from ..models import utcnow
from ..sites import current_scope
from ..statistics import record_statistics
from . import bp
from .schemas import Statistics, StatisticsArgs


@bp.get("/statistics")
@login_required
@bp.arguments(StatisticsArgs, location="query", as_kwargs=True)
@bp.response(200, Statistics)
@bp.doc(tags=["statistics"])
def get_statistics(hours: int):
    """Return record totals, reads per camera today, reads and hits per hour (UTC hours), cameras online;
    for a user limited to sites, of those sites' cameras only."""
    return record_statistics(db.session, utcnow(), current_app.config["TIMEZONE"], hours,
                             scope=current_scope())
