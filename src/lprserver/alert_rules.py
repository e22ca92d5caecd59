"""Alert rules (SPEC §11 "Rules"): which alerts go where else, and when they escalate.

A rule has a trigger and channels (both required) and may narrow itself to blacklist categories,
cameras and active hours (`HH:MM-HH:MM` in TIMEZONE, start included, end excluded, an end before the
start running past midnight). `validate_rule` checks what `/api/alert-rules` and the `/alerts` page
receive; `rule_matches` is what the outbox (alerts.Outbox) asks of each new alert. Callers commit.
"""

import re
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from .channels import parse_channel
from .models import BLACKLIST_CATEGORIES, AlertRule, Webhook

TRIGGERS = ("blacklist", "not_on_list", "overstay", "camera_offline")
FIELDS = ("trigger", "categories", "cameras", "hours", "channels", "escalate_after_minutes",
          "escalate_to", "active", "description")
HOURS_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
MAX_ITEMS = 50  # channels, cameras or categories in one rule
MAX_ESCALATION_MINUTES = 7 * 24 * 60


class RuleInvalid(ValueError):
    """A rule that cannot be kept; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{name}: {why}" for name, why in errors.items()))
        self.errors = errors


def parse_hours(text: str) -> tuple[time, time]:
    """`22:00-06:00` as (start, end); ValueError if it is not HH:MM-HH:MM or starts where it ends."""
    found = HOURS_RE.match(text) if isinstance(text, str) else None
    if not found:
        raise ValueError("hours are HH:MM-HH:MM, e.g. 22:00-06:00")
    start = time(int(found.group(1)), int(found.group(2)))
    end = time(int(found.group(3)), int(found.group(4)))
    if start == end:
        raise ValueError("hours that start where they end cover no time: leave hours out for all day")
    return start, end


def in_hours(hours: str | None, moment: datetime, timezone: str) -> bool:
    """Whether `moment` (aware, any zone) falls in `hours` read in `timezone`; no hours is all day."""
    if not hours:
        return True
    start, end = parse_hours(hours)
    local = moment.astimezone(ZoneInfo(timezone)).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end  # across midnight


def rule_matches(rule: AlertRule, trigger: str, category: str | None, camera_id: str | None,
                 moment: datetime, timezone: str) -> bool:
    """Whether a new alert of `trigger` (a blacklist hit's entry `category`) at `camera_id`, raised at
    `moment`, is one `rule` delivers."""
    if not rule.active or rule.trigger != trigger:
        return False
    if rule.categories and category not in rule.categories:
        return False
    if rule.cameras and camera_id not in rule.cameras:
        return False
    try:
        return in_hours(rule.hours, moment, timezone)
    except ValueError:  # stored before it was checked: never matches rather than always
        return False


def active_rules(session: Session) -> list[AlertRule]:
    return list(session.scalars(select(AlertRule).where(AlertRule.active.is_(True)).order_by(AlertRule.id)))


def _strings(value: Any, name: str, errors: dict[str, str], limit: int = 64) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ITEMS or \
            not all(isinstance(v, str) and 0 < len(v.strip()) <= limit for v in value):
        errors[name] = f"a list of at most {MAX_ITEMS} non-empty strings of at most {limit} characters"
        return []
    return list(dict.fromkeys(v.strip() for v in value))


def _channels(session: Session, value: Any, name: str, errors: dict[str, str], required: bool) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value) or len(value) > MAX_ITEMS:
        errors[name] = (f"a non-empty list of at most {MAX_ITEMS} channels" if required else
                        f"a list of at most {MAX_ITEMS} channels") + \
            " such as email:ops@example.org, line:U…, mqtt or webhook:3"
        return []
    channels = []
    for item in value:
        try:
            kind, target = parse_channel(item)
        except ValueError as exc:
            errors[name] = str(exc)
            return []
        if kind == "webhook" and session.get(Webhook, int(target)) is None:
            errors[name] = f"there is no webhook {target}"
            return []
        channels.append("mqtt" if kind == "mqtt" else f"{kind}:{target}")
    return list(dict.fromkeys(channels))


def validate_rule(session: Session, body: Any, current: AlertRule | None = None) -> dict[str, Any]:
    """The fields of a rule to create (`current` None) or change, checked; RuleInvalid says what is
    wrong with each. A change may send only the fields it changes."""
    if not isinstance(body, dict):
        raise RuleInvalid({"body": "send a JSON object"})
    errors: dict[str, str] = {}
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        errors["body"] = f"unknown fields: {', '.join(str(u)[:40] for u in unknown[:10])}"
    creating = current is None
    fields: dict[str, Any] = {}
    if creating or "trigger" in body:
        if body.get("trigger") not in TRIGGERS:
            errors["trigger"] = f"one of {', '.join(TRIGGERS)}"
        else:
            fields["trigger"] = body["trigger"]
    if creating or "channels" in body:
        fields["channels"] = _channels(session, body.get("channels"), "channels", errors, required=True)
    for name in ("categories", "cameras"):
        if name in body:
            fields[name] = _strings(body[name], name, errors)
    if "escalate_to" in body:
        fields["escalate_to"] = _channels(session, body["escalate_to"], "escalate_to", errors,
                                          required=False)
    if "hours" in body:
        hours = body["hours"]
        if hours in (None, ""):
            fields["hours"] = None
        else:
            try:
                parse_hours(hours)
                fields["hours"] = hours
            except ValueError as exc:
                errors["hours"] = str(exc)
    if "escalate_after_minutes" in body:
        minutes = body["escalate_after_minutes"]
        if minutes is None:
            fields["escalate_after_minutes"] = None
        elif isinstance(minutes, bool) or not isinstance(minutes, int) or \
                not 1 <= minutes <= MAX_ESCALATION_MINUTES:
            errors["escalate_after_minutes"] = f"whole minutes from 1 to {MAX_ESCALATION_MINUTES}, or null"
        else:
            fields["escalate_after_minutes"] = minutes
    if "active" in body:
        if not isinstance(body["active"], bool):
            errors["active"] = "true or false"
        else:
            fields["active"] = body["active"]
    if "description" in body:
        text = body["description"]
        if text is not None and (not isinstance(text, str) or len(text) > 255):
            errors["description"] = "text of at most 255 characters, or null"
        else:
            fields["description"] = text.strip() or None if isinstance(text, str) else None
    trigger = fields.get("trigger", current.trigger if current else None)
    categories = fields.get("categories", current.categories if current else [])
    if categories and "categories" not in errors:
        unknown_categories = [c for c in categories if c not in BLACKLIST_CATEGORIES]
        if trigger != "blacklist":
            errors["categories"] = "categories are a blacklist entry's: only a blacklist rule has them"
        elif unknown_categories:
            errors["categories"] = f"{unknown_categories[0][:40]!r} is not a category: use " \
                                   f"{', '.join(BLACKLIST_CATEGORIES)}"
    after = fields.get("escalate_after_minutes", current.escalate_after_minutes if current else None)
    to = fields.get("escalate_to", current.escalate_to if current else [])
    if after and not to and "escalate_after_minutes" not in errors and "escalate_to" not in errors:
        errors["escalate_to"] = "where to escalate: at least one channel with escalate_after_minutes"
    if to and not after and "escalate_after_minutes" not in errors and "escalate_to" not in errors:
        errors["escalate_after_minutes"] = "after how many minutes unacknowledged to escalate"
    if errors:
        raise RuleInvalid(errors)
    return fields


def apply_rule(rule: AlertRule, fields: dict[str, Any], now: datetime) -> AlertRule:
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.categories = rule.categories or []
    rule.cameras = rule.cameras or []
    rule.escalate_to = rule.escalate_to or []
    if rule.active is None:
        rule.active = True
    rule.updated_at = now
    return rule


def rule_json(rule: AlertRule) -> dict[str, Any]:
    """A rule as SPEC §11 shows it."""
    return {"id": rule.id, "trigger": rule.trigger, "categories": rule.categories or [],
            "cameras": rule.cameras or [], "hours": rule.hours, "channels": rule.channels or [],
            "escalate_after_minutes": rule.escalate_after_minutes, "escalate_to": rule.escalate_to or [],
            "active": bool(rule.active), "description": rule.description,
            "created_at": rule.created_at.isoformat() if rule.created_at else None,
            "updated_at": rule.updated_at.isoformat() if rule.updated_at else None}
