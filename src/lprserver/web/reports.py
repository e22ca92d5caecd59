"""The reports page (SPEC §12 "Reports"): a period and a camera, a preview of the figures, the XLSX and
the PDF to download; for admins, the reports e-mailed daily or weekly.

Sites (SPEC §15): a user limited to sites sees, previews and downloads the figures of their sites'
cameras only. Schedules report on the sites of the admin who made them (report_schedules.schedule_scope);
an admin limited to sites lists and deletes only the schedules they made."""

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..audit import audit
from ..auth import require_role
from ..extensions import db
from ..models import Camera, ReportSchedule, utcnow
from ..report_files import KINDS, report_file
from ..report_pdf import ReportFontMissing
from ..report_schedules import ScheduleError, add_schedule, check_schedule, next_send
from ..reports import ReportError, check_camera, labels, parse_period, period_text, summary
from ..sites import Scope, current_scope
from . import bp, client_ip


def _cameras(scope: Scope) -> list[tuple[str, str | None]]:
    return list(db.session.execute(select(Camera.id, Camera.name).where(scope.sites_clause(Camera.site))
                                   .order_by(Camera.name, Camera.id)).all())


def _schedules(scope: Scope):
    query = select(ReportSchedule).order_by(ReportSchedule.id)
    if scope.limited:
        query = query.where(ReportSchedule.created_by == current_user.id)
    return db.session.scalars(query).all()


def _render(status: int = 200, **context):
    config = current_app.config
    admin, scope = current_user.role == "admin", current_scope()
    schedules = _schedules(scope) if admin else []
    args = request.args if request.method == "GET" else {}
    context.setdefault("form", {"from": args.get("from", ""), "to": args.get("to", ""),
                                "camera_id": args.get("camera_id", "")})
    blank = {"frequency": "daily", "language": config["DEFAULT_LANGUAGE"], "recipients": "", "camera_id": ""}
    return render_template(
        "reports.html", cameras=_cameras(scope), admin=admin, schedules=schedules, labels=labels(),
        next_send={s.id: next_send(s, config["TIMEZONE"]) for s in schedules},
        schedule_form=context.pop("schedule_form", blank), **context), status


@bp.get("/reports")
@login_required
def reports():
    """The form; with `preview`, the figures of the period chosen."""
    if "preview" not in request.args:
        return _render()
    config = current_app.config
    try:
        period = parse_period(request.args.get("from"), request.args.get("to"), config["TIMEZONE"], utcnow())
        camera = check_camera(db.session, request.args.get("camera_id"), current_scope())
    except ReportError as exc:
        return _render(400, error=exc)
    report = summary(db.session, period, camera, utcnow(), scope=current_scope())
    return _render(report=report, period_shown=period_text(report, config["DATE_ERA"]))


@bp.get("/reports/download")
@login_required
def report_download():
    """The XLSX or the PDF of the period chosen (`format`), audited like an export."""
    kind = request.args.get("format", "")
    if kind not in KINDS:
        return _render(400, error=ReportError("format", _("choose XLSX or PDF")))
    try:
        made = report_file(db.session, current_app.config, kind, request.args.get("from"),
                           request.args.get("to"), request.args.get("camera_id"), utcnow(),
                           scope=current_scope())
    except ReportError as exc:
        return _render(400, error=exc)
    except ReportFontMissing as exc:
        return _render(503, error=ReportError("format", str(exc)))
    audit(db.session, f"reports.{kind}", current_user, ip=client_ip(),
          detail={"from": made.period.start.isoformat(), "to": made.period.end.isoformat(),
                  "camera_id": request.args.get("camera_id") or None, "door": "page"})
    db.session.commit()
    return Response(made.data, mimetype=made.mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{made.filename}"'})


@bp.post("/reports/schedules")
@require_role("admin")
def report_schedule_add():
    """Keep a daily or weekly report by e-mail; a form error stores nothing."""
    form = {k: request.form.get(k, "") for k in ("frequency", "recipients", "language", "camera_id")}
    try:
        schedule = check_schedule(db.session, form, current_scope())
    except ScheduleError as exc:
        return _render(400, schedule_error=exc, schedule_form=form)
    row = add_schedule(db.session, schedule, current_user.id, utcnow(), current_app.config["TIMEZONE"])
    db.session.flush()
    audit(db.session, "report_schedule.add", current_user, target=f"report_schedule:{row.id}", ip=client_ip(),
          detail={"frequency": row.frequency, "recipients": row.recipients, "language": row.language,
                  "camera_id": row.camera_id})
    db.session.commit()
    flash(_("Report scheduled"), "success")
    return redirect(url_for("web.reports", _anchor="schedules"))


@bp.post("/reports/schedules/<int:schedule_id>/delete")
@require_role("admin")
def report_schedule_delete(schedule_id: int):
    row = db.get_or_404(ReportSchedule, schedule_id)
    if current_scope().limited and row.created_by != current_user.id:
        abort(404)
    audit(db.session, "report_schedule.delete", current_user, target=f"report_schedule:{row.id}",
          ip=client_ip(), detail={"frequency": row.frequency, "recipients": row.recipients})
    db.session.delete(row)
    db.session.commit()
    flash(_("Schedule deleted"), "success")
    return redirect(url_for("web.reports", _anchor="schedules"))
