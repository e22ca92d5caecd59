"""Sign-in and sign-out: throttling, equal answers for unknown users, audit, cookies, roles."""

import time
from datetime import timedelta

from sqlalchemy import select, update

from lprserver.extensions import db
from lprserver.models import AuditEntry, User, WebSession, utcnow
from lprserver.users import save_user

from .webserver import PageClient


def actions() -> list[tuple[str, str | None]]:
    db.session.rollback()
    return [(a.action, a.username) for a in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def main_part(html: str) -> str:
    return html.split("<main")[1].split("</main>")[0]


def test_pages_need_sign_in_and_images_answer_401(app):
    browser = PageClient(app)
    for path in ("/", "/dashboard", "/records", "/records/1", "/blacklist", "/cameras", "/users"):
        answer = browser.get(path)
        assert answer.status_code == 302 and answer.location.startswith("/login?next=")
    assert browser.get("/api/records/1/thumbnail").status_code == 401


def test_sign_in_sets_a_safe_session_cookie_and_is_audited(app, users):
    browser = PageClient(app)
    answer = browser.login("operator")
    assert answer.status_code == 302 and answer.location == "/"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert browser.get("/dashboard").status_code == 200
    assert ("login.success", "operator") in actions()


def test_sign_in_follows_only_local_next_links(app, users):
    browser = PageClient(app)
    assert browser.login("viewer", next_url="//evil.example/x").location == "/"
    browser = PageClient(app)
    assert browser.login("viewer", next_url="/records?plate=1").location == "/records?plate=1"


def test_wrong_password_and_unknown_user_get_the_same_answer(app, users):
    wrong = PageClient(app).login("operator", "not-the-password")
    unknown = PageClient(app).login("nobody00", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    same = lambda r: main_part(r.get_data(as_text=True)).replace("nobody00", "operator")  # noqa: E731
    strip_token = lambda html: html.split('name="csrf_token" value="')[0]  # noqa: E731
    assert strip_token(same(wrong)) == strip_token(same(unknown))
    assert ("login.failed", "operator") in actions() and ("login.failed", "nobody00") in actions()


def test_unknown_user_takes_as_long_as_a_wrong_password(app, users):
    def timed(username):
        browser = PageClient(app)
        token = browser.token()
        start = time.perf_counter()
        browser.post("/login", data={"username": username, "password": "nope", "csrf_token": token})
        return time.perf_counter() - start
    known = min(timed("operator") for _ in range(3))
    unknown = min(timed("ghost") for _ in range(3))
    assert unknown > known * 0.5 and known > unknown * 0.5, (known, unknown)


def test_sixth_failure_in_a_minute_is_throttled_without_locking_out_other_addresses(app, users):
    attacker = PageClient(app, remote_addr="203.0.113.9")
    for _ in range(5):
        assert attacker.login("admin", "wrong-password!").status_code == 401
    throttled = attacker.login("admin")
    assert throttled.status_code == 429  # even the right password waits: no guessing oracle
    assert PageClient(app, remote_addr="10.9.8.7").login("admin").status_code == 302
    assert ("login.throttled", "admin") in actions()


def test_a_passphrase_over_72_bytes_works_and_is_not_truncated(app):
    long_pass = "รหัสผ่านยาวมาก" * 10
    save_user(db.session, "longpass", "viewer", long_pass)
    db.session.commit()
    assert PageClient(app).login("longpass", long_pass[:-1] + "x").status_code == 401
    assert PageClient(app).login("longpass", long_pass).status_code == 302
    assert PageClient(app).login("longpass", "x" * 100_000).status_code == 401


def test_sign_out_ends_the_session(app, users):
    browser = PageClient(app)
    browser.login("viewer")
    assert browser.post("/logout", data={"csrf_token": browser.token("/")}).status_code == 302
    assert browser.get("/").status_code == 302
    assert ("logout", "viewer") in actions()


def test_a_viewer_cannot_open_users_or_change_the_blacklist(app, users):
    browser = PageClient(app)
    browser.login("viewer")
    page = browser.get("/blacklist").get_data(as_text=True)
    assert 'id="blacklist-add"' not in page
    assert browser.get("/users").status_code == 403
    token = browser.token("/blacklist")
    assert browser.post("/blacklist", data={"license_plate_text": "กข1", "csrf_token": token}).status_code == 403
    assert browser.post("/alerts/acknowledge", headers={"X-CSRFToken": token},
                        json={"detection_ids": [1]}).status_code == 403


def test_an_operator_cannot_open_users(app, users):
    browser = PageClient(app)
    browser.login("operator")
    assert browser.get("/users").status_code == 403
    assert browser.get("/blacklist").status_code == 200


def test_a_copied_cookie_stops_working_once_its_session_signs_out(app, users):
    browser = PageClient(app)
    browser.login("operator")
    stolen = PageClient(app)
    cookie = browser.client.get_cookie("session")
    stolen.client.set_cookie("session", cookie.value)
    assert stolen.get("/dashboard").status_code == 200
    browser.post("/logout", data={"csrf_token": browser.token("/")})
    assert stolen.get("/dashboard").status_code == 302


def test_signing_out_one_browser_keeps_the_users_other_sessions(app, users):
    first, second = PageClient(app), PageClient(app)
    first.login("operator")
    second.login("operator")
    first.post("/logout", data={"csrf_token": first.token("/")})
    assert second.get("/dashboard").status_code == 200


def test_deactivating_or_resetting_a_password_ends_that_users_sessions(app, users):
    victim = PageClient(app)
    victim.login("viewer")
    admin = PageClient(app)
    admin.login("admin")
    viewer_id = db.session.scalar(select(User.id).where(User.username == "viewer"))
    admin.post(f"/users/{viewer_id}", data={"action": "password", "csrf_token": admin.token("/users")})
    assert victim.get("/").status_code == 302


def test_an_idle_session_expires(app, users):
    browser = PageClient(app)
    browser.login("viewer")
    db.session.execute(update(WebSession).values(last_seen_at=utcnow() - timedelta(hours=13)))
    db.session.commit()
    assert browser.get("/").status_code == 302
