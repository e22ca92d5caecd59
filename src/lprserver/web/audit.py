"""The audit log's page (admins, SPEC §15 "Audit"): filters by user, action and time, paging, CSV export.

It only reads the log: no page or route edits or deletes an entry."""

import json

from flask import Response, abort, current_app, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_login import current_user

from ..audit import audit
from ..audit_list import AuditFilter, actions, count_entries, export_csv, find_entries
from ..auth import require_role
from ..extensions import db
from ..sites import current_scope
from ..times import parse_local
from . import bp, client_ip

PER_PAGE = 50
MAX_PAGE = 100_000


def _filter() -> tuple[AuditFilter, str | None]:
    """The page's filter from its form fields; times typed in TIMEZONE. An error leaves that field out."""
    tz = current_app.config["TIMEZONE"]
    args, error, moments = request.args, None, {}
    for name in ("from", "to"):
        text = (args.get(name) or "").strip()
        if not text:
            moments[name] = None
            continue
        try:
            moments[name] = parse_local(text, tz)
        except ValueError:
            moments[name], error = None, _("Type the times as 2026-01-31 or 2026-01-31 08:00")
    user, action = (args.get("user") or "").strip()[:64], (args.get("action") or "").strip()[:64]
    return AuditFilter(user=user, action=action, since=moments["from"], until=moments["to"]), error


def _args() -> dict[str, str]:
    return {k: (request.args.get(k) or "").strip() for k in ("user", "action", "from", "to")
            if (request.args.get(k) or "").strip()}


@bp.get("/audit", endpoint="audit")
@require_role("admin")
def audit_page():
    f, error = _filter()
    page = min(max(request.args.get("p", 1, type=int), 1), MAX_PAGE)
    scope = current_scope()
    entries = find_entries(db.session, f, page, PER_PAGE, scope)
    total = count_entries(db.session, f, scope)
    return render_template("audit.html", entries=entries, total=total, page_number=page, per_page=PER_PAGE,
                           args=_args(), actions=actions(db.session), error=error, detail_text=detail_text,
                           limited=scope.limited), 400 if error else 200


@bp.get("/audit/export.csv")
@require_role("admin")
def audit_export():
    f, error = _filter()
    if error:
        abort(400, error)
    audit(db.session, "audit.export", current_user,
          detail={k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in f.as_dict().items() if v},
          ip=client_ip())
    db.session.commit()
    body = export_csv(db.session, f, current_app.config["TIMEZONE"], current_scope(), bom=True)
    return Response(stream_with_context(body), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=lpr-audit.csv"})


def detail_text(detail: dict | None) -> str:
    """An entry's detail as short text: `key: value` pairs, nested values as JSON."""
    if not detail:
        return ""
    parts = []
    for key, value in detail.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f"{key}: {shown}")
    return " · ".join(parts)
