"""Alerts (SPEC §11): raised by the real daemon's reads, listed by `GET /api/alerts`, read one by one and
acknowledged by the API and by the pop-up, whose card shows every trigger in its own colour."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from lprserver.alerts import raise_alert
from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.models import Alert, AuditEntry, BlacklistDetection, Camera, KnownGroup, KnownPlate, utcnow

from .conftest import bearer
from .test_ingest import camera, fresh, wait_until
from .webserver import PageClient, screenshot, sign_in, web_session


def gate_with_list(camera_id: str = "DORM", group: str = "residents") -> None:
    db.session.add(KnownGroup(name=group))
    db.session.flush()
    db.session.add(Camera(id=camera_id, name="หน้าหอพัก", role="entry", allow_group=group))
    db.session.add(KnownPlate(plate="กข 1234", plate_normalized="กข1234", group_name=group, name="Somchai"))
    db.session.commit()


def test_reads_raise_alerts_listed_newest_first_and_filtered(daemon, app, client, make_token):
    gate_with_list()
    add_entry(db.session, "ฮฮ 99", reason="รถหาย", category="stolen")
    db.session.commit()
    token = make_token("viewer", "read")
    with camera(daemon) as sio:
        for camera_id, plate in (("DORM", "กข1234"), ("DORM", "ขค 555"), ("ROAD", "ฮฮ99"), ("DORM", "ฮฮ 99")):
            assert sio.call("lpr_data", {"camera_id": camera_id, "plate_number": plate}, timeout=10)["status"] \
                == "success"

    def listed(query: str = "") -> list[tuple[str, str, str]]:
        answer = client.get(f"/api/alerts{query}", headers=bearer(token))
        assert answer.status_code == 200, answer.get_json()
        return [(a["trigger"], a["plate"], a["camera_id"]) for a in answer.get_json()["alerts"]]

    # The known plate at its gate raises nothing; the others do; ฮฮ99 at the gate raises both.
    everything = listed()
    assert sorted(everything) == sorted([("not_on_list", "ขค555", "DORM"), ("blacklist", "ฮฮ99", "ROAD"),
                                         ("not_on_list", "ฮฮ99", "DORM"), ("blacklist", "ฮฮ99", "DORM")])
    page = client.get("/api/alerts", headers=bearer(token)).get_json()
    ids = [a["id"] for a in page["alerts"]]
    assert ids == sorted(ids, reverse=True) and (page["total"], page["total_kind"]) == (4, "exact")
    first = page["alerts"][-1]
    assert set(first) >= {"id", "trigger", "plate", "camera_id", "record_id", "created_at", "acknowledged_by",
                          "acknowledged_at", "resolved_at", "detail"}
    assert first["detail"] == {"group": "residents"} and first["acknowledged_by"] is None
    assert listed("?trigger=blacklist") == [("blacklist", "ฮฮ99", "DORM"), ("blacklist", "ฮฮ99", "ROAD")]
    assert sorted(listed("?camera_id=DORM&trigger=not_on_list")) == [("not_on_list", "ขค555", "DORM"),
                                                                     ("not_on_list", "ฮฮ99", "DORM")]
    assert listed("?acknowledged=true") == [] and len(listed("?acknowledged=false")) == 4
    assert len(listed("?per_page=3")) == 3 and len(listed("?per_page=3&page=2")) == 1


def some_alerts() -> tuple[Alert, Alert, BlacklistDetection]:
    """A blacklist alert with its hit, and a not_on_list alert, as the pipeline stores them."""
    from lprserver.models import Record

    now = utcnow()
    db.session.add(Camera(id="DORM", allow_group="residents"))
    entry = add_entry(db.session, "ฮฮ 99", reason="รถหาย", category="stolen")
    db.session.flush()
    record = Record(camera_id="DORM", plate_number="ฮฮ 99", plate_normalized="ฮฮ99", received_at=now,
                    captured_at=now, blacklisted=True)
    db.session.add(record)
    db.session.flush()
    detection = BlacklistDetection(record_id=record.id, entry_id=entry.id, detected_at=now, match_type="exact")
    db.session.add(detection)
    db.session.flush()
    hit = raise_alert(db.session, "blacklist", now, plate="ฮฮ99", camera_id="DORM", record_id=record.id,
                      detection_id=detection.id, detail={"entry_id": entry.id})
    gate = raise_alert(db.session, "not_on_list", now + timedelta(seconds=1), plate="ฮฮ99", camera_id="DORM",
                       record_id=record.id, detail={"group": "residents"})
    db.session.commit()
    return hit, gate, detection


def test_one_alert_has_its_deliveries_and_unknown_ids_are_404_json(app, client, api_token):
    _, gate, _ = some_alerts()
    answer = client.get(f"/api/alerts/{gate.id}", headers=bearer(api_token)).get_json()
    assert (answer["id"], answer["trigger"], answer["deliveries"]) == (gate.id, "not_on_list", [])
    for path in (f"/api/alerts/{gate.id + 100}", f"/api/alerts/{gate.id + 100}/acknowledge"):
        method = client.post if path.endswith("acknowledge") else client.get
        missing = method(path, headers=bearer(api_token))
        assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found", path


@pytest.mark.parametrize(("query", "field"), [
    ("trigger=stolen", "trigger"), ("acknowledged=perhaps", "acknowledged"), ("page=0", "page"),
    ("per_page=1000", "per_page"), ("camera_id=" + "x" * 65, "camera_id"),
])
def test_bad_filters_are_400_naming_the_field(app, client, api_token, query, field):
    answer = client.get(f"/api/alerts?{query}", headers=bearer(api_token))
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "validation_error"
    assert answer.get_json()["error"]["field"] == field


def test_acknowledging_keeps_who_and_when_and_a_blacklist_alert_acknowledges_its_hit(app, client, make_token):
    hit, gate, detection = some_alerts()
    token = make_token("operator", username="somsri")
    answer = client.post(f"/api/alerts/{hit.id}/acknowledge", headers=bearer(token))
    assert answer.status_code == 200, answer.get_json()
    shown = answer.get_json()
    assert shown["acknowledged_by"] == "somsri" and shown["acknowledged_at"] is not None
    db.session.rollback()
    assert db.session.get(BlacklistDetection, detection.id).acknowledged_at is not None
    first = shown["acknowledged_at"]
    again = client.post(f"/api/alerts/{hit.id}/acknowledge", headers=bearer(make_token("admin"))).get_json()
    assert (again["acknowledged_by"], again["acknowledged_at"]) == ("somsri", first)  # the first one stays
    assert client.post(f"/api/alerts/{gate.id}/acknowledge", headers=bearer(token)).status_code == 200
    listed = client.get("/api/alerts?acknowledged=true", headers=bearer(token)).get_json()["alerts"]
    assert {a["id"] for a in listed} == {hit.id, gate.id}
    assert client.get("/api/alerts?acknowledged=false", headers=bearer(token)).get_json()["alerts"] == []
    db.session.rollback()
    actions = sorted((a.action, a.target) for a in db.session.scalars(select(AuditEntry)))
    assert actions == sorted([("alert.acknowledge", f"alert:{gate.id}"), ("alert.acknowledge", f"alert:{hit.id}"),
                              ("blacklist.acknowledge", f"detection:{detection.id}")])


def test_the_pop_up_route_acknowledges_hits_with_their_alerts_and_alerts_by_id(app, users):
    hit, gate, detection = some_alerts()
    browser = PageClient(app)
    assert browser.login("operator").status_code == 302
    token = browser.token("/")
    headers = {"X-CSRFToken": token}
    answer = browser.post("/alerts/acknowledge", json={"detection_ids": [detection.id]}, headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(Alert, hit.id).acknowledged_at is not None  # the hit's alert goes with it
    assert db.session.get(Alert, gate.id).acknowledged_at is None
    answer = browser.post("/alerts/acknowledge", json={"alert_ids": [gate.id]}, headers=headers).get_json()
    assert [a["alert_id"] for a in answer["alerts"]] == [gate.id] and answer["alerts"][0]["by"] == "operator"
    db.session.rollback()
    assert db.session.get(Alert, gate.id).acknowledged_by is not None
    for body in ({}, {"alert_ids": []}, {"alert_ids": ["1"]}, {"alert_ids": [True]}, {"alert_ids": [0]},
                 {"alert_ids": list(range(1, 502))}, {"detection_ids": 5}):
        assert browser.post("/alerts/acknowledge", json=body, headers=headers).status_code == 400, body
    assert browser.post("/alerts/acknowledge", json={"alert_ids": [gate.id + 99]}, headers=headers).status_code \
        == 404
    viewer = PageClient(app)
    assert viewer.login("viewer").status_code == 302
    assert viewer.post("/alerts/acknowledge", json={"alert_ids": [gate.id]},
                       headers={"X-CSRFToken": viewer.token("/")}).status_code == 403


def test_missed_alerts_are_replayed_to_a_page_that_connects(app, users):
    hit, gate, _ = some_alerts()
    browser = PageClient(app)
    assert browser.login("viewer").status_code == 302
    missed = browser.get("/live/missed").get_json()
    assert [a["alert_id"] for a in missed["alerts"]] == [None]  # the hit's card (by its detection)
    [other] = missed["other_alerts"]
    assert (other["id"], other["trigger"], other["detail"], other["record"]["id"]) == \
        (gate.id, "not_on_list", {"group": "residents"}, gate.record_id)
    db.session.get(Alert, gate.id).acknowledged_at = utcnow()
    db.session.commit()
    assert browser.get("/live/missed").get_json()["other_alerts"] == []


def test_the_routes_are_walked_for_every_kind_of_caller(app, users, client, make_token):
    _, gate, _ = some_alerts()
    reads = ("/api/alerts", f"/api/alerts/{gate.id}")
    ack = f"/api/alerts/{gate.id}/acknowledge"
    for path in reads:
        assert client.get(path).status_code == 401, path
    assert client.post(ack).status_code == 401
    for role in ("viewer", "operator", "admin"):
        for path in reads:
            assert client.get(path, headers=bearer(make_token(role, "read"))).status_code == 200
        assert client.post(ack, headers=bearer(make_token(role, "read"))).status_code == 403  # read-only
    assert client.post(ack, headers=bearer(make_token("viewer"))).status_code == 403
    assert fresh().get(Alert, gate.id).acknowledged_at is None
    for role in ("operator", "admin"):
        assert client.post(ack, headers=bearer(make_token(role))).status_code == 200
    # With the session cookie: viewers read and are refused the write; writes need the CSRF token.
    viewer = PageClient(app)
    assert viewer.login("viewer").status_code == 302
    assert viewer.get("/api/alerts").status_code == 200
    assert viewer.post(ack, headers={"X-CSRFToken": viewer.token("/")}).status_code == 403
    operator = PageClient(app)
    assert operator.login("operator").status_code == 302
    assert operator.post(ack).status_code == 400  # no CSRF token
    assert operator.post(ack, headers={"X-CSRFToken": operator.token("/")}).status_code == 200
    # The pop-up route takes no token.
    answer = PageClient(app).post("/alerts/acknowledge", json={"alert_ids": [gate.id]},
                                  headers=bearer(make_token("admin")))
    assert answer.status_code in (302, 400, 401)


def test_the_openapi_document_has_the_new_paths(app, client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert {"/api/visits", "/api/alerts", "/api/alerts/{alert_id}", "/api/alerts/{alert_id}/acknowledge"} <= set(paths)


@pytest.mark.parametrize("live_daemon", ["gevent"], indirect=True)
def test_the_pop_up_shows_a_not_on_list_card_which_an_operator_acknowledges(webapp, live_daemon, app, users,
                                                                           browser_page):
    gate_with_list()
    add_entry(db.session, "ฮฮ 99", reason="รถหาย", category="stolen")
    db.session.commit()
    page = browser_page
    sign_in(page, webapp, "operator")
    with camera(live_daemon) as sio:
        record_id = sio.call("lpr_data", {"camera_id": "DORM", "plate_number": "ขค 555", "location": "หน้าหอพัก"},
                             timeout=10)["record_id"]
        sio.call("lpr_data", {"camera_id": "ROAD", "plate_number": "ฮฮ99"}, timeout=10)
    card = page.locator('.lpr-alert[data-trigger="not_on_list"]')
    card.wait_for(timeout=10_000)
    page.locator(".lpr-alert").nth(1).wait_for(state="attached", timeout=10_000)  # and the blacklist card
    assert card.locator(".alert-match").text_content() == "ไม่อยู่ในรายชื่อ: residents"  # the browser asks for Thai
    assert card.locator(".alert-plate").text_content() == "ขค 555"
    assert card.locator(".alert-head-label").text_content() == "ไม่อยู่ในรายชื่อ"
    assert card.locator('[data-field="link"]').get_attribute("href") == f"/records/{record_id}"
    colour = card.evaluate("c => getComputedStyle(c.querySelector('.card-header')).backgroundColor")
    assert colour == "rgb(255, 193, 7)"  # amber; the blacklist card stays red
    red = page.locator(".lpr-alert:not([data-trigger])").first
    assert red.evaluate("c => getComputedStyle(c.querySelector('.card-header')).backgroundColor") == \
        "rgb(220, 53, 69)"
    page.set_viewport_size({"width": 1366, "height": 900})
    screenshot(page, "alert-not-on-list")
    if "compact" in (card.get_attribute("class") or ""):
        card.locator(".card-header").click()
    card.locator(".btn-ack").click()
    page.locator('.lpr-alert[data-trigger="not_on_list"].acknowledged').wait_for(timeout=10_000)
    alert = wait_until(lambda: fresh().scalar(select(Alert).where(Alert.trigger == "not_on_list",
                                                                  Alert.acknowledged_at.is_not(None))), 5)
    assert alert is not None and alert.record_id == record_id
    # A page opened now does not show it again; the blacklist hit still waits.
    page.goto(f"{webapp.url}/records")
    page.locator(".lpr-alert").first.wait_for(timeout=10_000)
    page.wait_for_timeout(500)
    assert page.locator('.lpr-alert[data-trigger="not_on_list"]').count() == 0
    http = web_session(webapp, "viewer")
    assert http.get(f"{webapp.url}/live/missed", timeout=10).json()["other_alerts"] == []
    http.close()
