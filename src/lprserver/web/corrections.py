"""The record page's correction form (SPEC §10 "Corrections"): operators and admins type the plate a
camera got wrong."""

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import require_role
from ..corrections import CorrectionError, correct_record
from ..extensions import db
from ..models import utcnow
from ..records import visible_record
from ..sites import current_scope
from . import bp, client_ip
from .form_errors import CORRECTION, translated
from .live import publish
from .records import record as record_page


@bp.post("/records/<id:record_id>/correct")
@require_role("admin", "operator")
def correct(record_id: int):
    """Correct the read; a refused plate or province comes back on the record page, under its field."""
    item = visible_record(db.session, record_id, current_scope())
    if item is None:  # a read of another site answers as a missing one (SPEC §15 "Sites")
        abort(404)
    plate = request.form.get("plate_corrected", "")
    province = request.form.get("province", "")
    try:  # no province chosen: the one the plate text names, else the read keeps its own
        correction = correct_record(db.session, item, plate, province or None,
                                    current_user._get_current_object(), utcnow(), ip=client_ip(),
                                    timezone=current_app.config["TIMEZONE"])
    except CorrectionError as exc:
        db.session.rollback()
        return record_page(record_id, correction={"plate_corrected": plate, "province": province,
                                                  "field": exc.field,
                                                  "error": translated(str(exc), CORRECTION, exc.field)})
    db.session.commit()
    for event, data in correction.events:
        publish(event, data)
    shown = item.plate_corrected + (f" · {item.province}" if item.province else "")
    flash(_("Corrected to %(plate)s", plate=shown) if correction.changed else
          _("Correction confirmed again: %(plate)s", plate=shown), "success")
    return redirect(url_for("web.record", record_id=record_id))
