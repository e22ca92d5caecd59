"""The alert sender (SPEC §11 "Delivery"): drains the outbox the pipeline and the checks write, off
every camera's path, in a thread of the ingest daemon.

Each round claims the deliveries that are due (leasing them, so a second sender never sends one too),
builds each one's message, sends them in parallel and writes every attempt (`alert_attempts`) at once,
one commit per delivery as soon as its answer is in: a sender killed mid-round resends, after its
lease, only what it had not written yet — and for those the retry key (LINE's X-Line-Retry-Key, the
e-mail's Message-ID) lets the receiver tell. A failed attempt is retried with back-off; after
ALERT_MAX_ATTEMPTS the delivery is `failed`. An escalation is due when it expires, and is `cancelled`
if its alert was acknowledged by then.
"""

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .channel_config import channel_settings
from .channels import AlertMessage, ChannelError, ChannelSettings, deliver, parse_channel
from .extensions import db
from .image_store import ImageStore, image_store_for
from .models import Alert, AlertAttempt, AlertDelivery, BlacklistEntry, Camera, Record, Webhook, utcnow
from .plates import province_by_code
from .webhooks import Attempt as WebhookAttempt
from .webhooks import send as send_webhook
from .webhooks import settle
from .wire import alert_event, record_json

log = logging.getLogger("lprserver.alerts")
MAX_BACKOFF = timedelta(hours=1)
WAKING_EVENTS = frozenset(("blacklist_alert", "alert"))  # the live events of a new (or repeated) alert
RETRY_NAMESPACE = uuid.UUID("6f1c2b52-8d0e-4c55-9a59-5c1f0e7d3a21")


@dataclass(frozen=True)
class SenderSettings:
    timeout: float = 10.0
    max_attempts: int = 10
    retry_base: float = 5.0
    poll_interval: float = 0.5
    batch: int = 50
    image_link_hours: float = 24.0

    @classmethod
    def from_config(cls, config) -> "SenderSettings":
        return cls(timeout=config["ALERT_TIMEOUT"], max_attempts=config["ALERT_MAX_ATTEMPTS"],
                   retry_base=config["ALERT_RETRY_BASE"], poll_interval=config["ALERT_POLL_INTERVAL"],
                   batch=config["ALERT_BATCH"], image_link_hours=config["ALERT_IMAGE_LINK_HOURS"])

    def backoff(self, attempts: int) -> timedelta:
        """retry_base after the first failure, then twice as long each time, at most an hour."""
        return min(timedelta(seconds=self.retry_base * 2 ** (attempts - 1)), MAX_BACKOFF)


@dataclass(frozen=True)
class Job:
    """One claimed delivery, ready to send."""

    delivery_id: int
    alert_id: int
    channel: str
    message: AlertMessage
    webhook: tuple[str, str] | None = None  # (url, secret) of a webhook channel

    @property
    def retry_key(self) -> str:
        """The same for every attempt of one delivery."""
        return str(uuid.uuid5(RETRY_NAMESPACE, f"alert-delivery-{self.delivery_id}"))


def claim_due(session: Session, settings: SenderSettings, now: datetime) -> list[AlertDelivery]:
    """Lease the deliveries that are due now; cancel the escalations of acknowledged alerts. Commits."""
    rows = session.scalars(
        select(AlertDelivery).where(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now)
        .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id).limit(settings.batch)).all()
    lease = now + timedelta(seconds=settings.timeout * 2 + 5)
    claimed = []
    for delivery in rows:
        taken = session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.id == delivery.id, AlertDelivery.status == "pending",
                   AlertDelivery.next_attempt_at == delivery.next_attempt_at)
            .values(next_attempt_at=lease).execution_options(synchronize_session=False)).rowcount
        if taken:
            claimed.append(delivery.id)
    session.commit()
    if not claimed:
        return []
    deliveries = list(session.scalars(select(AlertDelivery).where(AlertDelivery.id.in_(claimed))
                                      .order_by(AlertDelivery.id)))
    alerts = {a.id: a for a in session.scalars(
        select(Alert).where(Alert.id.in_({d.alert_id for d in deliveries})))}
    due = []
    for delivery in deliveries:
        if delivery.escalation and alerts[delivery.alert_id].acknowledged_at is not None:
            delivery.status, delivery.next_attempt_at = "cancelled", None
        else:
            due.append(delivery)
    session.commit()
    return due


def build_jobs(session: Session, deliveries: list[AlertDelivery], channels: ChannelSettings,
               store: ImageStore, settings: SenderSettings, secret_key: str,
               now: datetime) -> list[Job]:
    """Look up what each delivery's message says: its alert, read, camera, entry and image."""
    alerts = {a.id: a for a in session.scalars(
        select(Alert).where(Alert.id.in_({d.alert_id for d in deliveries})))}
    record_ids = {a.record_id for a in alerts.values() if a.record_id is not None}
    records = {r.id: r for r in session.scalars(select(Record).where(Record.id.in_(record_ids)))} \
        if record_ids else {}
    camera_ids = {a.camera_id for a in alerts.values() if a.camera_id}
    cameras = {c.id: c for c in session.scalars(select(Camera).where(Camera.id.in_(camera_ids)))} \
        if camera_ids else {}
    entry_ids = {(a.detail or {}).get("entry_id") for a in alerts.values()} - {None}
    entries = {e.id: e for e in session.scalars(
        select(BlacklistEntry).where(BlacklistEntry.id.in_(entry_ids)))} if entry_ids else {}
    hook_ids = set()
    for delivery in deliveries:
        kind, target = _channel(delivery.channel)
        if kind == "webhook":
            hook_ids.add(int(target))
    hooks = {h.id: h for h in session.scalars(select(Webhook).where(Webhook.id.in_(hook_ids)))} \
        if hook_ids else {}
    jobs = []
    for delivery in deliveries:
        alert = alerts[delivery.alert_id]
        kind, target = _channel(delivery.channel)
        message = _message(alert, records.get(alert.record_id), cameras.get(alert.camera_id),
                           entries.get((alert.detail or {}).get("entry_id")), delivery, channels, store,
                           kind, settings, secret_key, now)
        hook = hooks.get(int(target)) if kind == "webhook" and target else None
        jobs.append(Job(delivery.id, alert.id, delivery.channel, message,
                        (hook.url, hook.secret) if hook is not None and hook.active else None))
    return jobs


def _channel(text: str) -> tuple[str | None, str | None]:
    try:
        return parse_channel(text)
    except ValueError:
        return None, None


def _message(alert: Alert, record: Record | None, camera: Camera | None, entry: BlacklistEntry | None,
             delivery: AlertDelivery, channels: ChannelSettings, store: ImageStore,
             kind: str | None, settings: SenderSettings, secret_key: str, now: datetime) -> AlertMessage:
    shown = record_json(record, camera.name if camera else None) if record is not None else None
    province = province_by_code(alert.province_code)
    image, image_url, preview_url = None, None, None
    if record is not None and record.image_path:
        if kind == "email":
            image = _read_image(store, record.image_path)
        elif kind == "line":
            from .alert_images import image_links

            links = image_links(channels.public_url, secret_key, record.id, now, settings.image_link_hours)
            if links:
                image_url, preview_url = links
    detail = alert.detail or {}
    return AlertMessage(
        alert_id=alert.id, trigger=alert.trigger, at=alert.created_at,
        plate=(record.plate_corrected or record.plate_number) if record is not None else alert.plate,
        province=(province.name_th if channels.language == "th" else province.name_en) if province else None,
        province_code=alert.province_code, camera_id=alert.camera_id,
        camera_name=camera.name if camera else detail.get("camera_name"),
        location=(record.location if record is not None and record.location else
                  camera.location if camera else None),
        reason=entry.reason if entry else None, category=entry.category if entry else detail.get("category"),
        record_id=alert.record_id,
        link=f"{channels.public_url}/records/{alert.record_id}" if channels.public_url and alert.record_id
        else None,
        escalation=delivery.escalation, repeat_count=alert.repeat_count or 1, detail=detail,
        event=alert_event(alert, shown), image=image, image_url=image_url, preview_url=preview_url)


def _read_image(store: ImageStore, rel: str) -> bytes | None:
    try:
        return store.read(rel)
    except (OSError, ValueError):
        # Removed by retention meanwhile, or the object store is down: the message goes without it.
        return None


def send_job(job: Job, channels: ChannelSettings) -> str | None:
    """Send one delivery; return None if it went, else why not (no secret in it). Never raises."""
    try:
        kind, _ = parse_channel(job.channel)
        if kind == "webhook":
            if job.webhook is None:
                return "the webhook no longer exists or is switched off"
            url, secret = job.webhook
            payload = {"event": "alert", "created_at": job.message.at.isoformat(), "data": job.message.event}
            status, error = send_webhook(WebhookAttempt(job.delivery_id, url, secret, "alert", payload),
                                         channels.timeout)
            return error
        deliver(job.channel, job.message, channels, job.retry_key)
        return None
    except ChannelError as exc:
        return str(exc)[:255] or exc.__class__.__name__
    except ValueError as exc:
        return f"bad channel: {exc}"[:255]
    except Exception as exc:  # a channel's bug must not stop the sender; the type only, no secrets
        log.exception("event=alert_channel_crashed channel_kind=%s", job.channel.split(":")[0])
        return f"{exc.__class__.__name__} in the {job.channel.split(':')[0]} channel"[:255]


def record_attempt(session: Session, job: Job, error: str | None, settings: SenderSettings,
                   now: datetime) -> None:
    """Write one attempt and the delivery's new state; schedule a retry if one is left."""
    delivery = session.get(AlertDelivery, job.delivery_id)
    if delivery is None:  # its alert was deleted meanwhile
        return
    session.add(AlertAttempt(delivery_id=delivery.id, alert_id=delivery.alert_id, channel=delivery.channel,
                             at=now, ok=error is None, error=error))
    settle(delivery, error, settings.max_attempts, settings.backoff, now)


class AlertSender:
    """Drains the alert outbox in a background thread (a greenlet under gevent or eventlet)."""

    def __init__(self, app: Flask, settings: SenderSettings | None = None):
        self.app = app
        self.settings = settings or SenderSettings.from_config(app.config)
        self.store = image_store_for(app)
        self.stopped = threading.Event()
        self.woken = threading.Event()

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll: a new alert may have queued deliveries."""
        self.woken.set()

    def waking(self, notify: Callable[[str, dict], None] | None) -> Callable[[str, dict], None]:
        """`notify` (the daemon's live events) that also wakes the sender on an alert's event, which comes
        after the transaction that queued its deliveries committed."""
        def notify_and_wake(event: str, data: dict) -> None:
            if notify is not None:
                notify(event, data)
            if event in WAKING_EVENTS:
                self.woken.set()
        return notify_and_wake

    def start(self) -> "AlertSender":
        threading.Thread(target=self.run, name="alert-sender", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.woken.set()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                sent = self.run_once()
            except Exception:  # the sender must outlive a database hiccup
                log.exception("event=alert_round_failed")
                sent = 0
            if not sent:
                self.woken.wait(self.settings.poll_interval)
            self.woken.clear()

    def run_once(self) -> int:
        """Send every delivery that is due now, at once; return how many were attempted."""
        with self.app.app_context():
            try:
                now = utcnow()
                due = claim_due(db.session, self.settings, now)
                if not due:
                    return 0
                channels = channel_settings(db.session, self.app.config)
                jobs = build_jobs(db.session, due, channels, self.store, self.settings,
                                  self.app.config["SECRET_KEY"], now)
                db.session.commit()
            finally:
                db.session.remove()  # no connection held while waiting on the channels
        threads = [threading.Thread(target=self._send_and_record, args=(job, channels), daemon=True)
                   for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.settings.timeout * 2 + 5)
        return len(jobs)

    def _send_and_record(self, job: Job, channels: ChannelSettings) -> None:
        error = send_job(job, channels)
        if error:
            log.info("event=alert_delivery_failed alert_id=%s delivery_id=%s channel_kind=%s error=%r",
                     job.alert_id, job.delivery_id, job.channel.split(":")[0], error)
        else:
            log.info("event=alert_delivered alert_id=%s delivery_id=%s channel_kind=%s", job.alert_id,
                     job.delivery_id, job.channel.split(":")[0])
        try:
            with self.app.app_context():
                try:
                    record_attempt(db.session, job, error, self.settings, utcnow())
                    db.session.commit()
                finally:
                    db.session.remove()
        except Exception:  # written again after the lease: the retry key tells the receiver
            log.exception("event=alert_attempt_not_recorded delivery_id=%s", job.delivery_id)


def queue_counts(session: Session) -> dict[str, Any]:
    """How many deliveries wait and how many failed (for /alerts and /health)."""
    from sqlalchemy import func

    return dict(session.execute(select(AlertDelivery.status, func.count()).group_by(AlertDelivery.status))
                .all())
