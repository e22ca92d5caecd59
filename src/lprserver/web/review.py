"""The review queue page (SPEC §10 "Review"): one waiting read at a time, cleared with the keyboard.

The page's script (static/js/review.js) reads `GET /api/review`, confirms with
`POST /api/review/<id>/confirm` and corrects with `PATCH /api/records/<id>`, the session's CSRF token in
`X-CSRFToken`. Operators and admins only: viewers cannot confirm or correct."""

from flask import current_app, render_template
from flask_login import current_user

from ..auth import require_role
from ..extensions import db
from ..review import COUNT_CAP, pending_count
from ..sites import current_scope
from . import bp
from .records import province_choices


@bp.get("/review")
@require_role("admin", "operator")
def review():
    return render_template("review.html", waiting=pending_count(db.session, scope=current_scope()),
                           provinces=province_choices(),
                           threshold=current_app.config["REVIEW_CONFIDENCE"])


@bp.app_context_processor
def review_waiting() -> dict:
    """The nav's count of waiting reads, for operators and admins (capped: one short index scan)."""
    if not (current_user.is_authenticated and current_user.role in ("admin", "operator")):
        return {}

    def count() -> str:
        waiting = pending_count(db.session, COUNT_CAP, scope=current_scope())
        return f"{COUNT_CAP - 1}+" if waiting >= COUNT_CAP else str(waiting)

    return {"review_waiting": count}
