"""Alerts as data (SPEC §11): every trigger that happens is a row, whether or not a rule covers it.

The ingest pipeline adds the alerts a read raises (a blacklist hit, `not_on_list` at a gate) in the
read's transaction; the overstay and camera-offline checks add theirs. The same plate at the same camera
within ALERT_REPEAT_SECONDS is the earlier alert again (its `repeat_count` grows, nothing is delivered
again). A new alert's deliveries — one per channel of the rules that match it, and its escalations, due
when they expire — are queued in the same transaction (the outbox the alert sender drains). Callers
commit.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .alert_rules import active_rules, rule_matches
from .models import Alert, AlertDelivery, AlertRule

REPEAT_CANDIDATES = 20  # recent alerts of one plate at one camera looked at for a repeat


def raise_alert(session: Session, trigger: str, now: datetime, *, plate: str | None = None,
                province_code: str | None = None, camera_id: str | None = None, record_id: int | None = None,
                detection_id: int | None = None, visit_id: int | None = None,
                detail: dict[str, Any] | None = None) -> Alert:
    """Add one alert to the session (its id once flushed)."""
    alert = Alert(trigger=trigger, plate=plate, province_code=province_code, camera_id=camera_id,
                  record_id=record_id, detection_id=detection_id, visit_id=visit_id, detail=detail or None,
                  created_at=now, last_at=now, repeat_count=1)
    session.add(alert)
    return alert


def repeat_of(session: Session, trigger: str, plate: str, camera_id: str, now: datetime, seconds: int,
              entry_id: int | None = None) -> Alert | None:
    """The alert a new trigger repeats, counted once more (`repeat_count`, `last_at`), or None.

    A repeat is the same trigger for the same plate at the same camera (and, for a blacklist hit, the
    same entry) whose last time is within `seconds`; an acknowledged alert is not repeated."""
    if seconds <= 0:
        return None
    since = now - timedelta(seconds=seconds)
    candidates = session.scalars(
        select(Alert).where(Alert.camera_id == camera_id, Alert.plate == plate, Alert.trigger == trigger,
                            Alert.created_at >= now - timedelta(days=1))
        .order_by(Alert.id.desc()).limit(REPEAT_CANDIDATES))
    for alert in candidates:
        if alert.acknowledged_at is not None or (alert.last_at or alert.created_at) < since:
            continue
        if entry_id is not None and (alert.detail or {}).get("entry_id") != entry_id:
            continue
        alert.repeat_count = (alert.repeat_count or 1) + 1
        alert.last_at = now
        return alert
    return None


@dataclass(frozen=True)
class Raised:
    """An alert a trigger raised or repeated, with what rules match on."""

    alert: Alert
    new: bool
    category: str | None = None


class Outbox:
    """Queues the deliveries of a transaction's new alerts; the rules are read once, when first needed."""

    def __init__(self, session: Session, timezone: str):
        self.session, self.timezone = session, timezone
        self._rules: list[AlertRule] | None = None

    def rules(self) -> list[AlertRule]:
        if self._rules is None:
            self._rules = active_rules(self.session)
        return self._rules

    def queue(self, raised: list[Raised], now: datetime) -> int:
        """Queue a delivery per channel of every rule matching each new alert (flushed: alert ids are
        needed), and its escalations; return how many were queued."""
        new = [r for r in raised if r.new]
        if not new or not self.rules():
            return 0
        self.session.flush()
        queued = 0
        for item in new:
            alert = item.alert
            now_channels: dict[str, int] = {}
            later: dict[tuple[str, int], int] = {}
            for rule in self.rules():
                if not rule_matches(rule, alert.trigger, item.category, alert.camera_id, alert.created_at,
                                    self.timezone):
                    continue
                for channel in rule.channels:
                    now_channels.setdefault(channel, rule.id)
                if rule.escalate_after_minutes:
                    for channel in rule.escalate_to or []:
                        later.setdefault((channel, rule.escalate_after_minutes), rule.id)
            for channel, rule_id in now_channels.items():
                self.session.add(AlertDelivery(alert_id=alert.id, rule_id=rule_id, channel=channel,
                                               created_at=now, next_attempt_at=now))
            for (channel, minutes), rule_id in later.items():
                self.session.add(AlertDelivery(alert_id=alert.id, rule_id=rule_id, channel=channel,
                                               escalation=True, created_at=now,
                                               next_attempt_at=alert.created_at + timedelta(minutes=minutes)))
            queued += len(now_channels) + len(later)
        return queued
