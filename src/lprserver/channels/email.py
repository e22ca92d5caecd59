"""The `email:<address>` channel (SPEC §11 "Channels"): one message over SMTP_URL from SMTP_FROM.

`smtp://user:pass@host:587` sends over STARTTLS when the server offers it (certificate checked against
the system's CAs, or the bundle SSL_CERT_FILE names); `smtps://user:pass@host:465` speaks TLS from the
start. A password is never sent over a connection that is not encrypted. The message is
multipart/alternative (plain text and HTML), the read's image inline in the HTML; its Message-ID is the
delivery's retry key, so a receiver (or a person) can tell a resent alert from a new one.
"""

import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import unquote, urlsplit

from . import AlertMessage, ChannelError, ChannelSettings
from .render import image_cid, render

DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpServer:
    scheme: str
    host: str
    port: int
    user: str
    password: str


def parse_smtp_url(url: str) -> SmtpServer:
    """Read `smtp://user:pass@host:587` (or `smtps://`); ChannelError says what is wrong, never the URL."""
    if not url:
        raise ChannelError("SMTP_URL is not set")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ChannelError("SMTP_URL is not a URL such as smtp://user:pass@host:587") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ChannelError("SMTP_URL must be smtp://[user:pass@]host[:port] or smtps://...")
    return SmtpServer(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme],
                      unquote(parts.username or ""), unquote(parts.password or ""))


def build_message(settings: ChannelSettings, address: str, message: AlertMessage,
                  retry_key: str) -> EmailMessage:
    """The e-mail of one alert: plain text and HTML, the JPEG inline, Message-ID from the retry key."""
    rendered = render(message, settings.language, settings.timezone, era=settings.date_era)
    mail = EmailMessage()  # the default policy: RFC 2047 headers and UTF-8 bodies for Thai
    mail["Subject"] = rendered.subject
    mail["From"] = settings.smtp_from
    mail["To"] = address
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = f"<{retry_key}@lprserver>"
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the alert sender
    mail["X-LPR-Alert-Id"] = str(message.alert_id)
    mail.set_content(rendered.text)
    mail.add_alternative(rendered.html, subtype="html")
    if message.image:
        html = mail.get_payload()[1]
        html.add_related(message.image, "image", "jpeg", cid=f"<{image_cid(message)}>",
                         filename=f"alert-{message.alert_id}.jpg")
    return mail


def send(settings: ChannelSettings, address: str, message: AlertMessage, retry_key: str) -> None:
    """Send one alert to `address`; raise ChannelError (with no password in it) if it did not go."""
    if not settings.smtp_from:
        raise ChannelError("SMTP_FROM is not set")
    server = parse_smtp_url(settings.smtp_url)
    mail = build_message(settings, address, message, retry_key)
    try:
        with connect(server, settings.timeout) as smtp:
            smtp.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise ChannelError(f"the SMTP server refused the login of {server.user!r} "
                           f"({exc.smtp_code})") from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = ", ".join(str(code) for code, _ in exc.recipients.values())
        raise ChannelError(f"the SMTP server refused the address {address!r} ({codes})") from None
    except smtplib.SMTPResponseException as exc:
        raise ChannelError(f"the SMTP server answered {exc.smtp_code}: {_said(exc.smtp_error)}") from None
    except ssl.SSLError as exc:
        why = getattr(exc, "verify_message", None) or exc.reason or exc.__class__.__name__
        raise ChannelError(f"TLS with {server.host}:{server.port} failed: {why}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelError(f"could not send through {server.host}:{server.port}: "
                           f"{exc.__class__.__name__} {_said(str(exc))}".strip()) from None


def connect(server: SmtpServer, timeout: float) -> smtplib.SMTP:
    """An SMTP session, encrypted when the server allows it and logged in when a user is given."""
    context = ssl.create_default_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
    if server.scheme == "smtps":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=timeout)
    try:
        smtp.ehlo()
        encrypted = server.scheme == "smtps"
        if not encrypted and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
            encrypted = True
        if server.user:
            if not encrypted:
                raise ChannelError(f"{server.host}:{server.port} offers no STARTTLS: the SMTP password is "
                                   "not sent unencrypted")
            smtp.login(server.user, server.password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _said(text: bytes | str) -> str:
    """What the server said, short and on one line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text.split())[:160]
