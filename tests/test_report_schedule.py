"""Scheduled reports (SPEC §12 "Reports"): admins keep daily or weekly reports by e-mail on /reports (the
form refuses bad addresses, frequencies and languages and stores nothing, CSRF included); the report
mailer sends the period's XLSX and PDF to a real SMTP server (aiosmtpd, STARTTLS and a login), once:
not again after a restart, not by a second sender while one holds the lease."""

import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, select

from lprserver.analytics_counts import rebuild
from lprserver.extensions import db
from lprserver.models import AuditEntry, Camera, Record, ReportSchedule
from lprserver.report_schedules import (
    LEASE,
    RETRY_AFTER,
    ReportMailer,
    ScheduleIn,
    add_schedule,
    claim,
    latest_period,
    next_send,
)

from . import mailserver as smtp_server
from . import test_reports
from .webserver import PageClient

mail_ca, mailserver = smtp_server.mail_ca, smtp_server.mailserver
thai = test_reports.thai  # the Thai catalogue fragment laid over the package's
BKK = "Asia/Bangkok"
# Tuesday 1 December 2026, 00:10 in Bangkok.
TUESDAY = datetime(2026, 11, 30, 17, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_schedules(app):
    """report_schedules is not among conftest's tables to empty (yet): empty it here."""
    db.session.execute(delete(ReportSchedule))
    db.session.commit()
    yield
    db.session.rollback()
    db.session.execute(delete(ReportSchedule))
    db.session.commit()


def schedules() -> list[ReportSchedule]:
    db.session.rollback()
    return list(db.session.scalars(select(ReportSchedule).order_by(ReportSchedule.id)))


# --- the periods ---

@pytest.mark.parametrize(("now", "daily", "weekly"), [
    (TUESDAY, (date(2026, 11, 30),) * 2, (date(2026, 11, 23), date(2026, 11, 29))),
    # Monday 30 November 00:04 in Bangkok: not yet past SEND_AFTER, so still Saturday and the week before
    (datetime(2026, 11, 29, 17, 4, tzinfo=UTC), (date(2026, 11, 28),) * 2, (date(2026, 11, 16), date(2026, 11, 22))),
    # Monday 00:06: Sunday and the week that ended on it
    (datetime(2026, 11, 29, 17, 6, tzinfo=UTC), (date(2026, 11, 29),) * 2, (date(2026, 11, 23), date(2026, 11, 29))),
])
def test_latest_period_is_yesterday_or_last_monday_to_sunday(now, daily, weekly):
    assert latest_period("daily", now, BKK) == daily
    assert latest_period("weekly", now, BKK) == weekly


def test_a_new_schedule_waits_for_the_next_period(app):
    row = add_schedule(db.session, ScheduleIn("weekly", ["a@example.org"], "th", None), None, TUESDAY, BKK)
    db.session.commit()
    assert row.last_period_end == date(2026, 11, 29)
    assert next_send(row, BKK) == datetime(2026, 12, 7, 0, 5, tzinfo=ZoneInfo(BKK))  # the Monday after next


# --- the form ---

def form(browser: PageClient, page: str = "/reports", **fields) -> dict:
    return {"frequency": "daily", "recipients": "ops@example.org", "language": "th", "camera_id": "",
            "csrf_token": browser.token(page), **fields}


@pytest.mark.parametrize(("fields", "words"), [
    ({"recipients": "ops@example.org, not-an-address"}, "'not-an-address' is not an e-mail address"),
    ({"recipients": "  "}, "give at least one e-mail address"),
    ({"recipients": "a@b"}, "'a@b' is not an e-mail address"),
    ({"recipients": ", ".join(f"u{i}@example.org" for i in range(21))}, "at most 20 addresses"),
    ({"frequency": "hourly"}, "choose daily or weekly"),
    ({"language": "fr"}, "choose Thai or English"),
    ({"camera_id": "NOPE"}, "there is no camera 'NOPE'"),
])
def test_a_bad_schedule_is_a_form_error_and_stores_nothing(app, users, fields, words):
    admin = PageClient(app)
    admin.login("admin")
    answer = admin.post("/reports/schedules", data=form(admin, **fields))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and 'id="schedule-error"' in page and words.replace("'", "&#39;") in page
    assert schedules() == []


def test_a_schedule_without_the_csrf_token_is_refused(app, users):
    admin = PageClient(app)
    admin.login("admin")
    data = form(admin)
    del data["csrf_token"]
    assert admin.post("/reports/schedules", data=data).status_code == 400
    assert schedules() == []


def test_who_may_schedule_and_delete(app, users, make_token):
    db.session.add(Camera(id="GATE-N", name="ประตูเหนือ"))
    db.session.commit()
    stranger = PageClient(app)
    answer = stranger.post("/reports/schedules", data=form(stranger, "/login"))
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    answer = PageClient(app).post("/reports/schedules", data={"frequency": "daily", "recipients": "a@example.org",
                                                             "language": "th"},
                                  headers={"Authorization": f"Bearer {make_token('admin')}"})
    assert answer.status_code in (302, 400)  # pages never take a token
    for role in ("viewer", "operator"):
        browser = PageClient(app)
        browser.login(role)
        assert browser.post("/reports/schedules", data=form(browser)).status_code == 403
    assert schedules() == []
    admin = PageClient(app)
    admin.login("admin")
    answer = admin.post("/reports/schedules", data=form(admin, recipients="ops@example.org;\nboss@example.org",
                                                        frequency="weekly", camera_id="GATE-N"))
    assert answer.status_code == 302
    [row] = schedules()
    assert (row.frequency, row.recipients, row.language, row.camera_id) == \
        ("weekly", ["ops@example.org", "boss@example.org"], "th", "GATE-N")
    page = admin.get("/reports").get_data(as_text=True)
    assert f'data-schedule-id="{row.id}"' in page and "ops@example.org, boss@example.org" in page
    for role in ("viewer", "operator"):
        browser = PageClient(app)
        browser.login(role)
        assert browser.post(f"/reports/schedules/{row.id}/delete",
                            data={"csrf_token": browser.token("/reports")}).status_code == 403
    assert admin.post(f"/reports/schedules/{row.id}/delete",
                      data={"csrf_token": admin.token("/reports")}).status_code == 302
    assert schedules() == []
    actions = [a.action for a in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))
               if a.action.startswith("report_schedule.")]
    assert actions == ["report_schedule.add", "report_schedule.delete"]


# --- sending ---

@pytest.fixture
def smtp(app, mailserver):
    app.config["SMTP_URL"] = mailserver.url("lpr", "s3cret%20pass")
    app.config["SMTP_FROM"] = "LPR <lpr@example.org>"
    return mailserver


def yesterday_reads() -> None:
    db.session.add(Camera(id="GATE-N", name="ประตูเหนือ"))
    db.session.flush()
    for i in range(3):  # Monday 30 November in Bangkok
        moment = datetime(2026, 11, 30, 2 + i, tzinfo=UTC)
        db.session.add(Record(camera_id="GATE-N", event_id=f"e{i}", plate_number="กข1234",
                              plate_normalized="กข1234", captured_at=moment, received_at=moment))
    rebuild(db.session, BKK)  # the analytics' counts, as the pipeline keeps them for stored reads
    db.session.commit()


def daily(language: str = "en", last_end: date = date(2026, 11, 29)) -> int:
    row = ReportSchedule(frequency="daily", recipients=["ops@example.org", "boss@example.org"], language=language,
                         created_at=TUESDAY - timedelta(days=3), last_period_end=last_end)
    db.session.add(row)
    db.session.commit()
    return row.id


def test_a_daily_report_arrives_once_with_both_files(thai, smtp):
    app = thai
    yesterday_reads()
    schedule_id = daily("th")
    assert ReportMailer(app).run_once(TUESDAY) == 1
    [mail] = smtp.messages
    assert mail.tls and sorted(mail.rcpt_tos) == ["boss@example.org", "ops@example.org"]
    message = mail.message
    assert message["Subject"] == "รายงานการอ่านป้ายทะเบียนประจำวัน 2026-11-30"
    assert "จำนวนการอ่านป้าย: 3" in message.get_body(("plain",)).get_content()
    assert message["Message-ID"] == f"<report-{schedule_id}-20261130@lprserver>"
    files = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(files) == {"lpr-report-2026-11-30_2026-11-30.xlsx", "lpr-report-2026-11-30_2026-11-30.pdf"}
    book = load_workbook(io.BytesIO(files["lpr-report-2026-11-30_2026-11-30.xlsx"].get_content()))
    assert list(book.worksheets[2].iter_rows(values_only=True))[1][1] == 3  # three reads that day
    pdf = files["lpr-report-2026-11-30_2026-11-30.pdf"]
    assert pdf.get_content_type() == "application/pdf" and pdf.get_content().startswith(b"%PDF-")
    assert b"/FontFile2" in pdf.get_content()
    [row] = schedules()
    assert (row.last_period_end, row.lease_until, row.last_error) == (date(2026, 11, 30), None, None)
    # A restart: a new mailer, later the same day, sends nothing more.
    assert ReportMailer(app).run_once(TUESDAY + timedelta(hours=3)) == 0
    assert len(smtp.messages) == 1
    # The next day, the next report.
    assert ReportMailer(app).run_once(TUESDAY + timedelta(days=1)) == 1
    assert len(smtp.messages) == 2 and smtp.messages[1].message["Message-ID"] == \
        f"<report-{schedule_id}-20261201@lprserver>"


def test_a_leased_schedule_is_left_to_its_sender_until_the_lease_runs_out(app, smtp):
    yesterday_reads()
    schedule_id = daily()
    assert claim(db.session, schedule_id, date(2026, 11, 30), TUESDAY)  # a sender that then died
    assert not claim(db.session, schedule_id, date(2026, 11, 30), TUESDAY)
    assert ReportMailer(app).run_once(TUESDAY + timedelta(minutes=1)) == 0
    assert smtp.messages == []
    # After the lease, the period goes (once), with the Message-ID the dead sender would have used.
    assert ReportMailer(app).run_once(TUESDAY + LEASE + timedelta(seconds=1)) == 1
    assert [m.message["Message-ID"] for m in smtp.messages] == [f"<report-{schedule_id}-20261130@lprserver>"]


def test_a_refused_report_is_kept_as_an_error_and_retried(app, smtp):
    yesterday_reads()
    daily()
    app.config["SMTP_URL"] = smtp.url("lpr", "wrong")
    assert ReportMailer(app).run_once(TUESDAY) == 0
    [row] = schedules()
    assert row.last_period_end == date(2026, 11, 29) and "refused" in row.last_error
    assert "wrong" not in row.last_error
    app.config["SMTP_URL"] = smtp.url("lpr", "s3cret%20pass")
    assert ReportMailer(app).run_once(TUESDAY + timedelta(minutes=1)) == 0  # waits RETRY_AFTER
    assert ReportMailer(app).run_once(TUESDAY + RETRY_AFTER + timedelta(seconds=1)) == 1
    assert len(smtp.messages) == 1 and schedules()[0].last_error is None
