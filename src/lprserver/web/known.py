"""The known plates page (SPEC §10): the allow list with its groups; add, edit, delete, CSV import and
export, and each group's max stay."""

import csv
import io
from datetime import datetime

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select

from .. import known_plates as service
from ..audit import audit
from ..auth import require_role
from ..extensions import db
from ..models import KnownPlate, utcnow
from . import bp, client_ip
from .form_errors import KNOWN, translated
from .records import province_choices

EDITORS = ("admin", "operator")
PER_PAGE = 100


def _actor() -> service.Actor:
    return service.Actor(current_user, client_ip())


def _time(form, name: str) -> datetime | None:
    return service.parse_time(form.get(name), name, current_app.config["TIMEZONE"])


def _filters() -> dict:
    group = (request.args.get("group") or "").strip()[:64]
    plate = (request.args.get("plate") or "").strip()[:64]
    return {"group": group, "plate": plate}


def _render(status: int = 200, **context):
    filters = _filters()
    try:
        page = max(1, min(int(request.args.get("page", 1)), 100_000))
    except ValueError:
        page = 1
    query = service.plates_query(filters["group"] or None, filters["plate"] or None)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    plates = db.session.scalars(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return render_template(
        "known.html", plates=plates, total=total, page=page, pages=max(1, -(-total // PER_PAGE)),
        filters=filters, groups=service.group_counts(db.session), now=utcnow(), is_current=service.is_current,
        provinces=province_choices(), given_province=service.given_province, **context), status


@bp.get("/known")
@login_required
def known():
    return _render()


@bp.post("/known")
@require_role(*EDITORS)
def known_add():
    form = request.form
    try:
        row = service.create_plate(db.session, _actor(), form.get("plate", ""), form.get("group", ""),
                                   form.get("name"), form.get("notes"), _time(form, "valid_from"),
                                   _time(form, "valid_until"), form.get("province_code"))
    except service.KnownInputError as exc:
        db.session.rollback()
        return _render(400, error=translated(str(exc), KNOWN, exc.field), error_field=exc.field, form=form)
    db.session.commit()
    flash(_("Added %(plate)s to %(group)s", plate=row.plate, group=row.group_name), "success")
    return redirect(url_for("web.known"))


@bp.get("/known/<id:plate_id>/edit")
@require_role(*EDITORS)
def known_edit(plate_id: int):
    return _render(editing=db.get_or_404(KnownPlate, plate_id))


@bp.post("/known/<id:plate_id>/edit")
@require_role(*EDITORS)
def known_update(plate_id: int):
    row = db.get_or_404(KnownPlate, plate_id)
    form = request.form
    try:
        changes = {"plate": form.get("plate", ""), "province_code": form.get("province_code") or None,
                   "group": form.get("group", ""), "name": form.get("name"), "notes": form.get("notes"),
                   "valid_from": _time(form, "valid_from"), "valid_until": _time(form, "valid_until")}
        service.update_plate(db.session, _actor(), row, changes)
    except service.KnownInputError as exc:
        db.session.rollback()
        return _render(400, editing=db.get_or_404(KnownPlate, plate_id),
                       error=translated(str(exc), KNOWN, exc.field), error_field=exc.field, form=form)
    db.session.commit()
    flash(_("Saved %(plate)s", plate=row.plate), "success")
    return redirect(url_for("web.known"))


@bp.post("/known/<id:plate_id>/delete")
@require_role(*EDITORS)
def known_delete(plate_id: int):
    row = db.get_or_404(KnownPlate, plate_id)
    plate = row.plate
    service.delete_plate(db.session, _actor(), row)
    db.session.commit()
    flash(_("Deleted %(plate)s", plate=plate), "info")
    return redirect(url_for("web.known"))


@bp.post("/known/groups")
@require_role(*EDITORS)
def known_group():
    form = request.form
    text = (form.get("max_stay_minutes") or "").strip()
    try:
        try:
            minutes = int(text) if text else None
        except ValueError:
            raise service.KnownInputError("max_stay_minutes", "max_stay_minutes is a whole number from 1 to "
                                                              f"{service.MAX_STAY_MINUTES}, or empty for no "
                                                              "limit") from None
        group = service.set_group(db.session, _actor(), form.get("group", ""), minutes)
    except service.KnownInputError as exc:
        db.session.rollback()
        return _render(400, group_error=translated(str(exc), KNOWN, exc.field), group_form=form)
    db.session.commit()
    shown = _("%(minutes)s min", minutes=group.max_stay_minutes) if group.max_stay_minutes else _("no limit")
    flash(_("Group %(group)s: max stay %(stay)s", group=group.name, stay=shown), "success")
    return redirect(url_for("web.known"))


@bp.post("/known/import")
@require_role(*EDITORS)
def known_import():
    data = service.read_upload(request.files.get("file"))
    if not data or len(data) > service.MAX_IMPORT_BYTES:
        return _render(400, error=_("Choose a CSV file of at most 2 MB"))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _render(400, error=_("The file is not UTF-8 text"))
    try:
        report = service.import_csv(db.session, _actor(), text, current_app.config["TIMEZONE"])
    except service.KnownInputError as exc:
        db.session.rollback()
        return _render(400, error=_("Not imported: %(why)s", why=translated(str(exc), KNOWN, exc.field)))
    db.session.commit()
    report.rejected = [(line, plate, translated(why, KNOWN)) for line, plate, why in report.rejected]
    return _render(report=report)


@bp.get("/known/export.csv")
@login_required
def known_export():
    out = io.StringIO()
    csv.writer(out).writerows(service.export_rows(db.session, current_app.config["TIMEZONE"]))
    audit(db.session, "known.export", current_user, ip=client_ip())
    db.session.commit()
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=lpr-known-plates.csv"})
