"""A real SMTP server for the e-mail channel's tests (aiosmtpd): it requires STARTTLS with a certificate
from a throwaway CA (trustme), takes an optional login, and keeps every message it accepts."""

import email
import ssl
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .pgcluster import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage  # parsed with the default policy: headers decoded, Thai as text
    raw: bytes
    tls: bool  # whether the session was encrypted when the message came


@dataclass
class Inbox:
    """What the handler keeps; aiosmtpd calls handle_DATA once per accepted message."""

    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      email.message_from_bytes(raw, policy=policy.default), raw,
                                      session.ssl is not None))
        return "250 OK"


class MailServer:
    """SMTP on 127.0.0.1 at a free port; `starttls=False` gives a server without TLS (and so no login)."""

    def __init__(self, ca: trustme.CA, starttls: bool = True, user: str | None = None,
                 password: str | None = None):
        self.inbox = Inbox()
        self.user, self.password = user, password
        self.logins: list[tuple[str, bool]] = []  # (user, accepted)
        self.port = free_port()
        options = {}
        if starttls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            options = {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
        if user is not None:
            options.update(authenticator=self._authenticate, auth_required=True)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)

    @property
    def messages(self) -> list[Received]:
        return self.inbox.messages

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user is not None else ""
        return f"smtp://{auth}127.0.0.1:{self.port}"

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and \
            (auth_data.login.decode(), auth_data.password.decode()) == (self.user, self.password)
        self.logins.append((auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "", ok))
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> "MailServer":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


@pytest.fixture(scope="session")
def mail_ca(tmp_path_factory) -> tuple[trustme.CA, Path]:
    """A throwaway CA and its certificate as a PEM file (what SSL_CERT_FILE points at)."""
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("mail-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@pytest.fixture
def mailserver(mail_ca, monkeypatch):
    """An SMTP server requiring STARTTLS and the login `lpr` / `s3cret pass`, trusted by this process."""
    ca, path = mail_ca
    monkeypatch.setenv("SSL_CERT_FILE", str(path))  # ssl.create_default_context() reads it
    with MailServer(ca, user="lpr", password="s3cret pass") as server:
        yield server
