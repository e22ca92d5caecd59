"""Where alerts go (SPEC §11 "Channels"): `email:<address>`, `line:<user or group id>`, `mqtt` and
`webhook:<id>`. The alert sender (alert_sender.py) builds one AlertMessage per delivery and hands it to
`deliver`; a channel that fails raises ChannelError, and the sender retries with back-off.

Secrets (the SMTP password, the LINE channel token) come from ChannelSettings and are never put into
an error message or a log line.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CHANNEL_KINDS = ("email", "line", "mqtt", "webhook")
# The settings an admin may set on /alerts when the environment does not (SPEC §11 "Channels").
EDITABLE_SETTINGS = ("SMTP_URL", "SMTP_FROM", "LINE_CHANNEL_TOKEN")
SECRET_SETTINGS = ("SMTP_URL", "LINE_CHANNEL_TOKEN")
EMAIL_RE = re.compile(r"^[^@\s<>,;:\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
# LINE ids: a user (U), group (C) or room (R) followed by 32 hex digits.
LINE_ID_RE = re.compile(r"^[UCR][0-9a-f]{32}$")


class ChannelError(Exception):
    """A delivery failed; the message says why, with no secret in it."""


@dataclass(frozen=True)
class ChannelSettings:
    """What the channels need, from the environment and the admin's settings (channel_config.py)."""

    smtp_url: str = ""
    smtp_from: str = ""
    line_token: str = ""
    line_api_url: str = "https://api.line.me"
    mqtt_url: str = ""
    mqtt_prefix: str = "lprserver"
    public_url: str = ""
    language: str = "th"
    timezone: str = "Asia/Bangkok"
    date_era: str = "ce"  # DATE_ERA (SPEC §12): `be` shows Buddhist-era years
    timeout: float = 10.0


@dataclass(frozen=True)
class AlertMessage:
    """One alert as a person reads it, with what each channel needs.

    `event` is the alert as the live channel shows it (wire.alert_event: the alert and its record's
    JSON), which MQTT and webhooks send as it is. `image` is the read's JPEG for e-mail; `image_url` and
    `preview_url` are signed links that expire, set only when PUBLIC_URL is https (for LINE)."""

    alert_id: int
    trigger: str
    at: datetime  # when the alert was raised, UTC
    plate: str | None = None  # as read (or as corrected)
    province: str | None = None  # the province's name
    province_code: str | None = None
    camera_id: str | None = None
    camera_name: str | None = None
    location: str | None = None
    reason: str | None = None  # the blacklist entry's reason
    category: str | None = None
    record_id: int | None = None
    link: str | None = None  # PUBLIC_URL/records/<id>, or None without PUBLIC_URL
    escalation: bool = False
    repeat_count: int = 1
    detail: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] = field(default_factory=dict)
    image: bytes | None = None
    image_url: str | None = None
    preview_url: str | None = None


def parse_channel(text: Any) -> tuple[str, str | None]:
    """Split a channel such as `email:ops@example.org` into (kind, target); ValueError says what is wrong.

    `webhook:<id>` gives the id as text; whether that webhook exists is the caller's to check."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a channel is a non-empty string such as email:ops@example.org")
    text = text.strip()
    if text == "mqtt":
        return "mqtt", None
    kind, sep, target = text.partition(":")
    if not sep or kind not in CHANNEL_KINDS or kind == "mqtt":
        raise ValueError(f"unknown channel {text[:80]!r}: use email:<address>, line:<id>, mqtt or "
                         "webhook:<id>")
    if kind == "email" and not (len(target) <= 254 and EMAIL_RE.match(target)):
        raise ValueError(f"{text[:80]!r} is not an e-mail address")
    if kind == "line" and not LINE_ID_RE.match(target):
        raise ValueError(f"{text[:80]!r}: a LINE id is U, C or R followed by 32 hex digits")
    if kind == "webhook" and not (target.isascii() and target.isdigit() and 0 < len(target) < 10):
        raise ValueError(f"{text[:80]!r}: a webhook channel is webhook:<id>")
    return kind, target


def deliver(channel: str, message: AlertMessage, settings: ChannelSettings, retry_key: str) -> None:
    """Send one alert to an e-mail, LINE or MQTT channel; raise ChannelError if it did not go.

    `retry_key` is the same for every attempt of one delivery (LINE's X-Line-Retry-Key, the e-mail's
    Message-ID), so a receiver can tell a retry from a new alert. Webhooks are the sender's own."""
    kind, target = parse_channel(channel)
    if kind == "email":
        from . import email

        email.send(settings, target, message, retry_key)
    elif kind == "line":
        from . import line

        line.send(settings, target, message, retry_key)
    elif kind == "mqtt":
        from . import mqtt

        mqtt.send(settings, message)
    else:
        raise ChannelError(f"{kind} channels are sent by the alert sender itself")
