"""Personal API tokens: shown once, stored as SHA-256, scoped, revocable at once, rate limited."""

import hashlib
import logging
import re

from sqlalchemy import select, text

from lprserver.extensions import db, limiter
from lprserver.models import ApiToken, User

from .conftest import TABLES, bearer


def create(client, token, name="parking", scope="read"):
    return client.post("/api/tokens", headers=bearer(token), json={"name": name, "scope": scope})


def test_created_token_is_shown_once_and_stored_only_as_sha256(client, api_token):
    answer = create(client, api_token)
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["token"].startswith("lpr_") and body["scope"] == "read" and body["name"] == "parking"
    row = db.session.get(ApiToken, body["id"])
    assert row.token_hash == hashlib.sha256(body["token"].encode()).hexdigest()
    listed = client.get("/api/tokens", headers=bearer(api_token)).get_json()["tokens"]
    assert {t["name"] for t in listed} == {"tests", "parking"}
    assert all("token" not in t for t in listed)


def test_new_token_works_and_its_last_use_is_kept(client, api_token):
    token = create(client, api_token).get_json()
    assert client.get("/api/records", headers=bearer(token["token"])).status_code == 200
    row = db.session.get(ApiToken, token["id"])
    assert row.last_used_at is not None


def test_revoked_token_stops_working_at_once(client, api_token):
    token = create(client, api_token).get_json()
    assert client.get("/api/statistics", headers=bearer(token["token"])).status_code == 200
    assert client.delete(f"/api/tokens/{token['id']}", headers=bearer(api_token)).status_code == 204
    answer = client.get("/api/statistics", headers=bearer(token["token"]))
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "unauthorized"
    listed = client.get("/api/tokens", headers=bearer(api_token)).get_json()["tokens"]
    assert [t["revoked_at"] is not None for t in listed if t["id"] == token["id"]] == [True]


def test_a_user_cannot_revoke_another_users_token(client, api_token, make_token):
    other = make_token("viewer")
    mine = create(client, api_token).get_json()
    assert client.delete(f"/api/tokens/{mine['id']}", headers=bearer(other)).status_code == 404
    assert client.get("/api/records", headers=bearer(mine["token"])).status_code == 200


def test_read_only_token_cannot_write(client, make_token):
    token = make_token("admin", scope="read")
    assert client.get("/api/blacklist", headers=bearer(token)).status_code == 200
    for method, path, body in [
        ("post", "/api/blacklist", {"license_plate_text": "ABC1"}),
        ("post", "/api/blacklist", {"license_plate_text": "ABC1*", "match": "pattern", "province_code": "TH-10"}),
        ("patch", "/api/blacklist/1", {"match": "lookalike", "province_code": "TH-50"}),
        ("post", "/api/tokens", {"name": "more"}),
        ("post", "/api/webhooks", {"url": "http://127.0.0.1:9/hook"}),
        ("post", "/api/records", {"camera_id": "CAM001", "plate_number": "ABC1"}),
        ("delete", "/api/blacklist/1", None),
    ]:
        answer = getattr(client, method)(path, headers=bearer(token), json=body)
        assert answer.status_code == 403, (method, path)
        assert answer.get_json()["error"] == {"code": "forbidden", "message": "this API token is read-only"}


def test_unauthenticated_and_bad_tokens_get_json_401(client):
    for headers in ({}, bearer("lpr_not-a-real-token"), {"Authorization": "Basic YWRtaW46YWRtaW4="}):
        answer = client.get("/api/blacklist", headers=headers)
        assert answer.status_code == 401
        assert answer.get_json()["error"]["code"] == "unauthorized"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_never_appears_in_logs_or_database(client, api_token, caplog):
    caplog.set_level(logging.DEBUG)
    new = create(client, api_token, scope="read-write").get_json()["token"]
    client.get("/api/records", headers=bearer(new))
    client.post("/api/blacklist", headers=bearer(new), json={"license_plate_text": "ABC1"})
    client.get("/api/records", headers=bearer(new + "x"))
    client.get("/api/nothing", headers=bearer(new))
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for token in (new, api_token):
        assert token not in logged
        secret = token.split("_", 1)[1]
        for table in TABLES:
            for row in db.session.execute(text(f"SELECT * FROM {table}")):  # noqa: S608 (fixed names)
                assert secret not in repr(tuple(row)), table


def test_token_endpoints_are_rate_limited_with_retry_after(app, client, api_token):
    app.config["RATELIMIT_TOKENS"] = "3 per minute"
    limiter.reset()
    answers = [client.get("/api/tokens", headers=bearer(api_token)) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].get_json()["error"]["code"] == "too_many_requests"
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 60


def _sign_in(client, username):
    # Sessions are server-side (lprserver.sessions): record one, as /login does.
    from lprserver.models import utcnow
    from lprserver.sessions import start_session

    user = db.session.scalar(select(User).where(User.username == username))
    token = start_session(db.session, user, utcnow(), "127.0.0.1", "tests")
    db.session.commit()
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
        session["_lpr_session"] = token


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_account_page_creates_shows_once_and_revokes(app, client, api_token):
    integrator = app.test_client()  # no session cookie: only the Bearer token speaks
    _sign_in(client, "admin")
    page = client.get("/account/tokens")
    assert page.status_code == 200 and "tests" in page.get_data(as_text=True)
    answer = client.post("/account/tokens", data={"name": "dispatch", "scope": "read",
                                                  "csrf_token": _csrf(page.get_data(as_text=True))})
    assert answer.status_code == 201
    shown = re.search(r"(lpr_[A-Za-z0-9_-]{40,})", answer.get_data(as_text=True)).group(1)
    assert integrator.get("/api/statistics", headers=bearer(shown)).status_code == 200
    assert shown not in client.get("/account/tokens").get_data(as_text=True)
    row = db.session.scalar(select(ApiToken).where(ApiToken.name == "dispatch"))
    page = client.get("/account/tokens").get_data(as_text=True)
    client.post(f"/account/tokens/{row.id}/revoke", data={"csrf_token": _csrf(page)})
    assert integrator.get("/api/statistics", headers=bearer(shown)).status_code == 401


def test_session_writes_need_the_csrf_token(client, api_token):
    _sign_in(client, "admin")
    answer = client.post("/api/blacklist", json={"license_plate_text": "ABC1"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "bad_request"
    token = _csrf(client.get("/account/tokens").get_data(as_text=True))
    answer = client.post("/api/blacklist", json={"license_plate_text": "ABC1"}, headers={"X-CSRFToken": token})
    assert answer.status_code == 201
    assert client.get("/api/blacklist").status_code == 200
