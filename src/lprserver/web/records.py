"""The records list with its filters, the CSV export, and one record's page."""

from flask import Response, abort, current_app, render_template, request, stream_with_context
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..audit import audit
from ..extensions import db
from ..known import known_for
from ..models import BlacklistDetection, Camera, Record, User, utcnow
from ..plates import PROVINCE_CODES, province_by_code
from ..records import (
    FilterError,
    RecordFilter,
    camera_names,
    count_records,
    export_csv,
    page_records,
    similar_patterns,
    visible_record,
)
from ..sites import current_scope
from ..url_ids import row_id
from . import bp, client_ip
from .form_errors import RECORD_FILTER, translated
from .labels import CATEGORY_LABELS, MATCH_LABELS

PER_PAGE = 50
PLATE_FORMAT_LABELS = {"th_car": _l("Thai car plate (th_car)"),
                       "th_numeric": _l("Numbers only, commercial (th_numeric)"),
                       "other": _l("Other")}
_LEADING_VOWELS = "เแโใไ"
_NO_TONES = {ord(mark): None for mark in "\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c"}


def _thai_order(name: str) -> tuple[str, str]:
    """A sort key in Thai dictionary order: a leading vowel sorts after the consonant it is written
    before, and tone marks count only between names otherwise equal."""
    moved = name[1] + name[0] + name[2:] if name[:1] in _LEADING_VOWELS and len(name) > 1 else name
    return moved.translate(_NO_TONES), name


# The province selects' choices: one per code (77; Betong's plates carry Yala's code), in Thai order.
PROVINCE_CHOICES = tuple(sorted(((p.code, p.name_th) for p in map(province_by_code, PROVINCE_CODES)),
                                key=lambda choice: _thai_order(choice[1])))
# The same in English, in alphabetical order (SPEC §13: an English page names the provinces in English).
PROVINCE_CHOICES_EN = tuple(sorted(((p.code, p.name_en) for p in map(province_by_code, PROVINCE_CODES)),
                                   key=lambda choice: choice[1]))


def province_choices() -> tuple[tuple[str, str], ...]:
    """The province selects' choices in the page's language."""
    return PROVINCE_CHOICES if str(get_locale() or "") == "th" else PROVINCE_CHOICES_EN


def _filter() -> tuple[RecordFilter, FilterError | None]:
    try:
        return RecordFilter.from_args(request.args, current_app.config["TIMEZONE"]), None
    except FilterError as exc:
        return RecordFilter(), exc


@bp.get("/records")
@login_required
def records():
    f, error = _filter()
    before, after = request.args.get("before", type=row_id), request.args.get("after", type=row_id)
    scope = current_scope()
    page = page_records(db.session, f, PER_PAGE, before=before, after=after, scope=scope)
    if f.plate and before is None and after is None:
        audit(db.session, "records.search", current_user, detail=f.as_audit(), ip=client_ip())
        db.session.commit()
    last_id = db.session.scalar(select(func.max(Record.id))) or 0
    return render_template(
        "records.html", page=page, f=f, error=error and translated(str(error), RECORD_FILTER, error.field),
        total=count_records(db.session, f, scope=scope),
        args=f.query_args(current_app.config["TIMEZONE"]), names=camera_names(db.session, scope=scope),
        provinces=province_choices(), similar=similar_patterns(f.plate) if f.plate_mode == "similar" else [],
        page_number=min(max(request.args.get("p", 1, type=int), 1), 10**9), last_id=last_id,
        known=known_for(db.session, [(r.plate_normalized, r.province_code) for r in page.records], utcnow()),
        live=before is None and after is None), 400 if error else 200


@bp.get("/records/export.csv")
@login_required
def export():
    f, error = _filter()
    if error:
        abort(400, str(error))
    audit(db.session, "records.export", current_user, detail=f.as_audit(), ip=client_ip())
    db.session.commit()
    body = export_csv(db.session, f, current_app.config["TIMEZONE"], scope=current_scope())
    return Response(stream_with_context(body), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=lpr-records.csv"})


@bp.get("/records/<id:record_id>")
@login_required
def record(record_id: int, correction: dict | None = None):
    """One read; `correction` is the correction form sent back with its error (web/corrections.py)."""
    item = visible_record(db.session, record_id, current_scope())
    if item is None:  # a read of another site answers as a missing one (SPEC §15 "Sites")
        abort(404)
    camera = db.session.get(Camera, item.camera_id)
    hits = db.session.execute(
        select(BlacklistDetection, User.username).options(joinedload(BlacklistDetection.entry))
        .outerjoin(User, User.id == BlacklistDetection.acknowledged_by)
        .where(BlacklistDetection.record_id == record_id)
    ).all()
    known = known_for(db.session, [(item.plate_normalized, item.province_code)], utcnow())
    return render_template("record.html", r=item, camera=camera, hits=hits, plate_formats=PLATE_FORMAT_LABELS,
                           known=known.get((item.plate_normalized, item.province_code)),
                           provinces=province_choices(), correction=correction or {},
                           match_labels=MATCH_LABELS, category_labels=CATEGORY_LABELS
                           ), 400 if correction else 200
