"""The retention page (admins only, SPEC §15): the retention settings, the times before which each kind
goes, what the next cleanup would delete, and the last cleanup's report.

Retention is one setting for the whole server; a site-limited admin sees the settings but not the
counts, which cover every site."""

from flask import current_app, render_template

from ..auth import require_role
from ..extensions import db
from ..models import utcnow
from ..retention import RetentionSettings, last_run, preview
from ..sites import current_scope
from . import bp


@bp.get("/retention")
@require_role("admin")
def retention():
    config = current_app.config
    settings = RetentionSettings.from_config(config)
    now = utcnow()
    limited = current_scope().limited
    coming = preview(db.session, settings, now) if not limited else None
    last = last_run(db.session)
    return render_template("retention.html", settings=settings, cutoffs=settings.cutoffs(now),
                           preview=coming, last=last, limited=limited,
                           budget_gb=config["IMAGE_DISK_BUDGET_GB"],
                           batch_size=config["RETENTION_BATCH_SIZE"])
