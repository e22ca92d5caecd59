"""Summary reports (SPEC §12 "Reports"): the figures of a period (days in TIMEZONE), the XLSX opened with
openpyxl and checked cell by cell, the PDF with its Thai font embedded, its text extracted and its first
page rendered by poppler (pdftoppm) in Thai and English, bad periods refused, who may download, audits."""

import io
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from lprserver.analytics_counts import rebuild
from lprserver.extensions import db
from lprserver.models import (
    Alert,
    AuditEntry,
    BlacklistDetection,
    BlacklistEntry,
    Camera,
    Record,
    Visit,
    utcnow,
)
from lprserver.report_pdf import ReportFontMissing, find_font
from lprserver.reports import parse_period, summary

from .conftest import bearer
from .webserver import PageClient

SHOTS = Path("/work/notes/shots")
BKK = "Asia/Bangkok"
NOV = "from=2026-11-01&to=2026-11-30"


def at(text: str) -> datetime:
    """A time in Bangkok, as UTC."""
    return datetime.fromisoformat(text + "+07:00").astimezone(UTC)


def seed() -> None:
    """Two cameras; reads on 1 and 2 November (one at 00:30 local, which is still 31 October in UTC)
    and one on 31 October; a hit acknowledged and one not; alerts; a visit in and out."""
    db.session.add_all([Camera(id="GATE-N", name="ประตูเหนือ"), Camera(id="LOT", name="=HYPERLINK(\"x\")")])
    entry = BlacklistEntry(license_plate_text="กข1234", plate_normalized="กข1234", category="stolen")
    db.session.add(entry)
    db.session.flush()
    reads = [("GATE-N", "กข1234", "2026-11-01T00:30:00"), ("GATE-N", "กข1234", "2026-11-01T09:00:00"),
             ("GATE-N", "1กก99", "2026-11-01T10:00:00"), ("LOT", "กข1234", "2026-11-02T23:59:00"),
             ("LOT", "ABC123", "2026-11-02T12:00:00"), ("GATE-N", "OLD1", "2026-10-31T23:59:00")]
    records = []
    for i, (camera, plate, when) in enumerate(reads):
        record = Record(camera_id=camera, event_id=f"e{i}", plate_number=plate, plate_normalized=plate,
                        captured_at=at(when), received_at=at(when), blacklisted=plate == "กข1234")
        records.append(record)
    db.session.add_all(records)
    db.session.flush()
    db.session.add_all([
        BlacklistDetection(record_id=records[0].id, entry_id=entry.id, match_type="exact",
                           detected_at=records[0].received_at, acknowledged_at=records[0].received_at),
        BlacklistDetection(record_id=records[3].id, entry_id=entry.id, match_type="exact",
                           detected_at=records[3].received_at),
        Alert(trigger="blacklist", camera_id="GATE-N", plate="กข1234", created_at=records[0].received_at,
              acknowledged_at=records[0].received_at),
        Alert(trigger="camera_offline", camera_id="LOT", created_at=at("2026-11-02T03:00:00")),
        Visit(plate_normalized="1กก99", entered_at=at("2026-11-01T10:00:00"), entry_camera_id="GATE-N",
              exited_at=at("2026-11-02T08:00:00"), exit_camera_id="LOT"),
    ])
    rebuild(db.session, BKK)  # the analytics' counts, as the pipeline keeps them for stored reads
    db.session.commit()


@pytest.fixture
def thai(app):
    """The app, whose package catalogues hold the reports' Thai."""
    return app


def audits(action_prefix: str = "reports.") -> list[AuditEntry]:
    db.session.rollback()
    return [a for a in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))
            if a.action.startswith(action_prefix)]


# --- the figures ---

def test_summary_counts_days_in_the_timezone_per_camera_and_per_day(app):
    seed()
    period = parse_period("2026-11-01", "2026-11-02", BKK, utcnow())
    assert (period.start, period.end) == (at("2026-11-01T00:00:00"), at("2026-11-03T00:00:00"))
    report = summary(db.session, period)
    assert report["totals"] == {"reads": 5, "unique_plates": 3, "hits": 2, "hits_acknowledged": 1, "alerts": 2,
                                "alerts_acknowledged": 1, "visits_entered": 1, "visits_exited": 1}
    days = {d["day"]: d for d in report["per_day"]}
    assert list(days) == [date(2026, 11, 1), date(2026, 11, 2)]
    assert (days[date(2026, 11, 1)]["reads"], days[date(2026, 11, 1)]["unique_plates"]) == (3, 2)
    assert (days[date(2026, 11, 2)]["reads"], days[date(2026, 11, 2)]["unique_plates"]) == (2, 2)
    assert days[date(2026, 11, 2)]["visits_exited"] == 1 and days[date(2026, 11, 1)]["visits_entered"] == 1
    cameras = {c["camera_id"]: c for c in report["per_camera"]}
    assert [c["camera_id"] for c in report["per_camera"]] == ["GATE-N", "LOT"]  # busiest first
    assert cameras["GATE-N"] | {} == {"camera_id": "GATE-N", "name": "ประตูเหนือ", "reads": 3, "unique_plates": 2,
                                      "hits": 1, "hits_acknowledged": 1, "alerts": 1, "visits_entered": 1,
                                      "visits_exited": 0}
    assert cameras["LOT"]["visits_exited"] == 1 and cameras["LOT"]["alerts"] == 1
    assert report["alerts_by_trigger"]["camera_offline"] == {"count": 1, "acknowledged": 0}


def test_one_camera_and_iso_times(app):
    seed()
    period = parse_period("2026-11-01T09:00", "2026-11-02T12:00:00+07:00", BKK, utcnow())
    report = summary(db.session, period, "GATE-N")
    assert report["totals"]["reads"] == 2  # 09:00 and 10:00 on the 1st; the end is excluded
    assert [c["camera_id"] for c in report["per_camera"]] == ["GATE-N"]
    assert report["camera_name"] == "ประตูเหนือ"


def test_counts_from_the_analytics_and_from_the_records_agree(app):
    """Whole hours are summed from analytics_hours; a period that starts mid-hour counts lpr_records."""
    seed()
    hourly = summary(db.session, parse_period("2026-11-01T09:00", "2026-11-02T13:00", BKK, utcnow()))
    raw = summary(db.session, parse_period("2026-11-01T08:59:30", "2026-11-02T13:00", BKK, utcnow()))
    assert hourly["totals"] == raw["totals"] and hourly["per_day"] == raw["per_day"]
    assert hourly["totals"]["reads"] == 3 and hourly["per_camera"] == raw["per_camera"]


def test_a_read_stored_by_the_pipeline_is_in_todays_report(client, make_token):
    answer = client.post("/api/records", json={"camera_id": "CAM9", "plate_number": "กข 9999"})
    assert answer.status_code in (200, 201)
    book = load_workbook(io.BytesIO(client.get("/api/reports/summary.xlsx",
                                               headers=bearer(make_token("viewer", "read"))).data))
    figures = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True) if row[0]}
    assert (figures["Reads"], figures["Unique plates"]) == (1, 1)
    assert list(book["Per camera"].iter_rows(values_only=True))[1][:4] == ("CAM9", None, 1, 1)


def test_missing_dates_mean_the_last_seven_days():
    period = parse_period(None, "", BKK, datetime(2026, 12, 3, 5, 0, tzinfo=UTC))
    assert (period.first_day, period.last_day) == (date(2026, 11, 27), date(2026, 12, 3))


# --- the files ---

def test_xlsx_cells_are_the_summary(client, make_token):
    seed()
    answer = client.get(f"/api/reports/summary.xlsx?{NOV}", headers=bearer(make_token("viewer", "read")))
    assert answer.status_code == 200
    assert answer.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="lpr-report-2026-11-01_2026-11-30.xlsx"'
    book = load_workbook(io.BytesIO(answer.data))
    assert book.sheetnames == ["Summary", "Per camera", "Per day"]
    figures = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True) if row[0]}
    assert figures["Period"] == "2026-11-01 – 2026-11-30" and figures["Cameras"] == "All cameras"
    assert (figures["Reads"], figures["Unique plates"], figures["Blacklist hits"]) == (5, 3, 2)
    assert (figures["Hits acknowledged"], figures["Alerts"], figures["Vehicles entered"]) == (1, 2, 1)
    cameras = list(book["Per camera"].iter_rows(values_only=True))
    assert cameras[0][:4] == ("Camera ID", "Camera", "Reads", "Unique plates")
    assert cameras[1][:4] == ("GATE-N", "ประตูเหนือ", 3, 2)
    assert cameras[2][:3] == ("LOT", '=HYPERLINK("x")', 2)  # text, not a formula
    assert book["Per camera"]["B3"].data_type == "s"
    days = list(book["Per day"].iter_rows(values_only=True))
    assert len(days) == 31 and days[0][:3] == ("Day", "Reads", "Unique plates")
    assert days[1][:3] == (datetime(2026, 11, 1), 3, 2) and days[2][:2] == (datetime(2026, 11, 2), 2)
    assert days[3][1] == 0


def test_xlsx_in_thai_shows_buddhist_era_days(thai, client, make_token):
    seed()
    thai.config["DATE_ERA"] = "be"
    headers = {**bearer(make_token("viewer", "read")), "Accept-Language": "th"}
    book = load_workbook(io.BytesIO(client.get(f"/api/reports/summary.xlsx?{NOV}", headers=headers).data))
    assert book.sheetnames == ["สรุป", "รายกล้อง", "รายวัน"]
    figures = {row[0]: row[1] for row in book["สรุป"].iter_rows(values_only=True) if row[0]}
    assert figures["ช่วงเวลา"] == "2569-11-01 – 2569-11-30" and figures["จำนวนการอ่านป้าย"] == 5
    assert list(book["รายวัน"].iter_rows(values_only=True))[1][:2] == ("2569-11-01", 3)


def pdf_text(data: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) is not installed")
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def render_first_page(data: bytes, name: str, tmp_path: Path) -> Path:
    """Page 1 as a PNG (pdftoppm), kept in /work/notes/shots for a person to look at."""
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    SHOTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", "-singlefile", str(path),
                    str(SHOTS / name)], check=True)
    return SHOTS / f"{name}.png"


@pytest.mark.parametrize("language", ["en", "th"])
def test_pdf_embeds_the_thai_font_and_says_the_figures(thai, client, make_token, tmp_path, language):
    seed()
    headers = {**bearer(make_token("viewer", "read")), "Accept-Language": language}
    thai.config["DATE_ERA"] = "be" if language == "th" else "ce"
    answer = client.get(f"/api/reports/summary.pdf?{NOV}", headers=headers)
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="lpr-report-2026-11-01_2026-11-30.pdf"'
    assert answer.data.startswith(b"%PDF-") and b"/FontFile2" in answer.data
    # pdftotext puts a space before some marks that HarfBuzz moved (ื of เหนือ): compare without spaces.
    text = pdf_text(answer.data, tmp_path).replace(" ", "")
    assert "ประตูเหนือ" in text  # a Thai camera name, as extracted from the shaped text
    if language == "th":
        assert "รายงานสรุปการอ่านป้ายทะเบียน" in text and "2569-11-01–2569-11-30" in text
    else:
        assert "LPRsummaryreport" in text and "2026-11-01–2026-11-30" in text
    png = render_first_page(answer.data, f"report-pdf-{language}", tmp_path)
    assert png.stat().st_size > 10_000


def test_no_thai_font_is_a_clear_error(tmp_path):
    with pytest.raises(ReportFontMissing, match="REPORT_FONT"):
        find_font(str(tmp_path / "missing.ttf"))
    regular, bold = find_font()
    assert regular.is_file() and bold.is_file()


# --- bad parameters ---

@pytest.mark.parametrize(("query", "field", "words"), [
    ("from=2026-11-31", "from", "is not a date"),
    ("from=yesterday", "from", "is not a date"),
    ("to=2026-13-01", "to", "is not a date"),
    ("from=1900-01-01", "from", "1970-2100"),
    ("from=2026-12-01&to=2026-11-01", "from", "before"),
    ("from=2026-11-01T10:00&to=2026-11-01T10:00", "from", "before"),
    ("from=2025-01-01&to=2026-01-02", "to", "366 days"),
    ("camera_id=NOPE", "camera_id", "no camera"),
])
def test_bad_parameters_answer_400_and_make_nothing(client, make_token, query, field, words):
    seed()
    token = make_token("viewer", "read")
    for kind in ("xlsx", "pdf"):
        answer = client.get(f"/api/reports/summary.{kind}?{query}", headers=bearer(token))
        assert answer.status_code == 400, (kind, query)
        error = answer.get_json()["error"]
        assert error["code"] == "validation_error" and error["field"] == field and words in error["message"]
    assert audits() == []


def test_a_year_is_allowed(client, make_token):
    answer = client.get("/api/reports/summary.xlsx?from=2024-01-01&to=2024-12-31",
                        headers=bearer(make_token("viewer", "read")))
    assert answer.status_code == 200  # 366 days of a leap year


def test_the_page_shows_a_bad_period_as_a_form_error(app, users):
    browser = PageClient(app)
    browser.login("viewer")
    answer = browser.get("/reports?preview=1&from=2026-12-01&to=2026-11-01")
    assert answer.status_code == 400 and 'id="report-error"' in answer.get_data(as_text=True)
    assert "from must be before to" in answer.get_data(as_text=True)
    answer = browser.get("/reports/download?format=doc&from=2026-11-01")
    assert answer.status_code == 400 and audits() == []


# --- who may ---

def test_every_api_route_is_walked_for_every_kind_of_caller(client, make_token):
    seed()
    callers = {"stranger": {}, "viewer": bearer(make_token("viewer")), "operator": bearer(make_token("operator")),
               "admin": bearer(make_token("admin")), "read-only token": bearer(make_token("admin", "read"))}
    for kind in ("xlsx", "pdf"):
        seen = {who: client.get(f"/api/reports/summary.{kind}?{NOV}", headers=h).status_code
                for who, h in callers.items()}
        assert seen == {"stranger": 401, "viewer": 200, "operator": 200, "admin": 200, "read-only token": 200}
    done = audits()
    assert len(done) == 8 and {a.action for a in done} == {"reports.xlsx", "reports.pdf"}
    assert done[0].detail == {"from": "2026-10-31T17:00:00+00:00", "to": "2026-11-30T17:00:00+00:00",
                              "camera_id": None, "door": "api"}


def test_every_page_route_is_walked_for_every_kind_of_caller(app, users, make_token):
    seed()
    stranger = PageClient(app)
    for path in ("/reports", "/reports?preview=1", f"/reports/download?format=pdf&{NOV}"):
        answer = stranger.get(path)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], path
    for scope in ("read", "read-write"):  # pages never take a token
        answer = PageClient(app).get(f"/reports/download?format=xlsx&{NOV}", headers=bearer(make_token("admin", scope)))
        assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    for role in ("viewer", "operator", "admin"):
        browser = PageClient(app)
        browser.login(role)
        page = browser.get("/reports")
        assert page.status_code == 200
        assert ('id="schedules"' in page.get_data(as_text=True)) == (role == "admin")
        preview = browser.get(f"/reports?preview=1&{NOV}&camera_id=GATE-N").get_data(as_text=True)
        assert 'data-total="reads">3<' in preview and "ประตูเหนือ" in preview
        download = browser.get(f"/reports/download?format=xlsx&{NOV}")
        assert download.status_code == 200 and download.headers["Content-Disposition"].startswith("attachment;")
        assert load_workbook(io.BytesIO(download.data))["Summary"]["A1"].value == "LPR summary report"
    page_audits = audits()
    assert [a.username for a in page_audits] == ["viewer", "operator", "admin"]
    assert all(a.detail["door"] == "page" for a in page_audits)


def test_the_openapi_document_describes_both_reports(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for kind, mimetype in (("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                           ("pdf", "application/pdf")):
        operation = paths[f"/api/reports/summary.{kind}"]["get"]
        assert {p["name"] for p in operation["parameters"]} == {"from", "to", "camera_id"}
        assert mimetype in operation["responses"]["200"]["content"]
        assert "400" in operation["responses"]


def test_a_month_of_days_in_the_pdf_chart(app):
    """Long periods draw one bar per day and label a dozen of them (no overlap, no failure)."""
    from flask_babel import force_locale

    from lprserver.report_pdf import report_pdf

    seed()
    report = summary(db.session, parse_period("2025-12-01", "2026-11-30", BKK, utcnow()))
    with app.test_request_context(), force_locale("en"):
        data = report_pdf(report)
    assert data.startswith(b"%PDF-") and len(report["per_day"]) == 365

