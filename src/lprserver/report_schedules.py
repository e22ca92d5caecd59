"""Scheduled reports (SPEC §12 "Reports"): a daily report (yesterday) sent after midnight in TIMEZONE,
a weekly one (last Monday to Sunday) sent on Monday, by e-mail over the alerts' SMTP settings, with the
XLSX and the PDF attached.

Exactly once, near enough, across restarts and several daemons: a schedule is leased (a conditional
UPDATE) before its report is made, and the period it sent is written in the same commit that clears the
lease. A sender that dies between the SMTP server's answer and that commit sends the period again after
the lease; the Message-ID is the same for one schedule and period, so a receiver can tell.
"""

import logging
import smtplib
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from flask import Flask
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .channel_config import channel_settings
from .channels import EMAIL_RE, ChannelError, ChannelSettings
from .channels.email import connect, parse_smtp_url
from .extensions import db
from .models import REPORT_FREQUENCIES, ReportSchedule, User, utcnow
from .report_files import make_file
from .reports import Period, labels, period_text, summary
from .sites import EVERYWHERE, Scope, scope_of

log = logging.getLogger("lprserver.reports")
LANGUAGES = ("th", "en")
MAX_RECIPIENTS = 20
SEND_AFTER = timedelta(minutes=5)  # past midnight: the day's last reads are in by then
LEASE = timedelta(minutes=10)
RETRY_AFTER = timedelta(minutes=15)
CHECK_SECONDS = 60.0


class ScheduleError(ValueError):
    """What is wrong with a schedule an admin typed; `field` names the form field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class ScheduleIn:
    frequency: str
    recipients: list[str]
    language: str
    camera_id: str | None


def parse_recipients(text: str) -> list[str]:
    """E-mail addresses separated by commas, semicolons, spaces or new lines; ScheduleError names the
    first one that is not an address."""
    found = [a for a in text.replace(";", ",").replace("\n", ",").replace(" ", ",").split(",") if a.strip()]
    if not found:
        raise ScheduleError("recipients", _("give at least one e-mail address"))
    if len(found) > MAX_RECIPIENTS:
        raise ScheduleError("recipients", _("at most %(count)s addresses", count=MAX_RECIPIENTS))
    for address in found:
        if not EMAIL_RE.match(address.strip()):
            raise ScheduleError("recipients", _("'%(address)s' is not an e-mail address",
                                                address=address.strip()[:80]))
    return list(dict.fromkeys(a.strip() for a in found))


def check_schedule(session: Session, form: dict[str, str], scope: Scope = EVERYWHERE) -> ScheduleIn:
    """Validate the schedule form (frequency, recipients, language, camera_id: one `scope` sees);
    ScheduleError."""
    from .reports import ReportError, check_camera

    frequency = (form.get("frequency") or "").strip()
    if frequency not in REPORT_FREQUENCIES:
        raise ScheduleError("frequency", _("choose daily or weekly"))
    recipients = parse_recipients(form.get("recipients") or "")
    language = (form.get("language") or "").strip()
    if language not in LANGUAGES:
        raise ScheduleError("language", _("choose Thai or English"))
    try:
        camera = check_camera(session, form.get("camera_id"), scope)
    except ReportError as exc:
        raise ScheduleError("camera_id", exc.message) from None
    return ScheduleIn(frequency, recipients, language, camera)


def latest_period(frequency: str, now: datetime, timezone: str) -> tuple[date, date]:
    """(first day, last day) of the latest complete period at `now`: yesterday, or last Monday–Sunday.
    A day counts as complete SEND_AFTER past its midnight."""
    today = (now - SEND_AFTER).astimezone(ZoneInfo(timezone)).date()
    if frequency == "daily":
        return today - timedelta(days=1), today - timedelta(days=1)
    last_sunday = today - timedelta(days=today.weekday() + 1)
    return last_sunday - timedelta(days=6), last_sunday


def add_schedule(session: Session, schedule: ScheduleIn, user_id: int | None, now: datetime,
                 timezone: str) -> ReportSchedule:
    """Keep a new schedule; its first report is the next period to complete (not one already over)."""
    row = ReportSchedule(frequency=schedule.frequency, recipients=schedule.recipients,
                         language=schedule.language, camera_id=schedule.camera_id, created_by=user_id,
                         created_at=now, last_period_end=latest_period(schedule.frequency, now, timezone)[1])
    session.add(row)
    return row


def next_send(schedule: ReportSchedule, timezone: str) -> datetime:
    """When the schedule's next report goes (about: the sender looks once a minute)."""
    zone = ZoneInfo(timezone)
    last = schedule.last_period_end or schedule.created_at.astimezone(zone).date()
    end = last + timedelta(days=1 if schedule.frequency == "daily" else 7)
    return datetime.combine(end + timedelta(days=1), time(), zone) + SEND_AFTER


# --- sending -------------------------------------------------------------------------------------------

def claim(session: Session, schedule_id: int, due_end: date, now: datetime) -> bool:
    """Lease one schedule whose period ending `due_end` is not sent yet. Commits."""
    taken = session.execute(
        update(ReportSchedule)
        .where(ReportSchedule.id == schedule_id,
               or_(ReportSchedule.lease_until.is_(None), ReportSchedule.lease_until < now),
               or_(ReportSchedule.last_period_end.is_(None), ReportSchedule.last_period_end < due_end))
        .values(lease_until=now + LEASE).execution_options(synchronize_session=False)).rowcount
    session.commit()
    return bool(taken)


def due_schedules(session: Session, now: datetime, timezone: str) -> list[tuple[int, date, date]]:
    """(id, first day, last day) of every schedule with a complete period not yet sent, not leased."""
    rows = session.execute(select(ReportSchedule.id, ReportSchedule.frequency, ReportSchedule.last_period_end)
                           .where(or_(ReportSchedule.lease_until.is_(None), ReportSchedule.lease_until < now))
                           .order_by(ReportSchedule.id)).all()
    due = []
    for schedule_id, frequency, last_end in rows:
        first, last = latest_period(frequency, now, timezone)
        if last_end is None or last_end < last:
            due.append((schedule_id, first, last))
    return due


def schedule_scope(session: Session, schedule: ReportSchedule) -> Scope:
    """The cameras a schedule reports on (SPEC §15): those of the sites of the admin who made it, when they
    are limited to sites (as they are now); every camera for an unlimited admin's schedule, or one whose
    maker is gone."""
    maker = session.get(User, schedule.created_by) if schedule.created_by is not None else None
    return scope_of(maker)


def build_mail(session: Session, schedule: ReportSchedule, first: date, last: date, config,
               channels: ChannelSettings, now: datetime) -> EmailMessage:
    """The e-mail of one schedule's period in its language: the totals in the text, both files attached."""
    zone = ZoneInfo(config["TIMEZONE"])
    period = Period(datetime.combine(first, time(), zone).astimezone(ZoneInfo("UTC")),
                    datetime.combine(last + timedelta(days=1), time(), zone).astimezone(ZoneInfo("UTC")),
                    config["TIMEZONE"])
    report = summary(session, period, schedule.camera_id, now, scope=schedule_scope(session, schedule))
    with force_locale(schedule.language):
        text = labels()
        files = [make_file(report, kind, config, period) for kind in ("xlsx", "pdf")]
        when = period_text(report, config["DATE_ERA"])
        subject = _("Daily LPR report %(period)s", period=when) if schedule.frequency == "daily" else \
            _("Weekly LPR report %(period)s", period=when)
        lines = [text["title"], f"{text['period']}: {when}"]
        if schedule.camera_id:
            lines.append(f"{text['cameras']}: {report['camera_name'] or schedule.camera_id}")
        lines += [f"{text[name]}: {value:,}" for name, value in report["totals"].items()]
        lines += ["", _("The XLSX and the PDF of this report are attached.")]
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = channels.smtp_from
    mail["To"] = ", ".join(schedule.recipients)
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = f"<report-{schedule.id}-{last:%Y%m%d}@lprserver>"  # the same if sent again
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content("\n".join(lines))
    for made in files:
        main, sub = made.mimetype.split("/")
        mail.add_attachment(made.data, maintype=main, subtype=sub, filename=made.filename)
    return mail


def send_mail(channels: ChannelSettings, mail: EmailMessage) -> None:
    """Send over SMTP_URL; ChannelError (with no password in it) when it did not go."""
    if not channels.smtp_from:
        raise ChannelError("SMTP_FROM is not set")
    server = parse_smtp_url(channels.smtp_url)
    try:
        with connect(server, channels.timeout) as smtp:
            smtp.send_message(mail)
    except smtplib.SMTPException as exc:
        raise ChannelError(f"the SMTP server refused the report: {exc.__class__.__name__}") from None
    except OSError as exc:
        raise ChannelError(f"could not send through {server.host}:{server.port}: "
                           f"{exc.__class__.__name__}") from None


def settle(session: Session, schedule_id: int, last: date, error: str | None, now: datetime) -> None:
    """Mark the period sent (and free the lease) in one commit, or keep the error and retry later."""
    values = {"last_period_end": last, "last_sent_at": now, "lease_until": None, "last_error": None} \
        if error is None else {"lease_until": now + RETRY_AFTER, "last_error": error[:255]}
    session.execute(update(ReportSchedule).where(ReportSchedule.id == schedule_id).values(**values)
                    .execution_options(synchronize_session=False))
    session.commit()


def send_due(session: Session, config, now: datetime) -> int:
    """Send every schedule's report that is due; return how many went. Commits."""
    sent = 0
    for schedule_id, first, last in due_schedules(session, now, config["TIMEZONE"]):
        if not claim(session, schedule_id, last, now):
            continue  # another sender has it, or sent it meanwhile
        schedule = session.get(ReportSchedule, schedule_id)
        if schedule is None:  # deleted meanwhile
            continue
        channels = channel_settings(session, config)
        try:
            mail = build_mail(session, schedule, first, last, config, channels, now)
            session.rollback()  # no transaction held while the SMTP server answers
            send_mail(channels, mail)
            error = None
        except ChannelError as exc:
            error = str(exc)
        except Exception as exc:  # a bad camera filter, a missing font: kept on the row, retried later
            log.exception("event=report_failed schedule_id=%s", schedule_id)
            error = f"{exc.__class__.__name__}: {exc}"
        settle(session, schedule_id, last, error, now)
        log.info("event=report_%s schedule_id=%s period_end=%s", "sent" if error is None else "not_sent",
                 schedule_id, last.isoformat())
        sent += error is None
    return sent


class ReportMailer:
    """Looks for due reports every CHECK_SECONDS in a daemon thread of the ingest daemon."""

    def __init__(self, app: Flask, interval: float = CHECK_SECONDS):
        self.app, self.interval = app, interval
        self.stopped = threading.Event()

    def start(self) -> "ReportMailer":
        threading.Thread(target=self.run, name="report-mailer", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.run_once(utcnow())
            except Exception:  # the loop outlives a database hiccup
                log.exception("event=report_round_failed")
            self.stopped.wait(self.interval)

    def run_once(self, now: datetime) -> int:
        with self.app.app_context():
            try:
                return send_due(db.session, self.app.config, now)
            finally:
                db.session.remove()


def start_report_mailer(app: Flask) -> ReportMailer | None:
    """The daemon's hook: scheduled reports go where alerts go, so only where ALERT_WORKER is on."""
    return ReportMailer(app).start() if app.config["ALERT_WORKER"] else None
