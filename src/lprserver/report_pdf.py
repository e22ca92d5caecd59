"""The summary report as a PDF (fpdf2): title, period, the totals, a bar chart of reads per day and one
of reads per camera (drawn with fpdf2's own rectangles and lines), and the tables. A Thai font is
embedded (a subset) and HarfBuzz shapes the text, so vowels and tone marks sit where Thai readers
expect them. Call inside the language's context (a request, or `flask_babel.force_locale`)."""

import logging
import math
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

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

# fontTools logs each step of making a font subset at INFO: noise in the service's log.
logging.getLogger("fontTools").setLevel(logging.WARNING)
PDF_TYPE = "application/pdf"
FAMILY = "report"
# (regular, bold) of fonts that carry Thai and Latin, best first: Sarabun where a site installed it,
# else Debian's fonts-thai-tlwg (setup.sh installs it), as TrueType or OpenType.
FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/sarabun/Sarabun-Regular.ttf",
     "/usr/share/fonts/truetype/sarabun/Sarabun-Bold.ttf"),
    ("/usr/share/fonts/truetype/thai-sarabun/Sarabun-Regular.ttf",
     "/usr/share/fonts/truetype/thai-sarabun/Sarabun-Bold.ttf"),
    ("/usr/share/fonts/truetype/tlwg/Loma.ttf", "/usr/share/fonts/truetype/tlwg/Loma-Bold.ttf"),
    ("/usr/share/fonts/opentype/tlwg/Loma.otf", "/usr/share/fonts/opentype/tlwg/Loma-Bold.otf"),
    ("/usr/share/fonts/truetype/tlwg/Garuda.ttf", "/usr/share/fonts/truetype/tlwg/Garuda-Bold.ttf"),
    ("/usr/share/fonts/opentype/tlwg/Garuda.otf", "/usr/share/fonts/opentype/tlwg/Garuda-Bold.otf"),
    ("/usr/share/fonts/truetype/tlwg/Waree.ttf", "/usr/share/fonts/truetype/tlwg/Waree-Bold.ttf"),
    ("/usr/share/fonts/truetype/tlwg/Norasi.ttf", "/usr/share/fonts/truetype/tlwg/Norasi-Bold.ttf"),
)
BAR = (37, 99, 171)
GRID = (215, 220, 228)
INK = (33, 37, 41)
MUTED = (108, 117, 125)
HEAD_FILL = (221, 230, 243)
TOP_CAMERAS = 15  # bars in the per-camera chart; the table lists them all


class ReportFontMissing(RuntimeError):
    """No font that carries Thai was found: the PDF cannot be made."""


def find_font(configured: str | None = None) -> tuple[Path, Path]:
    """(regular, bold) font files: REPORT_FONT when set (its `-Bold` sibling if there is one), else the
    first of FONT_CANDIDATES that exists. ReportFontMissing says what to install otherwise."""
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ReportFontMissing(f"REPORT_FONT {configured} is not a file: set it to a TrueType or "
                                    "OpenType font with Thai, e.g. /usr/share/fonts/truetype/tlwg/Loma.ttf")
        bold = path.with_name(f"{path.stem}-Bold{path.suffix}")
        return path, bold if bold.is_file() else path
    for regular, bold in FONT_CANDIDATES:
        if Path(regular).is_file():
            return Path(regular), Path(bold) if Path(bold).is_file() else Path(regular)
    raise ReportFontMissing("no font with Thai found for PDF reports: install fonts-thai-tlwg "
                            "(apt-get install fonts-thai-tlwg) or set REPORT_FONT to a .ttf file")


class ReportPdf(FPDF):
    """A4 portrait, the Thai font as the only font, a footer with the page number."""

    def __init__(self, font: tuple[Path, Path], footer_text: str):
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_text = footer_text
        self.add_font(FAMILY, "", str(font[0]))
        self.add_font(FAMILY, "B", str(font[1]))
        self.set_text_shaping(True)  # HarfBuzz: Thai marks above and below their consonants
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=15)
        self.set_font(FAMILY, size=10)
        self.set_text_color(*INK)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FAMILY, size=8)
        self.set_text_color(*MUTED)
        self.cell(0, 5, f"{self.footer_text} · {self.page_no()}", align="R")
        self.set_text_color(*INK)


def _heading(pdf: FPDF, text: str) -> None:
    if pdf.will_page_break(30):  # a heading stays with the first lines of what it heads
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font(FAMILY, "B", 12)
    pdf.cell(0, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, size=9)


def _table(pdf: FPDF, headers: list[str], rows: list[list[Any]], widths: list[float]) -> None:
    """A plain table: the header row filled, numbers aligned right, the header repeated after a page
    break."""
    pdf.set_font(FAMILY, size=9)
    pdf.set_fill_color(255, 255, 255)  # the rows stay white after a chart's bars
    pdf.set_draw_color(*GRID)
    with pdf.table(col_widths=widths, width=sum(widths), align="LEFT", line_height=6,
                   headings_style=_headings_style(), text_align=["LEFT"] + ["RIGHT"] * (len(widths) - 1),
                   borders_layout="HORIZONTAL_LINES", first_row_as_headings=True) as table:
        table.row([str(h) for h in headers])
        for values in rows:
            table.row([f"{v:,}" if isinstance(v, int) else str(v) for v in values])


def _headings_style():
    from fpdf.fonts import FontFace

    return FontFace(family=FAMILY, emphasis="BOLD", fill_color=HEAD_FILL)


def _nice_top(value: int) -> int:
    """The axis' top: 1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1
    power = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def day_chart(pdf: FPDF, days: list[dict], era: str, height: float = 55) -> None:
    """Vertical bars: reads per day, a grid of five lines, every few days labelled."""
    x0, width = pdf.l_margin + 14, pdf.epw - 14
    if pdf.will_page_break(height + 12):
        pdf.add_page()
    y0 = pdf.get_y() + 2
    top = _nice_top(max((d["reads"] for d in days), default=0))
    pdf.set_font(FAMILY, size=7)
    pdf.set_draw_color(*GRID)
    for i in range(6):
        y = y0 + height - height * i / 5
        pdf.line(x0, y, x0 + width, y)
        pdf.set_xy(pdf.l_margin, y - 2)
        pdf.cell(13, 4, f"{top * i // 5:,}", align="R")
    slot = width / max(len(days), 1)
    every = max(1, math.ceil(len(days) / 12))
    pdf.set_fill_color(*BAR)
    for i, day in enumerate(days):
        bar = height * day["reads"] / top
        if bar > 0:
            pdf.rect(x0 + i * slot + slot * 0.15, y0 + height - bar, slot * 0.7, bar, style="F")
        if i % every == 0:
            pdf.set_xy(x0 + i * slot - 6 + slot / 2, y0 + height + 1)
            pdf.cell(12, 4, show_day(day["day"], era)[5:] if len(days) > 1 else show_day(day["day"], era),
                     align="C")
    pdf.set_y(y0 + height + 7)
    pdf.set_font(FAMILY, size=9)


def camera_chart(pdf: FPDF, cameras: list[dict]) -> None:
    """Horizontal bars: reads of the busiest cameras, each labelled with its name and its count."""
    shown = cameras[:TOP_CAMERAS]
    row, label_w = 6.0, 50.0
    height = row * max(len(shown), 1)
    if pdf.will_page_break(height + 4):
        pdf.add_page()
    y0, x0 = pdf.get_y() + 1, pdf.l_margin + label_w
    width = pdf.epw - label_w - 18
    top = _nice_top(max((c["reads"] for c in shown), default=0))
    pdf.set_font(FAMILY, size=8)
    pdf.set_fill_color(*BAR)
    pdf.set_draw_color(*GRID)
    pdf.line(x0, y0, x0, y0 + height)
    for i, camera in enumerate(shown):
        y = y0 + i * row
        pdf.set_xy(pdf.l_margin, y)
        name = camera["name"] or camera["camera_id"]
        pdf.cell(label_w - 2, row, name if pdf.get_string_width(name) < label_w - 3 else name[:24] + "…",
                 align="R")
        bar = width * camera["reads"] / top
        if bar > 0:
            pdf.rect(x0, y + 1, bar, row - 2, style="F")
        pdf.set_xy(x0 + bar + 1, y)
        pdf.cell(18, row, f"{camera['reads']:,}")
    pdf.set_y(y0 + height + 3)
    pdf.set_font(FAMILY, size=9)


def _front(pdf: FPDF, report: dict[str, Any], era: str, text: dict[str, str]) -> None:
    pdf.set_font(FAMILY, "B", 18)
    pdf.cell(0, 10, text["title"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, size=10)
    lines = [(text["period"], period_text(report, era)), (text["cameras"], camera_text(report)),
             (text["timezone"], report["period"]["timezone"])]
    if report.get("generated_at"):
        lines.append((text["generated"], show_local(report["generated_at"], report["period"]["timezone"],
                                                    era, "%Y-%m-%d %H:%M")))
    for name, value in lines:
        pdf.set_font(FAMILY, "B", 10)
        pdf.cell(32, 6, name)
        pdf.set_font(FAMILY, size=10)
        pdf.cell(0, 6, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _heading(pdf, text["summary"])
    totals = report["totals"]
    _table(pdf, [text["figure"], text["value"]], [[text[n], totals[n]] for n in TOTALS], [70, 30])


def report_pdf(report: dict[str, Any], era: str = "ce", font: str | None = None) -> bytes:
    """The PDF of one summary, as bytes; `font` is REPORT_FONT (None: look in the usual places)."""
    text = labels()
    pdf = ReportPdf(find_font(font), f"{text['title']} · {period_text(report, era)}")
    pdf.set_title(text["title"])
    pdf.set_creator("LPR Server")
    pdf.add_page()
    _front(pdf, report, era, text)
    _heading(pdf, text["reads_per_day"])
    day_chart(pdf, report["per_day"], era)
    _heading(pdf, text["reads_per_camera"])
    camera_chart(pdf, report["per_camera"])
    _heading(pdf, text["alerts_by_trigger"])
    _table(pdf, [text["alerts_by_trigger"], text["count"], text["acknowledged"]],
           [[name, report["alerts_by_trigger"][t]["count"], report["alerts_by_trigger"][t]["acknowledged"]]
            for t, name in trigger_labels().items()], [70, 30, 30])
    _heading(pdf, text["per_camera"])
    short = [n for n in CAMERA_COUNTS if n != "hits_acknowledged"]
    _table(pdf, [text["name"]] + [text[n] for n in short],
           [[c["name"] or c["camera_id"]] + [c[n] for n in short] for c in report["per_camera"]],
           [48] + [22] * len(short))
    _heading(pdf, text["per_day"])
    short = [n for n in DAY_COUNTS if n != "hits_acknowledged"]
    _table(pdf, [text["day"]] + [text[n] for n in short],
           [[show_day(d["day"], era)] + [d[n] for n in short] for d in report["per_day"]],
           [30] + [25] * len(short))
    return bytes(pdf.output())
