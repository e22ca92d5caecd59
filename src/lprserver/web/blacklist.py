"""The blacklist page: add, edit, expire, delete, CSV import and export."""

import csv
import io
from datetime import datetime

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from .. import blacklist as service
from ..audit import audit
from ..auth import require_role
from ..extensions import db
from ..models import BLACKLIST_CATEGORIES, BlacklistEntry, utcnow
from ..times import parse_local
from . import bp, client_ip
from .form_errors import BLACKLIST, translated
from .labels import CATEGORY_LABELS, MATCH_LABELS
from .records import province_choices

MAX_IMPORT_BYTES = 2 * 1024 * 1024
EDITORS = ("admin", "operator")
# The match select, and what each mode catches (docs/thai-plates.md "Blacklist match modes").
MATCH_CHOICES = (
    ("exact", MATCH_LABELS["exact"], _l("the same plate once spaces, dashes and Thai digits are set aside")),
    ("lookalike", MATCH_LABELS["lookalike"],
     _l("also characters cameras confuse: ข/ช, บ/ป, ด/ต, 0/O, 8/B …")),
    ("fuzzy", MATCH_LABELS["fuzzy"],
     _l("a look-alike, or one character more, less or different (plates of 5 characters or more)")),
    ("pattern", MATCH_LABELS["pattern"],
     _l("* any run, ? one character, over the whole plate: กข12* (at least two characters that are not "
        "wildcards)")),
)


def _choices() -> dict:
    return {"categories": BLACKLIST_CATEGORIES, "matches": MATCH_CHOICES, "provinces": province_choices(),
            "match_labels": MATCH_LABELS, "category_labels": CATEGORY_LABELS}


def _actor() -> service.Actor:
    return service.Actor(current_user, client_ip())


def _expiry(text: str | None) -> datetime | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return parse_local(text, current_app.config["TIMEZONE"])
    except ValueError:
        raise service.BlacklistInputError("expires_at", "the expiry is not a date and time "
                                                        "(YYYY-MM-DDTHH:MM, years 1970-2100)") from None


def _render(status: int = 200, **context):
    entries = db.session.scalars(select(BlacklistEntry).order_by(BlacklistEntry.id.desc())).all()
    return render_template("blacklist.html", entries=entries, now=utcnow(), is_current=service.is_current,
                           **_choices(), **context), status


@bp.get("/blacklist")
@login_required
def blacklist():
    return _render()


@bp.post("/blacklist")
@require_role(*EDITORS)
def blacklist_add():
    form = request.form
    try:
        entry = service.create_entry(db.session, _actor(), form.get("license_plate_text", ""),
                                     form.get("reason"), form.get("category", "other"),
                                     _expiry(form.get("expires_at")), form.get("match") or "exact",
                                     form.get("province_code"))
    except service.BlacklistInputError as exc:
        db.session.rollback()
        return _render(400, error=translated(str(exc), BLACKLIST, exc.field), error_field=exc.field,
                       form=form)
    db.session.commit()
    flash(_("Added %(plate)s to the blacklist", plate=entry.license_plate_text), "success")
    return redirect(url_for("web.blacklist"))


@bp.get("/blacklist/<id:entry_id>/edit")
@require_role(*EDITORS)
def blacklist_edit(entry_id: int):
    entry = db.get_or_404(BlacklistEntry, entry_id)
    return render_template("blacklist_edit.html", entry=entry, given_province=service.given_province(entry),
                           **_choices())


@bp.post("/blacklist/<id:entry_id>/edit")
@require_role(*EDITORS)
def blacklist_update(entry_id: int):
    entry = db.get_or_404(BlacklistEntry, entry_id)
    form = request.form
    try:
        service.update_entry(db.session, _actor(), entry, form.get("license_plate_text", ""),
                             form.get("reason"), form.get("category", "other"),
                             _expiry(form.get("expires_at")), form.get("active") == "on",
                             form.get("match") or None, form.get("province_code"))
    except service.BlacklistInputError as exc:
        db.session.rollback()
        entry = db.get_or_404(BlacklistEntry, entry_id)
        return render_template("blacklist_edit.html", entry=entry,
                               error=translated(str(exc), BLACKLIST, exc.field), error_field=exc.field,
                               form=form, given_province=service.given_province(entry), **_choices()), 400
    db.session.commit()
    flash(_("Saved %(plate)s", plate=entry.license_plate_text), "success")
    return redirect(url_for("web.blacklist"))


@bp.post("/blacklist/<id:entry_id>/expire")
@require_role(*EDITORS)
def blacklist_expire(entry_id: int):
    entry = service.expire_entry(db.session, _actor(), db.get_or_404(BlacklistEntry, entry_id), utcnow())
    db.session.commit()
    flash(_("%(plate)s expired: it no longer raises alerts", plate=entry.license_plate_text), "info")
    return redirect(url_for("web.blacklist"))


@bp.post("/blacklist/<id:entry_id>/delete")
@require_role(*EDITORS)
def blacklist_delete(entry_id: int):
    entry = db.get_or_404(BlacklistEntry, entry_id)
    plate = entry.license_plate_text
    service.delete_entry(db.session, _actor(), entry)
    db.session.commit()
    flash(_("Deleted %(plate)s", plate=plate), "info")
    return redirect(url_for("web.blacklist"))


@bp.post("/blacklist/import")
@require_role(*EDITORS)
def blacklist_import():
    upload = request.files.get("file")
    data = upload.read(MAX_IMPORT_BYTES + 1) if upload else b""
    if not data or len(data) > MAX_IMPORT_BYTES:
        return _render(400, error=_("Choose a CSV file of at most 2 MB"))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _render(400, error=_("The file is not UTF-8 text"))
    report = service.import_csv(db.session, _actor(), text, current_app.config["TIMEZONE"], utcnow())
    db.session.commit()
    report.rejected = [(line, plate, translated(why, BLACKLIST)) for line, plate, why in report.rejected]
    return _render(report=report)


@bp.get("/blacklist/export.csv")
@login_required
def blacklist_export():
    out = io.StringIO()
    csv.writer(out).writerows(service.export_rows(db.session, current_app.config["TIMEZONE"]))
    audit(db.session, "blacklist.export", current_user, ip=client_ip())
    db.session.commit()
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=lpr-blacklist.csv"})
