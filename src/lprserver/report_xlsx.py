"""The summary report as an Excel workbook (openpyxl): sheets Summary, Per camera and Per day, headers in
the current language, days per DATE_ERA. Call inside the language's context (a request, or
`flask_babel.force_locale`)."""

from datetime import date
from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from .reports import (
    CAMERA_COUNTS,
    DAY_COUNTS,
    TOTALS,
    camera_text,
    labels,
    period_text,
    show_day,
    trigger_labels,
)
from .times import show_local

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER_FILL = PatternFill("solid", fgColor="DDE6F3")
BOLD = Font(bold=True)


def _put(sheet: Worksheet, row: int, column: int, value: Any, bold: bool = False):
    """Write one cell; text is always text (a camera named `=HYPERLINK(...)` is no formula)."""
    cell = sheet.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    if bold:
        cell.font = BOLD
    return cell


def _header(sheet: Worksheet, row: int, names: list[str]) -> None:
    for column, name in enumerate(names, start=1):
        cell = _put(sheet, row, column, name, bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")


def _day_cell(sheet: Worksheet, row: int, day: date, era: str) -> None:
    if era == "ce":  # a real date: sorts and charts in Excel
        _put(sheet, row, 1, day).number_format = "yyyy-mm-dd"
    else:  # Excel shows dates in the common era: the Buddhist-era day goes as text
        _put(sheet, row, 1, show_day(day, era))


def _widths(sheet: Worksheet, widths: list[int]) -> None:
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width


def summary_sheet(sheet: Worksheet, report: dict[str, Any], era: str) -> None:
    text = labels()
    sheet.title = text["summary"]
    _put(sheet, 1, 1, text["title"]).font = Font(bold=True, size=14)
    rows = [(text["period"], period_text(report, era)), (text["cameras"], camera_text(report)),
            (text["timezone"], report["period"]["timezone"])]
    if report.get("generated_at"):
        rows.append((text["generated"], show_local(report["generated_at"], report["period"]["timezone"], era,
                                                   "%Y-%m-%d %H:%M")))
    for row, (name, value) in enumerate(rows, start=3):
        _put(sheet, row, 1, name, bold=True)
        _put(sheet, row, 2, value)
    row = len(rows) + 4
    _header(sheet, row, [text["figure"], text["value"]])
    for offset, name in enumerate(TOTALS, start=1):
        _put(sheet, row + offset, 1, text[name])
        _put(sheet, row + offset, 2, report["totals"][name])
    row += len(TOTALS) + 2
    _header(sheet, row, [text["alerts_by_trigger"], text["count"], text["acknowledged"]])
    for offset, (trigger, name) in enumerate(trigger_labels().items(), start=1):
        counted = report["alerts_by_trigger"][trigger]
        _put(sheet, row + offset, 1, name)
        _put(sheet, row + offset, 2, counted["count"])
        _put(sheet, row + offset, 3, counted["acknowledged"])
    _widths(sheet, [28, 36, 14])


def camera_sheet(sheet: Worksheet, report: dict[str, Any]) -> None:
    text = labels()
    sheet.title = text["per_camera"]
    _header(sheet, 1, [text["camera_id"], text["name"]] + [text[n] for n in CAMERA_COUNTS])
    for row, camera in enumerate(report["per_camera"], start=2):
        _put(sheet, row, 1, camera["camera_id"])
        _put(sheet, row, 2, camera["name"] or "")
        for column, name in enumerate(CAMERA_COUNTS, start=3):
            _put(sheet, row, column, camera[name])
    sheet.freeze_panes = "A2"
    _widths(sheet, [16, 24] + [13] * len(CAMERA_COUNTS))


def day_sheet(sheet: Worksheet, report: dict[str, Any], era: str) -> None:
    text = labels()
    sheet.title = text["per_day"]
    _header(sheet, 1, [text["day"]] + [text[n] for n in DAY_COUNTS])
    for row, day in enumerate(report["per_day"], start=2):
        _day_cell(sheet, row, day["day"], era)
        for column, name in enumerate(DAY_COUNTS, start=2):
            _put(sheet, row, column, day[name])
    sheet.freeze_panes = "A2"
    _widths(sheet, [13] + [13] * len(DAY_COUNTS))


def report_xlsx(report: dict[str, Any], era: str = "ce") -> bytes:
    """The workbook of one summary, as the bytes of an .xlsx file."""
    book = Workbook()
    summary_sheet(book.active, report, era)
    camera_sheet(book.create_sheet(), report)
    day_sheet(book.create_sheet(), report, era)
    out = BytesIO()
    book.save(out)
    return out.getvalue()
