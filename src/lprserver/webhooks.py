"""Webhooks: queue events in the caller's transaction, deliver them later, signed, with retries.

Ingest only inserts queue rows (in the same transaction as the read, so an
event exists exactly when its read does). The delivery worker, a thread of the
ingest daemon, POSTs them with short timeouts: a receiver that hangs or fails
costs the worker time, never a camera.
"""

import hashlib
import hmac
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .extensions import db
from .models import Webhook, WebhookDelivery, utcnow

log = logging.getLogger("lprserver.webhooks")
SIGNATURE_HEADER = "X-LPR-Signature"
MAX_BACKOFF = timedelta(hours=1)


def new_secret() -> str:
    """Return a new signing key for a webhook."""
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes) -> str:
    """Return the signature header value of a body: 'sha256=<hex HMAC-SHA256>'."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Tell whether a signature header matches a body (what a receiver does)."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header)


def encode(payload: dict[str, Any]) -> bytes:
    """Return the exact bytes that are sent and signed."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def enqueue(session: Session, events: list[tuple[str, dict[str, Any]]], now: datetime) -> int:
    """Queue (event, data) pairs for every active webhook that wants them; return how many were queued."""
    hooks = list(session.scalars(select(Webhook).where(Webhook.active.is_(True))))
    queued = 0
    for event, data in events:
        for hook in hooks:
            if event in hook.events:
                payload = {"event": event, "created_at": now.isoformat(), "data": data}
                session.add(WebhookDelivery(webhook_id=hook.id, event=event, payload=payload,
                                            created_at=now, next_attempt_at=now))
                queued += 1
    return queued


@dataclass(frozen=True)
class DeliverySettings:
    timeout: float = 5.0
    max_attempts: int = 8
    retry_base: float = 10.0
    poll_interval: float = 1.0
    batch: int = 20

    @classmethod
    def from_config(cls, config) -> "DeliverySettings":
        return cls(
            timeout=float(config.get("WEBHOOK_TIMEOUT", cls.timeout)),
            max_attempts=int(config.get("WEBHOOK_MAX_ATTEMPTS", cls.max_attempts)),
            retry_base=float(config.get("WEBHOOK_RETRY_BASE", cls.retry_base)),
            poll_interval=float(config.get("WEBHOOK_POLL_INTERVAL", cls.poll_interval)),
        )

    def backoff(self, attempts: int) -> timedelta:
        """Wait retry_base, then twice that, four times... after each failed attempt (at most an hour)."""
        return min(timedelta(seconds=self.retry_base * 2 ** (attempts - 1)), MAX_BACKOFF)


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    url: str
    secret: str
    event: str
    payload: dict[str, Any]


def claim_due(session: Session, settings: DeliverySettings, now: datetime) -> list[Attempt]:
    """Take the deliveries that are due, leasing each so that no second worker sends it too."""
    rows = session.execute(
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(settings.batch)
    ).all()
    lease = now + timedelta(seconds=settings.timeout * 2 + 5)
    claimed = []
    for delivery, hook in rows:
        taken = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id,
                   WebhookDelivery.next_attempt_at == delivery.next_attempt_at,
                   WebhookDelivery.status == "pending")
            .values(next_attempt_at=lease).execution_options(synchronize_session=False)
        ).rowcount
        if taken:
            claimed.append(Attempt(delivery.id, hook.url, hook.secret, delivery.event, delivery.payload))
    session.commit()
    return claimed


def send(attempt: Attempt, timeout: float) -> tuple[int | None, str | None]:
    """POST one delivery; return (status code, error) — no exception escapes."""
    body = encode(attempt.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "lprserver-webhooks/1",
        "X-LPR-Event": attempt.event,
        "X-LPR-Delivery": str(attempt.delivery_id),
        SIGNATURE_HEADER: sign(attempt.secret, body),
    }
    try:
        response = requests.post(attempt.url, data=body, headers=headers, timeout=timeout,
                                 allow_redirects=False)
        response.close()
    except requests.RequestException as exc:
        return None, f"{exc.__class__.__name__}: {exc}"[:255]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def record_attempt(session: Session, delivery_id: int, status_code: int | None, error: str | None,
                   settings: DeliverySettings, now: datetime) -> None:
    """Write the outcome of one attempt into the delivery log; schedule a retry if one is left."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:  # its webhook was deleted meanwhile
        return
    delivery.last_status_code = status_code
    settle(delivery, error, settings.max_attempts, settings.backoff, now)


def settle(delivery, error: str | None, max_attempts: int, backoff, now: datetime) -> None:
    """Count one attempt of a queued delivery (a webhook's or an alert's): `delivered`, `failed` after
    `max_attempts`, or due again after `backoff(attempts)`."""
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_error = now, error
    if error is None:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
    elif delivery.attempts >= max_attempts:
        delivery.status, delivery.next_attempt_at = "failed", None
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)


class DeliveryWorker:
    """Drains the delivery queue in a background thread (a greenlet under gevent or eventlet)."""

    def __init__(self, app: Flask, settings: DeliverySettings | None = None):
        self.app = app
        self.settings = settings or DeliverySettings.from_config(app.config)
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> "DeliveryWorker":
        self.thread = threading.Thread(target=self.run, name="webhook-delivery", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                sent = self.run_once()
            except Exception:  # the worker must outlive a database hiccup
                log.exception("webhook delivery round failed")
                sent = 0
            if not sent:
                self.stopped.wait(self.settings.poll_interval)

    def run_once(self) -> int:
        """Send every delivery that is due now, at once; return how many were attempted."""
        with self.app.app_context():
            attempts = claim_due(db.session, self.settings, utcnow())
            db.session.remove()  # hold no connection or transaction while waiting on receivers
            outcomes = self._send_all(attempts)
            for attempt, (status_code, error) in zip(attempts, outcomes, strict=True):
                if error:
                    log.info("webhook delivery %s to %s failed: %s", attempt.delivery_id, attempt.url, error)
                record_attempt(db.session, attempt.delivery_id, status_code, error, self.settings, utcnow())
            db.session.commit()
            db.session.remove()
        return len(attempts)

    def _send_all(self, attempts: list[Attempt]) -> list[tuple[int | None, str | None]]:
        # In parallel, so that one receiver that hangs holds the others back by one timeout at most.
        outcomes: list[tuple[int | None, str | None]] = [(None, "not sent")] * len(attempts)

        def send_one(index: int) -> None:
            outcomes[index] = send(attempts[index], self.settings.timeout)

        threads = [threading.Thread(target=send_one, args=(i,), daemon=True) for i in range(len(attempts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.settings.timeout * 2 + 5)
        return outcomes

def enqueue_test(session: Session, hook: Webhook, now: datetime) -> WebhookDelivery:
    """Queue a `ping` event for one webhook, whatever events it wants."""
    delivery = WebhookDelivery(webhook_id=hook.id, event="ping", created_at=now, next_attempt_at=now,
                               payload={"event": "ping", "created_at": now.isoformat(),
                                        "data": {"webhook_id": hook.id}})
    session.add(delivery)
    session.flush()
    return delivery
