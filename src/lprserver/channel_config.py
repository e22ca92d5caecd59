"""The channels' settings (SPEC §11 "Channels"): from the environment, or set by an admin on /alerts.

The environment wins: a setting it gives cannot be changed on the page. Callers commit."""

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .channels import EDITABLE_SETTINGS, SECRET_SETTINGS, ChannelSettings
from .models import ChannelSetting


def stored_settings(session: Session) -> dict[str, str]:
    """The settings admins set on /alerts, by name."""
    return dict(session.execute(select(ChannelSetting.name, ChannelSetting.value)).all())


def channel_settings(session: Session, config) -> ChannelSettings:
    """What the channels use now: each editable setting from the environment, else from the database."""
    stored = stored_settings(session)

    def pick(name: str) -> str:
        return config.get(name) or stored.get(name, "")

    return ChannelSettings(
        smtp_url=pick("SMTP_URL"), smtp_from=pick("SMTP_FROM"), line_token=pick("LINE_CHANNEL_TOKEN"),
        line_api_url=config["LINE_API_URL"], mqtt_url=config["MQTT_URL"],
        mqtt_prefix=config["MQTT_TOPIC_PREFIX"], public_url=config["PUBLIC_URL"],
        language=config["DEFAULT_LANGUAGE"], timezone=config["TIMEZONE"], date_era=config["DATE_ERA"],
        timeout=config["ALERT_TIMEOUT"])


def set_channel_setting(session: Session, name: str, value: str | None, user_id: int | None,
                        now: datetime) -> None:
    """Keep (or, with an empty value, forget) one editable setting."""
    if name not in EDITABLE_SETTINGS:
        raise ValueError(f"{name} cannot be set on the page")
    if not value:
        session.execute(delete(ChannelSetting).where(ChannelSetting.name == name))
        return
    row = session.get(ChannelSetting, name)
    if row is None:
        session.add(ChannelSetting(name=name, value=value, updated_by=user_id, updated_at=now))
    else:
        row.value, row.updated_by, row.updated_at = value, user_id, now


def shown_settings(session: Session, config) -> list[dict]:
    """The editable settings as the page shows them: where each comes from, secrets masked."""
    stored = stored_settings(session)
    shown = []
    for name in EDITABLE_SETTINGS:
        source = "environment" if config.get(name) else ("page" if stored.get(name) else None)
        value = config.get(name) or stored.get(name, "")
        shown.append({"name": name, "source": source, "secret": name in SECRET_SETTINGS,
                      "value": mask(name, value)})
    return shown


def mask(name: str, value: str) -> str:
    """A setting as it may be shown: a secret's last 4 characters only; the password of a URL hidden."""
    if not value:
        return ""
    if name == "SMTP_URL":
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}:••••@" if parts.username else ""
        return f"{parts.scheme}://{user}{host}{port}"
    if name in SECRET_SETTINGS:
        return "••••" + value[-4:] if len(value) > 12 else "••••"
    return value
