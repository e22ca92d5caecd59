"""Erasing a plate from its page (SPEC §15): the confirm form's POST, admins only, with CSRF; the same
service as `DELETE /api/plates/<plate>`. The export is the API's zip, linked from the page."""

from flask import abort, current_app, flash, redirect, url_for
from flask import request as flask_request
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import require_role
from ..extensions import db
from ..image_store import image_store_for
from ..plate_history import plate_from_path
from ..privacy import REASON_MAX, PrivacyError, erase_plate
from ..sites import current_scope
from . import bp, client_ip


@bp.post("/plates/<path:plate>/erase")
@require_role("admin")
def plate_erase(plate: str):
    normalized = plate_from_path(plate)
    if normalized is None:
        abort(404)
    try:
        result = erase_plate(db.session, image_store_for(current_app),
                             normalized, current_scope(), reason=flask_request.form.get("reason"),
                             user=current_user._get_current_object(), timezone=current_app.config["TIMEZONE"],
                             ip=client_ip())
    except PrivacyError:
        flash(_("Not erased: give the reason (1 to %(max)d characters).", max=REASON_MAX), "danger")
        return redirect(url_for("web.plate", plate=normalized))
    if result is None:
        abort(404)
    db.session.commit()
    flash(_("Erased %(plate)s: %(records)d reads and %(files)d image files.", plate=normalized,
            records=result["records"], files=result["files"]), "success")
    return redirect(url_for("web.plate", plate=normalized))
