"""Alert rules through /api/alert-rules (SPEC §11 "Rules") and the /alerts page's routes: the round trip,
refusals naming every field, who may do what, and the audit trail."""

import pytest
from sqlalchemy import select

from lprserver.extensions import db
from lprserver.models import Alert, AlertDelivery, AlertRule, AuditEntry, ChannelSetting, Webhook, utcnow

from .conftest import bearer
from .webserver import PageClient

LINE_ID = "U" + "0123456789abcdef" * 2
RULE = {"trigger": "blacklist", "categories": ["stolen"], "cameras": ["GATE1"], "hours": "22:00-06:00",
        "channels": ["email:ops@example.org", f"line:{LINE_ID}", "mqtt"],
        "escalate_after_minutes": 5, "escalate_to": ["email:chief@example.org"]}


def fresh():
    db.session.rollback()
    return db.session


def audits(action: str) -> list[AuditEntry]:
    return list(fresh().scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def webhook() -> int:
    hook = Webhook(url="http://127.0.0.1:9/hook", secret="s" * 32, events=["blacklist.hit"], created_at=utcnow())
    db.session.add(hook)
    db.session.commit()
    return hook.id


@pytest.fixture
def admin(make_token) -> dict:
    return bearer(make_token("admin", username="chief"))


# --- the round trip ----------------------------------------------------------------------------------


def test_a_rule_is_created_read_listed_changed_and_deleted(client, admin):
    hook = webhook()
    created = client.post("/api/alert-rules", json={**RULE, "channels": [*RULE["channels"], f"webhook:{hook}"]},
                          headers=admin)
    assert created.status_code == 201, created.get_json()
    rule = created.get_json()
    assert {k: rule[k] for k in RULE} == {**RULE, "channels": [*RULE["channels"], f"webhook:{hook}"]}
    assert rule["active"] is True and rule["description"] is None and rule["created_at"]
    assert client.get(f"/api/alert-rules/{rule['id']}", headers=admin).get_json() == rule
    listed = client.get("/api/alert-rules", headers=admin).get_json()
    assert listed == {"rules": [rule], "total": 1}

    changed = client.patch(f"/api/alert-rules/{rule['id']}", headers=admin,
                           json={"hours": None, "active": False, "description": " night gate "})
    assert changed.status_code == 200
    body = changed.get_json()
    assert (body["hours"], body["active"], body["description"]) == (None, False, "night gate")
    assert body["channels"] == rule["channels"] and body["escalate_after_minutes"] == 5  # untouched
    assert fresh().get(AlertRule, rule["id"]).created_by is not None

    assert client.delete(f"/api/alert-rules/{rule['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/alert-rules/{rule['id']}", headers=admin).status_code == 404
    assert client.delete(f"/api/alert-rules/{rule['id']}", headers=admin).get_json()["error"]["code"] == "not_found"


def test_only_trigger_and_channels_are_required(client, admin):
    answer = client.post("/api/alert-rules", json={"trigger": "camera_offline", "channels": ["mqtt"]}, headers=admin)
    assert answer.status_code == 201
    rule = answer.get_json()
    assert (rule["cameras"], rule["categories"], rule["hours"], rule["escalate_to"]) == ([], [], None, [])
    assert rule["escalate_after_minutes"] is None


def test_deleting_a_rule_keeps_its_deliveries_without_a_rule(client, admin):
    rule_id = client.post("/api/alert-rules", json={"trigger": "blacklist", "channels": ["mqtt"]},
                          headers=admin).get_json()["id"]
    alert = Alert(trigger="camera_offline", camera_id="CAM1", created_at=utcnow())
    db.session.add(alert)
    db.session.flush()
    db.session.add(AlertDelivery(alert_id=alert.id, rule_id=rule_id, channel="mqtt", created_at=utcnow()))
    db.session.commit()
    assert client.delete(f"/api/alert-rules/{rule_id}", headers=admin).status_code == 204
    deliveries = fresh().scalars(select(AlertDelivery)).all()
    assert [(d.alert_id, d.rule_id, d.status) for d in deliveries] == [(alert.id, None, "pending")]


# --- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "fields", "words"), [
    ({"channels": ["mqtt"]}, {"trigger"}, "one of blacklist"),
    ({"trigger": "speeding", "channels": ["mqtt"]}, {"trigger"}, "one of blacklist"),
    ({"trigger": "blacklist", "channels": []}, {"channels"}, "non-empty list"),
    ({"trigger": "blacklist"}, {"channels"}, "non-empty list"),
    ({"trigger": "blacklist", "channels": ["sms:0812345678"]}, {"channels"}, "unknown channel"),
    ({"trigger": "blacklist", "channels": ["email:not-an-address"]}, {"channels"}, "not an e-mail address"),
    ({"trigger": "blacklist", "channels": ["line:U123"]}, {"channels"}, "32 hex digits"),
    ({"trigger": "blacklist", "channels": ["webhook:999"]}, {"channels"}, "no webhook 999"),
    ({"trigger": "blacklist", "channels": ["mqtt"], "hours": "25:00-06:00"}, {"hours"}, "HH:MM-HH:MM"),
    ({"trigger": "blacklist", "channels": ["mqtt"], "hours": "22:00-22:00"}, {"hours"}, "cover no time"),
    ({"trigger": "blacklist", "channels": ["mqtt"], "escalate_after_minutes": 5}, {"escalate_to"},
     "where to escalate"),
    ({"trigger": "blacklist", "channels": ["mqtt"], "escalate_to": ["mqtt"]}, {"escalate_after_minutes"},
     "after how many minutes"),
    ({"trigger": "blacklist", "channels": ["mqtt"], "escalate_after_minutes": 0, "escalate_to": ["mqtt"]},
     {"escalate_after_minutes"}, "whole minutes"),
    ({"trigger": "blacklist", "channels": ["mqtt"], "colour": "red", "priority": 1}, {"body"},
     "unknown fields: colour, priority"),
    ({"trigger": "blacklist", "channels": ["mqtt"], "cameras": [f"CAM{i}" for i in range(51)]}, {"cameras"},
     "at most 50"),
    ({"trigger": "blacklist", "channels": ["mqtt"] * 51}, {"channels"}, "at most 50"),
    ({"trigger": "blacklist", "channels": ["mqtt"], "categories": ["stolen"] * 51}, {"categories"}, "at most 50"),
    ({"trigger": "blacklist", "channels": ["mqtt"], "description": "a\x00b"}, {"description"}, "NUL"),
    ({"trigger": "blacklist", "channels": ["mqtt"], "categories": ["stolne"]}, {"categories"}, "not a category"),
    ({"trigger": "overstay", "channels": ["mqtt"], "categories": ["stolen"]}, {"categories"},
     "only a blacklist rule"),
    ({"trigger": "blacklist", "channels": ["mqtt"], "active": "yes"}, {"active"}, "true or false"),
    ({}, {"trigger", "channels"}, "one of blacklist"),
    ({"trigger": "x", "channels": "mqtt", "hours": "always"}, {"trigger", "channels", "hours"}, "HH:MM"),
])
def test_a_bad_rule_is_a_400_naming_each_field(client, admin, body, fields, words):
    answer = client.post("/api/alert-rules", json=body, headers=admin)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == fields
    assert error["field"] in fields
    assert words in " ".join(error["fields"].values()) and words in error["message"]
    assert fresh().scalars(select(AlertRule)).all() == []


@pytest.mark.parametrize("data", ["[1, 2]", '"rule"', "null", "{not json", ""])
def test_a_body_that_is_not_an_object_is_a_400(client, admin, data):
    answer = client.post("/api/alert-rules", data=data, headers={**admin, "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["fields"] == {"body": "send a JSON object"}


def test_a_change_is_checked_against_the_rule_it_changes(client, admin):
    rule_id = client.post("/api/alert-rules", json=RULE, headers=admin).get_json()["id"]
    answer = client.patch(f"/api/alert-rules/{rule_id}", json={"escalate_to": []}, headers=admin)
    assert answer.status_code == 400 and set(answer.get_json()["error"]["fields"]) == {"escalate_to"}
    answer = client.patch(f"/api/alert-rules/{rule_id}", json={"channels": [], "hours": "7-8"}, headers=admin)
    assert set(answer.get_json()["error"]["fields"]) == {"channels", "hours"}
    assert client.patch(f"/api/alert-rules/{rule_id}", json=[], headers=admin).status_code == 400
    assert fresh().get(AlertRule, rule_id).hours == "22:00-06:00"
    both = client.patch(f"/api/alert-rules/{rule_id}", json={"escalate_to": [], "escalate_after_minutes": None},
                        headers=admin)
    assert both.status_code == 200 and both.get_json()["escalate_to"] == []


def test_the_openapi_document_describes_the_refusal(client):
    document = client.get("/api/openapi.json").get_json()
    post = document["paths"]["/api/alert-rules"]["post"]
    assert post["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("AlertRuleRefusal")
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("AlertRuleIn")
    refusal = document["components"]["schemas"]["AlertRuleRefusalBody"]
    assert "fields" in refusal["required"] and refusal["additionalProperties"] is False
    assert set(document["paths"]["/api/alert-rules/{rule_id}"]) >= {"get", "patch", "delete"}


# --- who may do what ---------------------------------------------------------------------------------


def test_every_api_route_is_walked_for_every_kind_of_caller(client, make_token, admin):
    callers = {"stranger": {}, "viewer": bearer(make_token("viewer")), "operator": bearer(make_token("operator")),
               "admin": bearer(make_token("admin")), "read-only admin": bearer(make_token("admin", "read"))}
    rule_id = client.post("/api/alert-rules", json=RULE, headers=admin).get_json()["id"]

    def walk(call) -> dict:
        return {who: call(headers).status_code for who, headers in callers.items()}

    readers = {"stranger": 401, "viewer": 200, "operator": 200, "admin": 200, "read-only admin": 200}
    assert walk(lambda h: client.get("/api/alert-rules", headers=h)) == readers
    assert walk(lambda h: client.get(f"/api/alert-rules/{rule_id}", headers=h)) == readers
    writers = {"stranger": 401, "viewer": 403, "operator": 403, "read-only admin": 403}
    created = walk(lambda h: client.post("/api/alert-rules", json=RULE, headers=h))
    assert created == {**writers, "admin": 201}
    changed = walk(lambda h: client.patch(f"/api/alert-rules/{rule_id}", json={"active": False}, headers=h))
    assert changed == {**writers, "admin": 200}
    others = {who: h for who, h in callers.items() if who != "admin"}
    for who, headers in others.items():
        assert client.delete(f"/api/alert-rules/{rule_id}", headers=headers).status_code == writers[who], who
    assert client.delete(f"/api/alert-rules/{rule_id}", headers=callers["admin"]).status_code == 204
    assert len(fresh().scalars(select(AlertRule)).all()) == 1  # the admin's second, only
    body = client.post("/api/alert-rules", json=RULE, headers=callers["stranger"]).get_json()
    assert body["error"]["code"] == "unauthorized"
    assert client.post("/api/alert-rules", json=RULE, headers=callers["operator"]).get_json()["error"]["code"] == \
        "forbidden"


def test_the_session_cookie_writes_rules_with_the_csrf_header_only(app, users):
    browser = PageClient(app)
    assert browser.login("admin").status_code == 302
    assert browser.post("/api/alert-rules", json=RULE).status_code == 400  # no X-CSRFToken
    assert fresh().scalars(select(AlertRule)).all() == []
    answer = browser.post("/api/alert-rules", json=RULE, headers={"X-CSRFToken": browser.token("/alerts")})
    assert answer.status_code == 201


def test_every_page_route_is_walked_for_every_kind_of_caller(app, users, make_token):
    stranger = PageClient(app)
    answer = stranger.get("/alerts")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    form = {"name": "SMTP_FROM", "value": "lpr@example.org"}
    answer = stranger.post("/alerts/settings", data={**form, "csrf_token": stranger.token("/login")})
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    for scope in ("read", "read-write"):  # pages never take a token
        headers = bearer(make_token("admin", scope))
        answer = PageClient(app).get("/alerts", headers=headers)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], scope
        assert PageClient(app).post("/alerts/settings", data=form, headers=headers).status_code in (302, 400)
    seen = {}
    for role in ("viewer", "operator", "admin"):
        browser = PageClient(app)
        assert browser.login(role).status_code == 302
        page = browser.get("/alerts")
        html = page.get_data(as_text=True)
        seen[role] = (page.status_code, 'id="rule-form"' in html, 'id="channel-settings"' in html,
                      browser.post("/alerts/settings", data={**form, "csrf_token": browser.token("/alerts")})
                      .status_code)
    assert seen == {"viewer": (200, False, False, 403), "operator": (200, False, False, 403),
                    "admin": (200, True, True, 302)}
    assert fresh().get(ChannelSetting, "SMTP_FROM").value == "lpr@example.org"
    admin = PageClient(app)
    admin.login("admin")
    assert admin.post("/alerts/settings", data=form).status_code == 400  # no CSRF token


# --- channel settings on the page ---------------------------------------------------------------------


def _admin_page(app) -> PageClient:
    browser = PageClient(app)
    assert browser.login("admin").status_code == 302
    return browser


def test_a_secret_setting_is_kept_masked_and_audited_without_its_value(app, users):
    browser = _admin_page(app)
    secret = "line-token-ABCDEFGHIJKLMNOP-wxyz"
    answer = browser.post("/alerts/settings", data={"name": "LINE_CHANNEL_TOKEN", "value": secret,
                                                   "csrf_token": browser.token("/alerts")})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/alerts#channel-settings")
    assert fresh().get(ChannelSetting, "LINE_CHANNEL_TOKEN").value == secret
    html = browser.get("/alerts").get_data(as_text=True)
    assert secret not in html and secret[:-4] not in html and "••••wxyz" in html
    [entry] = audits("channel_setting.set")
    assert (entry.target, entry.username, entry.detail) == ("setting:LINE_CHANNEL_TOKEN", "admin", None)
    assert secret not in repr(entry.__dict__)
    answer = browser.post("/alerts/settings", data={"name": "LINE_CHANNEL_TOKEN", "action": "clear",
                                                   "csrf_token": browser.token("/alerts")})
    assert answer.status_code == 302 and fresh().get(ChannelSetting, "LINE_CHANNEL_TOKEN") is None
    assert [e.target for e in audits("channel_setting.clear")] == ["setting:LINE_CHANNEL_TOKEN"]


def test_a_smtp_url_shows_without_its_password(app, users):
    browser = _admin_page(app)
    url = "smtp://mailer:hunter2-very-secret@mail.example.org:587"
    assert browser.post("/alerts/settings", data={"name": "SMTP_URL", "value": url,
                                                  "csrf_token": browser.token("/alerts")}).status_code == 302
    html = browser.get("/alerts").get_data(as_text=True)
    assert "hunter2" not in html and "smtp://mailer:••••@mail.example.org:587" in html


@pytest.mark.parametrize(("name", "value", "words"), [
    ("SMTP_URL", "http://mail.example.org", "smtp://user:password@host"),
    ("SMTP_URL", "smtp://mail.example.org:port", "smtp://user:password@host"),
    ("SMTP_FROM", "nobody", "an e-mail address"),
    ("LINE_CHANNEL_TOKEN", "two words", "channel access token"),
    ("LINE_CHANNEL_TOKEN", "", "type a value"),
    ("PUBLIC_URL", "https://lpr.example.org", "unknown setting"),
])
def test_a_bad_setting_is_refused_without_repeating_it(app, users, name, value, words):
    browser = _admin_page(app)
    answer = browser.post("/alerts/settings", data={"name": name, "value": value,
                                                   "csrf_token": browser.token("/alerts")})
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert words in html
    if name == "LINE_CHANNEL_TOKEN" and value:
        assert value not in html
    assert fresh().scalars(select(ChannelSetting)).all() == []
    assert audits("channel_setting.set") == []


def test_a_setting_from_the_environment_is_read_only(app, users):
    app.config["LINE_CHANNEL_TOKEN"] = "env-token-0123456789-abcd"
    browser = _admin_page(app)
    html = browser.get("/alerts").get_data(as_text=True)
    start = html.index('data-setting="LINE_CHANNEL_TOKEN"')
    row = html[start:html.index('class="setting-row"', start) if 'class="setting-row"' in html[start:] else None]
    assert "environment · read-only" in row and 'name="value"' not in row and "••••abcd" in row
    assert "env-token-0123456789" not in html
    answer = browser.post("/alerts/settings", data={"name": "LINE_CHANNEL_TOKEN", "value": "another-token-1234",
                                                   "csrf_token": browser.token("/alerts")})
    assert answer.status_code == 400 and "set in the environment" in answer.get_data(as_text=True)
    assert fresh().get(ChannelSetting, "LINE_CHANNEL_TOKEN") is None


# --- the audit trail ---------------------------------------------------------------------------------


def test_rule_changes_are_audited(client, admin):
    rule_id = client.post("/api/alert-rules", json=RULE, headers=admin).get_json()["id"]
    client.patch(f"/api/alert-rules/{rule_id}", json={"active": False}, headers=admin)
    client.post("/api/alert-rules", json={"trigger": "nope"}, headers=admin)  # refused: not audited
    client.delete(f"/api/alert-rules/{rule_id}", headers=admin)
    entries = [e for e in fresh().scalars(select(AuditEntry).order_by(AuditEntry.id))
               if e.action.startswith("alert_rule.")]
    assert [(e.action, e.target, e.username) for e in entries] == [
        ("alert_rule.create", f"alert_rule:{rule_id}", "chief"),
        ("alert_rule.update", f"alert_rule:{rule_id}", "chief"),
        ("alert_rule.delete", f"alert_rule:{rule_id}", "chief")]
    assert entries[0].detail["channels"] == RULE["channels"] and entries[0].detail["hours"] == "22:00-06:00"
    assert entries[1].detail == {"active": False}
    assert entries[2].detail["trigger"] == "blacklist" and entries[2].detail["active"] is False
