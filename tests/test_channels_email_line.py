"""The e-mail and LINE channels (SPEC §11) against real parts: an aiosmtpd server that requires STARTTLS
and a login (tests/mailserver.py), a local stand-in for the LINE push API that checks requests as LINE
documents them (tests/line_standin.py), the signed image links LINE fetches, and one blacklisted read
delivered by the alert sender to both; the e-mail's HTML as Chromium renders it."""

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from lprserver.alert_images import image_links, verify
from lprserver.alert_sender import AlertSender
from lprserver.channels import AlertMessage, ChannelError, ChannelSettings, deliver
from lprserver.channels import email as email_channel
from lprserver.channels import line as line_channel
from lprserver.channels.render import render, words
from lprserver.extensions import db
from lprserver.models import AlertAttempt, AlertDelivery, Camera, Record, utcnow

from . import line_standin
from . import mailserver as smtp_server
from .imagegen import data_uri, make_jpeg
from .line_standin import TOKEN, LineStandIn
from .mailserver import MailServer
from .pgcluster import free_port
from .test_alert_delivery import FAST, read, rule, stolen
from .webserver import ARTIFACTS

# The fixtures of the two stand-ins, by name for pytest.
mail_ca, mailserver, line_api = smtp_server.mail_ca, smtp_server.mailserver, line_standin.line_api

LINE_USER = "U" + "4f" * 16
PASSWORD_URL = "s3cret%20pass"  # "s3cret pass", url-encoded in SMTP_URL
JPEG = make_jpeg(320, 240)


def message(**fields) -> AlertMessage:
    return AlertMessage(**{
        "alert_id": 42, "trigger": "blacklist", "at": datetime(2026, 12, 3, 7, 5, 9, tzinfo=UTC),
        "plate": "กข 1234", "province": "กรุงเทพมหานคร", "province_code": "TH-10", "camera_id": "CAM001",
        "camera_name": "ประตูหน้า", "location": "ทางเข้าอาคาร A", "reason": "รถหาย แจ้งความแล้ว",
        "category": "stolen", "record_id": 7, "link": "https://lpr.example.org/records/7", **fields})


def smtp_settings(server: MailServer, password: str = PASSWORD_URL, **fields) -> ChannelSettings:
    return ChannelSettings(**{"smtp_url": server.url("lpr", password), "smtp_from": "LPR <lpr@example.org>",
                              "timeout": 5, **fields})


def line_settings(standin: LineStandIn, **fields) -> ChannelSettings:
    return ChannelSettings(**{"line_token": TOKEN, "line_api_url": standin.url, "timeout": 2, **fields})


def parts(mail) -> tuple[str, str, list]:
    """The plain text, the HTML and the inline images of a received message."""
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    images = [p for p in mail.walk() if p.get_content_maintype() == "image"]
    return text, html, images


# --- the wording ---

@pytest.mark.parametrize(("fields", "th", "en"), [
    ({"trigger": "not_on_list", "detail": {"group": "พนักงาน"}, "reason": None, "category": None},
     ["ทะเบียนไม่อยู่ในรายชื่อที่อนุญาต", "กลุ่ม: พนักงาน"], ["Plate not on the allowed list", "Group: พนักงาน"]),
    ({"trigger": "overstay", "reason": None, "category": None,
      "detail": {"group": "visitors", "max_stay_minutes": 120, "entered_at": "2026-12-03T03:00:00+00:00",
                 "stay_seconds": 14700}},
     ["รถจอดเกินเวลาที่กำหนด", "เข้าเมื่อ: 2026-12-03 10:00:00 +07", "อยู่มาแล้ว: 4 ชม. 5 นาที",
      "เวลาที่อนุญาต: 2 ชม. 0 นาที"],
     ["Vehicle stayed too long", "Entered: 2026-12-03 10:00:00 +07", "Stayed: 4 h 5 min", "Allowed: 2 h 0 min"]),
    ({"trigger": "camera_offline", "plate": None, "province": None, "record_id": None, "link": None,
      "reason": None, "category": None, "detail": {"minutes": 10, "last_seen": "2026-12-03T06:50:00+00:00"}},
     ["กล้องขาดการติดต่อ", "ติดต่อครั้งล่าสุด: 2026-12-03 13:50:00 +07", "ไม่มีข้อมูลเกิน 10 นาที"],
     ["Camera offline", "Last heard: 2026-12-03 13:50:00 +07", "silent for over 10 min"]),
])
def test_every_trigger_reads_in_thai_and_english(fields, th, en):
    for language, expected in (("th", th), ("en", en)):
        shown = render(message(**fields), language)
        for line in expected:
            assert line in shown.text, (language, line)
        assert expected[0] in shown.subject and expected[0] in shown.html
        assert ("ประตูหน้า (CAM001)" in shown.subject) and "เหตุผล" not in shown.text


def test_times_are_in_the_sites_zone_with_its_offset():
    assert "Time: 2026-12-03 12:35:09 +05:30" in render(message(), "en", "Asia/Kolkata").text
    assert "Time: 2026-12-03 07:05:09 +00" in render(message(), "en", "UTC").text


# --- e-mail ---

def test_an_email_arrives_over_starttls_in_thai_with_the_image_inline(mailserver):
    key = str(uuid.uuid4())
    email_channel.send(smtp_settings(mailserver), "ops@example.org", message(image=JPEG), key)
    (got,) = mailserver.messages
    assert got.tls and mailserver.logins == [("lpr", True)]
    assert (got.mail_from, got.rcpt_tos) == ("lpr@example.org", ["ops@example.org"])
    mail = got.message
    assert mail["Subject"] == "พบทะเบียนในบัญชีดำ: กข 1234 กรุงเทพมหานคร · ประตูหน้า (CAM001)"
    assert mail["Message-ID"] == f"<{key}@lprserver>" and mail["To"] == "ops@example.org"
    assert mail.get_content_type() == "multipart/alternative"
    text, html, images = parts(mail)
    for shown in ("กข 1234", "กรุงเทพมหานคร", "ประตูหน้า (CAM001)", "ทางเข้าอาคาร A", "2026-12-03 14:05:09 +07",
                  "รถหาย แจ้งความแล้ว", "รถถูกขโมย", "https://lpr.example.org/records/7"):
        assert shown in text and shown in html
    (image,) = images
    assert image.get_content_type() == "image/jpeg" and image.get_content() == JPEG
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    assert b"Subject: =?utf-8?" in got.raw  # RFC 2047: the Thai subject crosses SMTP as ASCII


def test_an_email_in_english_escapes_what_it_shows(mailserver):
    email_channel.send(smtp_settings(mailserver, language="en"), "ops@example.org",
                       message(reason="<script>alert(1)</script> & co", escalation=True, repeat_count=3), "k-1")
    mail = mailserver.messages[0].message
    assert mail["Subject"].startswith("[Not acknowledged after ") and "Blacklisted plate seen" in mail["Subject"]
    text, html, images = parts(mail)
    assert "Reason: <script>alert(1)</script> & co" in text and "(read 3 times)" in text and images == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html and "<script>" not in html
    assert 'lang="en"' in html and "Category" in html and "stolen" in html


def test_a_wrong_password_is_a_channel_error_without_the_password(mail_ca, monkeypatch):
    ca, path = mail_ca
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    with MailServer(ca, user="lpr", password="right one") as server:
        with pytest.raises(ChannelError) as caught:
            email_channel.send(smtp_settings(server, password="wr0ng%20pw"), "ops@example.org", message(), "k")
    said = str(caught.value)
    assert "refused the login of 'lpr' (535)" in said
    assert "wr0ng" not in said and "smtp://" not in said and server.messages == []


def test_a_server_that_is_down_is_a_channel_error(mail_ca):
    settings = ChannelSettings(smtp_url=f"smtp://lpr:{PASSWORD_URL}@127.0.0.1:{free_port()}",
                               smtp_from="lpr@example.org", timeout=2)
    with pytest.raises(ChannelError, match=r"could not send through 127\.0\.0\.1:\d+: ConnectionRefusedError"):
        email_channel.send(settings, "ops@example.org", message(), "k")


def test_an_untrusted_certificate_is_refused(mail_ca, monkeypatch):
    ca, _ = mail_ca
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the system's CAs do not know the test CA
    with MailServer(ca) as server:
        with pytest.raises(ChannelError, match="TLS with 127.0.0.1:.* failed: .*certificate"):
            email_channel.send(smtp_settings(server), "ops@example.org", message(), "k")
    assert server.messages == []


def test_without_starttls_mail_goes_in_clear_but_a_password_never_does(mail_ca):
    ca, _ = mail_ca
    with MailServer(ca, starttls=False) as server:
        plain = ChannelSettings(smtp_url=server.url(), smtp_from="lpr@example.org", timeout=5)
        email_channel.send(plain, "ops@example.org", message(), "k-1")
        with pytest.raises(ChannelError, match="offers no STARTTLS: the SMTP password is not sent unencrypted"):
            email_channel.send(smtp_settings(server), "ops@example.org", message(), "k-2")
    assert [m.tls for m in server.messages] == [False]


@pytest.mark.parametrize(("fields", "said"), [
    ({"smtp_from": ""}, "SMTP_FROM is not set"),
    ({"smtp_url": ""}, "SMTP_URL is not set"),
    ({"smtp_url": "http://host"}, "SMTP_URL must be smtp://"),
    ({"smtp_url": "smtp://u:p@host:99999"}, "SMTP_URL is not a URL"),
])
def test_missing_or_bad_smtp_settings(fields, said):
    settings = ChannelSettings(**{"smtp_url": "smtp://u:secret@host", "smtp_from": "lpr@example.org", **fields})
    with pytest.raises(ChannelError, match=said) as caught:
        email_channel.send(settings, "ops@example.org", message(), "k")
    assert "secret" not in str(caught.value)


def test_smtp_url_ports_and_encoded_credentials():
    assert email_channel.parse_smtp_url("smtp://a%40b:p%3Aw@mail.example.org") == \
        email_channel.SmtpServer("smtp", "mail.example.org", 587, "a@b", "p:w")
    assert email_channel.parse_smtp_url("smtps://mail.example.org").port == 465
    assert email_channel.parse_smtp_url("smtp://mail.example.org:25").port == 25


# --- LINE ---

def test_a_line_push_carries_the_text_and_the_image(line_api):
    key = str(uuid.uuid4())
    line_channel.send(line_settings(line_api), LINE_USER,
                      message(image_url="https://lpr.example.org/a/full", preview_url="https://lpr.example.org/a/p"),
                      key)
    (push,) = line_api.pushes
    assert push["to"] == LINE_USER
    text, image = push["messages"]
    assert text["type"] == "text" and text["text"].startswith("🚨 พบทะเบียนในบัญชีดำ\n")
    for shown in ("ทะเบียน: กข 1234", "จังหวัด: กรุงเทพมหานคร", "กล้อง: ประตูหน้า (CAM001)",
                  "เวลา: 2026-12-03 14:05:09 +07", "เหตุผล: รถหาย แจ้งความแล้ว", "https://lpr.example.org/records/7"):
        assert shown in text["text"]
    assert image == {"type": "image", "originalContentUrl": "https://lpr.example.org/a/full",
                     "previewImageUrl": "https://lpr.example.org/a/p"}
    assert line_api.headers[0]["X-Line-Retry-Key"] == key


def test_a_line_push_without_https_links_is_text_only(line_api):
    line_channel.send(line_settings(line_api, language="en"), LINE_USER, message(), str(uuid.uuid4()))
    assert [m["type"] for m in line_api.pushes[0]["messages"]] == ["text"]
    assert line_api.pushes[0]["messages"][0]["text"].startswith("🚨 Blacklisted plate seen\n")
    assert image_links("http://lpr.example.org", "k", 7, utcnow(), 24) is None


def test_a_long_reason_still_fits_a_line_text(line_api):
    line_channel.send(line_settings(line_api), LINE_USER, message(reason="ก" * 20_000), str(uuid.uuid4()))
    assert len(line_api.pushes[0]["messages"][0]["text"]) <= 5000


def test_a_repeated_retry_key_is_already_sent(line_api):
    key = str(uuid.uuid4())
    line_channel.send(line_settings(line_api), LINE_USER, message(), key)
    line_channel.send(line_settings(line_api), LINE_USER, message(), key)  # LINE answers 409: sent
    assert len(line_api.pushes) == 1 and len(line_api.headers) == 2


def test_a_bad_token_is_a_channel_error_without_the_token(line_api):
    with pytest.raises(ChannelError, match=r"LINE refused the push \(401\): Authentication failed") as caught:
        line_channel.send(line_settings(line_api, line_token="wrong-token-xyz"), LINE_USER, message(), "k")
    assert "wrong-token-xyz" not in str(caught.value)
    with pytest.raises(ChannelError, match="LINE_CHANNEL_TOKEN is not set"):
        line_channel.send(line_settings(line_api, line_token=""), LINE_USER, message(), "k")


def test_what_line_refuses_is_named(line_api):
    with pytest.raises(ChannelError, match=r"\(400\): The request body has 1 error.*non-empty HTTPS URL"):
        line_channel.send(line_settings(line_api), LINE_USER,
                          message(image_url="https://x/a", preview_url="https://x/b" + "b" * 2000),
                          str(uuid.uuid4()))


def test_line_down_slow_or_failing_is_a_channel_error_to_retry(line_api):
    line_api.fail_next = 1
    with pytest.raises(ChannelError, match=r"LINE answered 500 \(to be retried\)"):
        line_channel.send(line_settings(line_api), LINE_USER, message(), str(uuid.uuid4()))
    line_api.delay = 1.5
    with pytest.raises(ChannelError, match="the LINE API did not answer: ReadTimeout"):
        line_channel.send(line_settings(line_api, timeout=0.5), LINE_USER, message(), str(uuid.uuid4()))
    settings = ChannelSettings(line_token=TOKEN, line_api_url=f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(ChannelError, match="the LINE API did not answer: ConnectionError"):
        line_channel.send(settings, LINE_USER, message(), str(uuid.uuid4()))


# --- signed image links ---

def _stored_read(client) -> Record:
    answer = read(client, image_data=data_uri(JPEG))
    return db.session.get(Record, answer["record_id"])


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def fetch(client, url: str) -> tuple[int, str, bytes]:
    """GET a link as LINE's servers would (no sign-in): status, type and body, the file closed."""
    with client.get(_path(url)) as answer:
        return answer.status_code, answer.mimetype, answer.data


def test_a_signed_image_link_serves_the_image_without_sign_in(app, client):
    record = _stored_read(client)
    full, preview = image_links("https://lpr.example.org", app.config["SECRET_KEY"], record.id, utcnow(), 1)
    assert full.startswith(f"https://lpr.example.org/alert-images/{record.id}/full?expires=")
    assert fetch(client, full) == (200, "image/jpeg", JPEG)
    status, mimetype, data = fetch(client, preview)
    assert (status, mimetype) == (200, "image/jpeg") and len(data) < len(JPEG)


def test_a_tampered_or_expired_image_link_is_403(app, client):
    record = _stored_read(client)
    secret = app.config["SECRET_KEY"]
    full, _ = image_links("https://lpr.example.org", secret, record.id, utcnow(), 1)
    path = _path(full)
    sig = re.search(r"sig=([^&]+)", path).group(1)
    expires = int(re.search(r"expires=(\d+)", path).group(1))
    tampered = [path.replace(f"sig={sig}", f"sig={sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}"),
                path.replace(f"expires={expires}", f"expires={expires + 3600}"),
                path.replace("/full?", "/preview?"), path.replace(f"/{record.id}/", f"/{record.id + 1}/"),
                path.split("&sig=")[0], path.replace(f"expires={expires}", "expires=x")]
    for bad in tampered:
        assert fetch(client, bad)[0] == 403, bad
    old, _ = image_links("https://lpr.example.org", secret, record.id, utcnow() - timedelta(hours=2), 1)
    assert fetch(client, old)[0] == 403
    assert not verify(secret, record.id, "full", expires, sig, utcnow() + timedelta(hours=2))
    assert verify(secret, record.id, "full", expires, sig, utcnow())


def test_a_valid_link_to_a_missing_record_or_image_is_404(app, client):
    secret = app.config["SECRET_KEY"]
    full, _ = image_links("https://lpr.example.org", secret, 999_999, utcnow(), 1)
    assert fetch(client, full)[0] == 404
    no_image = read(client, plate="ขค 99")["record_id"]
    full, _ = image_links("https://lpr.example.org", secret, no_image, utcnow(), 1)
    assert fetch(client, full)[0] == 404


# --- through the alert sender ---

def _configure(app, mailserver, standin, public_url: str) -> None:
    app.config.update(SMTP_URL=mailserver.url("lpr", PASSWORD_URL), SMTP_FROM="LPR <lpr@example.org>",
                      LINE_CHANNEL_TOKEN=TOKEN, LINE_API_URL=standin.url, PUBLIC_URL=public_url)


def test_a_blacklisted_read_reaches_email_and_line(app, client, mailserver, line_api):
    _configure(app, mailserver, line_api, "https://lpr.example.org")
    # The messages are in DEFAULT_LANGUAGE (SPEC §11, §13); the sender's threads load the Thai catalogue
    # without an app context. (The tests' pages default to English.)
    app.config["DEFAULT_LANGUAGE"] = "th"
    stolen()
    rule(channels=["email:ops@example.org", f"line:{LINE_USER}"])
    record = read(client, image_data=data_uri(JPEG), province="กรุงเทพมหานคร", location="ทางเข้า A")
    db.session.get(Camera, "CAM001").name = "ประตูหน้า"
    db.session.commit()
    assert AlertSender(app, FAST).run_once() == 2

    mail = mailserver.messages[0].message
    text, html, (image,) = parts(mail)
    assert "กข 1234" in mail["Subject"] and "ประตูหน้า (CAM001)" in text and "ทางเข้า A" in text
    assert f"https://lpr.example.org/records/{record['record_id']}" in html and image.get_content() == JPEG
    (push,) = line_api.pushes
    text_message, image_message = push["messages"]
    assert "รถหาย" in text_message["text"] and "ประเภท: รถถูกขโมย" in text_message["text"]
    # The links LINE would fetch serve the read's image, with no sign-in.
    assert fetch(client, image_message["originalContentUrl"]) == (200, "image/jpeg", JPEG)
    assert fetch(client, image_message["previewImageUrl"])[:2] == (200, "image/jpeg")

    attempts = db.session.scalars(select(AlertAttempt).order_by(AlertAttempt.channel)).all()
    assert [(a.channel, a.ok, a.error) for a in attempts] == \
        [("email:ops@example.org", True, None), (f"line:{LINE_USER}", True, None)]
    # The Message-ID and the LINE retry key are the delivery's one key.
    retry_key = line_api.headers[0]["X-Line-Retry-Key"]
    assert uuid.UUID(retry_key) and mail["Message-ID"].endswith("@lprserver>")


def test_line_failing_once_is_retried_with_the_same_key_and_text_only_over_http(app, client, mailserver,
                                                                                 line_api):
    _configure(app, mailserver, line_api, "http://lpr.local")
    stolen()
    rule(channels=[f"line:{LINE_USER}"])
    read(client, image_data=data_uri(JPEG))
    line_api.fail_next = 1
    sender = AlertSender(app, FAST)
    assert sender.run_once() == 1
    (delivery,) = db.session.scalars(select(AlertDelivery)).all()
    db.session.refresh(delivery)
    assert delivery.status == "pending" and "500" in delivery.last_error
    delivery.next_attempt_at = utcnow()
    db.session.commit()
    assert sender.run_once() == 1
    assert [m["type"] for m in line_api.pushes[0]["messages"]] == ["text"]
    keys = [h["X-Line-Retry-Key"] for h in line_api.headers]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert [a.ok for a in db.session.scalars(select(AlertAttempt).order_by(AlertAttempt.id))] == [False, True]


def test_deliver_routes_email_and_line(mailserver, line_api):
    settings = ChannelSettings(smtp_url=mailserver.url("lpr", PASSWORD_URL), smtp_from="lpr@example.org",
                               line_token=TOKEN, line_api_url=line_api.url, timeout=5)
    deliver("email:ops@example.org", message(), settings, "k-email")
    deliver(f"line:{LINE_USER}", message(), settings, str(uuid.uuid4()))
    assert len(mailserver.messages) == 1 and len(line_api.pushes) == 1


# --- the e-mail as a person sees it ---

@pytest.mark.parametrize("language", ["th", "en"])
def test_the_email_renders_in_chromium(mailserver, browser, language):
    email_channel.send(smtp_settings(mailserver, language=language), "ops@example.org",
                       message(image=make_jpeg(640, 480), repeat_count=2, escalation=language == "th",
                               at=utcnow() - timedelta(minutes=5)), str(uuid.uuid4()))
    text, html, (image,) = parts(mailserver.messages[0].message)
    # As a mail client shows it: the cid: image from the message's own related part.
    inline = "data:image/jpeg;base64," + base64.b64encode(image.get_content()).decode()
    html = html.replace(f"cid:{image['Content-ID'].strip('<>')}", inline)
    page = browser.new_page(viewport={"width": 800, "height": 600})
    try:
        page.set_content(html)
        assert page.locator("img").evaluate("img => img.naturalWidth") == 640
        assert page.get_by_text(words(language)["blacklist"]).is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"email_{language}.png"), full_page=True)
    finally:
        page.close()
