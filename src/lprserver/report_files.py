"""A summary report as a file (SPEC §12 "Reports"): the one place the API, the /reports page and the
scheduled e-mail turn a period into an XLSX or a PDF, with its file name."""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .report_pdf import PDF_TYPE, report_pdf
from .report_xlsx import XLSX_TYPE, report_xlsx
from .reports import Period, check_camera, parse_period, summary
from .sites import EVERYWHERE, Scope

KINDS = {"xlsx": XLSX_TYPE, "pdf": PDF_TYPE}


@dataclass(frozen=True)
class ReportFile:
    data: bytes
    mimetype: str
    filename: str
    period: Period


def render(report: dict[str, Any], kind: str, config) -> bytes:
    """The bytes of one report in the current language, days per DATE_ERA."""
    if kind == "xlsx":
        return report_xlsx(report, config["DATE_ERA"])
    return report_pdf(report, config["DATE_ERA"], config.get("REPORT_FONT") or None)


def file_name(report: dict[str, Any], kind: str) -> str:
    """`lpr-report-2026-11-01_2026-11-30[-CAM01].xlsx` (common-era days: a name sorts the same anywhere)."""
    period = report["period"]
    days = f"{period['first_day']:%Y-%m-%d}_{period['last_day']:%Y-%m-%d}"
    camera = "-" + re.sub(r"[^A-Za-z0-9_.-]", "_", report["camera_id"]) if report["camera_id"] else ""
    return f"lpr-report-{days}{camera}.{kind}"


def make_file(report: dict[str, Any], kind: str, config, period: Period) -> ReportFile:
    return ReportFile(render(report, kind, config), KINDS[kind], file_name(report, kind), period)


def report_file(session: Session, config, kind: str, time_from: str | None, time_to: str | None,
                camera_id: str | None, now: datetime, *, scope: Scope = EVERYWHERE) -> ReportFile:
    """Check the parameters (ReportError), count (the cameras of `scope`), and render; the caller audits
    and commits."""
    period = parse_period(time_from, time_to, config["TIMEZONE"], now)
    camera = check_camera(session, camera_id, scope)
    return make_file(summary(session, period, camera, now, scope=scope), kind, config, period)
