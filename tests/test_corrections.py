"""Corrections of misreads (SPEC §10 "Corrections"): the service through the API and the record page, the
lists matched again, the visits, the audit trail, bad input, the training-set zip, who may do it, the
live alert and the page in Chromium."""

import csv
import io
import time
import zipfile
from datetime import timedelta
from urllib.parse import quote

import pytest
import requests
from sqlalchemy import func, select

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.models import (
    Alert,
    AuditEntry,
    BlacklistDetection,
    Camera,
    KnownGroup,
    KnownPlate,
    Record,
    Visit,
    utcnow,
)
from lprserver.statistics import top_plates

from .conftest import bearer
from .imagegen import data_uri, make_jpeg
from .test_ingest import close_client, fresh
from .test_live import Inbox, browser_socket
from .webserver import PageClient, csrf_token, screenshot, sign_in, web_session


def send(client, plate: str, camera_id: str = "CAM1", **fields) -> int:
    """Store a read through POST /api/records (the HTTP door: the real pipeline); return its id."""
    answer = client.post("/api/records", json={"camera_id": camera_id, "plate_number": plate,
                                               "confidence": 90, **fields})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["record_id"]


def patch(client, record_id: int, token: str, **body):
    return client.patch(f"/api/records/{record_id}", json=body, headers=bearer(token))


def record(record_id: int) -> Record:
    return fresh().get(Record, record_id)


# --- the API ---------------------------------------------------------------------------------------------


def test_a_correction_keeps_the_plate_as_sent_and_search_statistics_and_the_plate_page_follow(client, make_token):
    rid = send(client, "กข1284 กรุงเทพมหานคร")
    send(client, "ขค5555")
    token = make_token("operator", username="somchai")
    answer = patch(client, rid, token, plate_corrected="กข 1234", province="เชียงใหม่")
    assert answer.status_code == 200, answer.get_json()
    shown = answer.get_json()
    assert shown["id"] == rid and shown["plate_number"] == "กข1284 กรุงเทพมหานคร"
    assert (shown["plate_corrected"], shown["plate_normalized"], shown["province"], shown["province_code"],
            shown["plate_format"]) == ("กข 1234", "กข1234", "เชียงใหม่", "TH-50", "th_car")
    assert shown["corrected_by"] == "somchai" and shown["corrected_at"] and shown["review_state"] == "corrected"
    stored = record(rid)
    assert (stored.reviewed_by, stored.plate_number) == ("somchai", "กข1284 กรุงเทพมหานคร")
    assert stored.reviewed_at == stored.corrected_at
    # search by the corrected plate finds it; the misread finds nothing
    viewer = make_token("viewer")
    found = client.get("/api/records?plate=กข1234&plate_match=exact", headers=bearer(viewer)).get_json()
    assert [r["id"] for r in found["records"]] == [rid]
    assert client.get("/api/records?plate=กข1284&plate_match=exact", headers=bearer(viewer)).get_json()["total"] == 0
    assert client.get("/api/records?province_code=TH-50", headers=bearer(viewer)).get_json()["total"] == 1
    assert {"plate": "กข1234", "count": 1} in top_plates(fresh(), utcnow() - timedelta(hours=1))
    assert "กข1284" not in [p["plate"] for p in top_plates(fresh(), utcnow() - timedelta(hours=1))]
    # the plate's page (api/plates.py) counts the read under the plate it is
    assert client.get("/api/plates/กข1234", headers=bearer(viewer)).status_code == 200
    assert client.get("/api/plates/กข1284", headers=bearer(viewer)).status_code == 404
    [entry] = fresh().scalars(select(AuditEntry).where(AuditEntry.action == "record.correct")).all()
    assert entry.username == "somchai" and entry.target == f"record:{rid}"
    assert entry.detail["before"]["plate_normalized"] == "กข1284" and entry.detail["before"]["province_code"] == "TH-10"
    assert entry.detail["after"]["plate_normalized"] == "กข1234" and entry.detail["after"]["province_code"] == "TH-50"
    assert entry.detail["after"]["plate_corrected"] == "กข 1234"


def test_without_a_province_the_text_s_counts_else_the_read_keeps_its_own_and_empty_clears_it(client, make_token):
    token = make_token("operator")
    rid = send(client, "กข1284", province="ภูเก็ต")
    assert patch(client, rid, token, plate_corrected="กข1234").get_json()["province_code"] == "TH-83"
    assert patch(client, rid, token, plate_corrected="กข1234 ชลบุรี").get_json()["province_code"] == "TH-20"
    assert patch(client, rid, token, plate_corrected="กข1234", province="TH-10").get_json()["province"] == "กรุงเทพมหานคร"
    cleared = patch(client, rid, token, plate_corrected="กข1234", province="").get_json()
    assert (cleared["province"], cleared["province_code"]) == (None, None)


def test_a_correction_onto_a_blacklisted_plate_is_a_hit_with_its_alert_and_away_from_one_resolves_it(
        client, make_token):
    entry = add_entry(db.session, "ขค 9999", reason="รถหาย", category="stolen")
    db.session.commit()
    rid = send(client, "ขค9990")
    token = make_token("operator")
    assert not record(rid).blacklisted
    shown = patch(client, rid, token, plate_corrected="ขค9999").get_json()
    assert shown["blacklisted"] is True
    [detection] = fresh().scalars(select(BlacklistDetection).where(BlacklistDetection.record_id == rid)).all()
    assert (detection.entry_id, detection.match_type) == (entry.id, "normalized")  # typed without the space
    [alert] = fresh().scalars(select(Alert).where(Alert.record_id == rid)).all()
    assert (alert.trigger, alert.detection_id, alert.plate, alert.resolved_at) == ("blacklist", detection.id,
                                                                                  "ขค9999", None)
    assert client.get("/api/statistics", headers=bearer(token)).get_json()["blacklist_hits"] == 1
    # typed again: the same plate changes nothing but the stamp
    first_stamp = record(rid).corrected_at
    time.sleep(0.01)
    again = patch(client, rid, token, plate_corrected="ขค9999").get_json()
    assert again["blacklisted"] is True and again["corrected_at"] != first_stamp.isoformat()
    assert fresh().scalar(select(func.count(BlacklistDetection.id))) == 1
    assert fresh().scalar(select(func.count(Alert.id))) == 1
    # away from it: no longer blacklisted, its alert resolved (the hit stays: it did happen)
    away = patch(client, rid, token, plate_corrected="ขค1111").get_json()
    assert away["blacklisted"] is False
    assert fresh().get(Alert, alert.id).resolved_at is not None
    assert fresh().scalar(select(func.count(BlacklistDetection.id))) == 1


def test_a_read_sent_as_a_hit_and_corrected_to_the_same_plate_gets_no_second_alert(client, make_token):
    add_entry(db.session, "ขค 9999", category="stolen", match="lookalike")
    db.session.commit()
    rid = send(client, "ชค9999")  # a look-alike hit (ข/ช)
    assert record(rid).blacklisted and record(rid).review_state == "pending"
    patch(client, rid, make_token("operator"), plate_corrected="ชค9999")
    assert fresh().scalar(select(func.count(Alert.id))) == 1
    assert record(rid).review_state == "corrected"


def _gate(camera_id: str, role: str = "pass", allow_group: str | None = None) -> None:
    db.session.add(Camera(id=camera_id, role=role, allow_group=allow_group))
    db.session.commit()


def _known(plate: str, group: str) -> None:
    if db.session.get(KnownGroup, group) is None:
        db.session.add(KnownGroup(name=group))
    db.session.add(KnownPlate(plate=plate, plate_normalized=plate, group_name=group, name="ลูกบ้าน"))
    db.session.commit()


def test_at_a_gate_a_correction_onto_the_list_resolves_not_on_list_and_one_off_it_raises_one(client, make_token):
    _gate("GATE1", allow_group="residents")
    _known("กข1234", "residents")
    token = make_token("operator")
    rid = send(client, "กข1284", camera_id="GATE1")
    [alert] = fresh().scalars(select(Alert).where(Alert.record_id == rid)).all()
    assert alert.trigger == "not_on_list" and alert.resolved_at is None
    shown = patch(client, rid, token, plate_corrected="กข1234").get_json()
    assert shown["known"]["group"] == "residents"
    assert fresh().get(Alert, alert.id).resolved_at is not None
    listed = send(client, "กข1234", camera_id="GATE1")
    assert fresh().scalar(select(func.count(Alert.id)).where(Alert.record_id == listed)) == 0
    patch(client, listed, token, plate_corrected="กข9876")
    [raised] = fresh().scalars(select(Alert).where(Alert.record_id == listed)).all()
    assert (raised.trigger, raised.plate, raised.detail["group"]) == ("not_on_list", "กข9876", "residents")
    patch(client, listed, token, plate_corrected="กข9875")  # still off the list: its alert stands, no second
    assert fresh().scalar(select(func.count(Alert.id)).where(Alert.record_id == listed)) == 1


def test_the_visits_of_a_read_follow_its_correction_unless_the_new_plate_is_on_site(client, make_token):
    _gate("IN1", role="entry")
    _gate("OUT1", role="exit")
    token = make_token("operator")
    entry = send(client, "กข1284", camera_id="IN1")
    patch(client, entry, token, plate_corrected="กข1234")
    [visit] = fresh().scalars(select(Visit)).all()
    assert (visit.plate_normalized, visit.entry_record_id, visit.exited_at) == ("กข1234", entry, None)
    exit_ = send(client, "กข1234", camera_id="OUT1")
    assert fresh().get(Visit, visit.id).exit_record_id == exit_
    # an open visit whose plate another open visit already has stays as it is
    send(client, "ฮฮ1", camera_id="IN1")
    other = send(client, "ฮฮ2", camera_id="IN1")
    patch(client, other, token, plate_corrected="ฮฮ1")
    plates = sorted(fresh().scalars(select(Visit.plate_normalized).where(Visit.exited_at.is_(None))))
    assert plates == ["ฮฮ1", "ฮฮ2"]
    assert record(other).plate_normalized == "ฮฮ1"


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"plate_corrected": ""}, "plate_corrected", "type the plate"),
    ({"plate_corrected": " - . "}, "plate_corrected", "empty or over 32"),
    ({"plate_corrected": "ก" * 33}, "plate_corrected", "empty or over 32"),
    ({"plate_corrected": "ก" * 65}, "plate_corrected", "longer than 64"),
    ({"plate_corrected": "กข1234", "province": "ไม่มีจังหวัดนี้"}, "province", "is not a Thai province"),
    ({"plate_corrected": "กข1234", "province": "TH-99"}, "province", "is not a Thai province"),
    ({"province": "TH-10"}, "plate_corrected", "required"),
    ({"plate_corrected": 12}, "plate_corrected", "Not a valid string"),
])
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(client, make_token, body, field, message):
    rid = send(client, "กข1284")
    answer = patch(client, rid, make_token("operator"), **body)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "validation_error" and error["field"] == field and message in error["message"]
    stored = record(rid)
    assert (stored.plate_normalized, stored.plate_corrected, stored.corrected_at) == ("กข1284", None, None)
    assert fresh().scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "record.correct")) == 0


def test_an_unknown_record_is_404_json(client, make_token):
    answer = patch(client, 987654, make_token("admin"), plate_corrected="กข1234")
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"


# --- the training set ------------------------------------------------------------------------------------


def export(client, query: str, token: str | None = None, headers: dict | None = None):
    """GET the zip, read whole and closed (a server closes the spooled file when it has sent it)."""
    answer = client.get(f"/api/corrections/export.zip{query}", headers=headers if headers is not None
                        else bearer(token))
    answer.get_data()
    answer.close()
    return answer


def test_the_export_zip_holds_every_corrected_image_and_its_labels(client, make_token, image_root):
    token = make_token("operator")
    jpeg = make_jpeg(seed=3)
    a = send(client, "กข1284", camera_id="CAM1", image_data=data_uri(jpeg))
    b = send(client, "ขค5678", camera_id="CAM2", image_data=data_uri(make_jpeg(seed=4)))
    send(client, "ฮฮ1", camera_id="CAM1", image_data=data_uri(make_jpeg(seed=5)))  # not corrected
    no_image = send(client, "กก1", camera_id="CAM1")
    for rid, plate in ((a, "กข1234"), (b, "ขค5679"), (no_image, "กก2")):
        assert patch(client, rid, token, plate_corrected=plate).status_code == 200
    answer = export(client, "", token)
    assert answer.status_code == 200 and answer.mimetype == "application/zip"
    assert "attachment" in answer.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(answer.data))
    rows = list(csv.DictReader(io.StringIO(archive.read("labels.csv").decode("utf-8"))))
    assert list(rows[0].keys()) == ["file", "plate_sent", "plate_corrected", "camera_id", "captured_at"]
    assert [(r["file"], r["plate_sent"], r["plate_corrected"], r["camera_id"]) for r in rows] == [
        (f"images/{a}.jpg", "กข1284", "กข1234", "CAM1"), (f"images/{b}.jpg", "ขค5678", "ขค5679", "CAM2")]
    assert all(r["captured_at"] for r in rows)
    names = set(archive.namelist())
    assert {r["file"] for r in rows} <= names and names == {r["file"] for r in rows} | {"labels.csv"}
    assert archive.read(f"images/{a}.jpg") == jpeg
    # filters: a camera, a time range of the corrections
    only = zipfile.ZipFile(io.BytesIO(export(client, "?camera_id=CAM2", token).data))
    assert sorted(only.namelist()) == [f"images/{b}.jpg", "labels.csv"]
    later = (utcnow() + timedelta(minutes=5)).isoformat()
    none = zipfile.ZipFile(io.BytesIO(export(client, f"?since={quote(later)}", token).data))
    assert none.namelist() == ["labels.csv"]
    bad = export(client, "?since=yesterday", token)
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "since"
    exports = fresh().scalars(select(AuditEntry).where(AuditEntry.action == "corrections.export")).all()
    assert len(exports) == 3 and exports[1].detail["camera_id"] == "CAM2"


# --- who may correct and export --------------------------------------------------------------------------


def test_the_api_routes_are_walked_for_every_kind_of_caller(client, make_token):
    rid = send(client, "กข1284")
    callers = {"stranger": {}, "viewer": bearer(make_token("viewer")), "operator": bearer(make_token("operator")),
               "admin": bearer(make_token("admin")), "read-only": bearer(make_token("admin", "read")),
               "read-only operator": bearer(make_token("operator", "read"))}
    patched = {who: client.patch(f"/api/records/{rid}", json={"plate_corrected": f"กข{i}"}, headers=h).status_code
               for i, (who, h) in enumerate(callers.items())}
    assert patched == {"stranger": 401, "viewer": 403, "operator": 200, "admin": 200, "read-only": 403,
                       "read-only operator": 403}
    exported = {who: export(client, "", headers=h).status_code for who, h in callers.items()}
    assert exported == {"stranger": 401, "viewer": 403, "operator": 200, "admin": 200, "read-only": 200,
                        "read-only operator": 200}
    for who in ("viewer", "read-only"):
        body = client.patch(f"/api/records/{rid}", json={"plate_corrected": "x"}, headers=callers[who]).get_json()
        assert body["error"]["code"] == "forbidden"


def test_the_api_with_the_session_cookie_needs_the_csrf_header(app, users):
    rid = PageClient(app).post("/api/records", json={"camera_id": "CAM1", "plate_number": "กข1284"}).get_json()[
        "record_id"]
    browser = PageClient(app)
    assert browser.login("operator").status_code == 302
    token = browser.token("/")
    assert browser.open("PATCH", f"/api/records/{rid}", json={"plate_corrected": "กข1234"}).status_code == 400
    answer = browser.open("PATCH", f"/api/records/{rid}", json={"plate_corrected": "กข1234"},
                          headers={"X-CSRFToken": token})
    assert answer.status_code == 200 and answer.get_json()["corrected_by"] == "operator"


# --- the record page -------------------------------------------------------------------------------------


def test_the_record_page_corrects_and_shows_who_did_it(app, users):
    rid = PageClient(app).post("/api/records", json={"camera_id": "CAM1", "plate_number": "กข1284"}).get_json()[
        "record_id"]
    browser = PageClient(app)
    assert browser.login("operator").status_code == 302
    page = browser.get(f"/records/{rid}").get_data(as_text=True)
    assert 'id="correction-form"' in page and 'name="csrf_token"' in page and "Chiang Mai · TH-50" in page
    token = csrf_token(page)
    answer = browser.post(f"/records/{rid}/correct", data={"plate_corrected": "กข 1234", "province": "TH-50",
                                                           "csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/records/{rid}")
    page = browser.get(f"/records/{rid}").get_data(as_text=True)
    assert "Corrected to กข 1234 · เชียงใหม่" in page
    assert 'id="record-correction"' in page and "Sent as" in page and "กข1284" in page
    assert "corrected by operator at" in page
    stored = record(rid)
    assert (stored.plate_normalized, stored.province_code, stored.corrected_by) == ("กข1234", "TH-50", "operator")


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"plate_corrected": "--"}, "plate_corrected", "empty or over 32"),
    ({"plate_corrected": ""}, "plate_corrected", "type the plate"),
    ({"plate_corrected": "กข1234", "province": "TH-99"}, "province", "is not a Thai province"),
])
def test_the_form_shows_a_refusal_under_its_field_and_changes_nothing(app, users, form, field, message):
    rid = PageClient(app).post("/api/records", json={"camera_id": "CAM1", "plate_number": "กข1284"}).get_json()[
        "record_id"]
    browser = PageClient(app)
    assert browser.login("admin").status_code == 302
    answer = browser.post(f"/records/{rid}/correct", data={**form, "csrf_token": browser.token(f"/records/{rid}")})
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert f'id="correct-error-{field}"' in page and message in page
    assert f'value="{form["plate_corrected"]}"' in page  # what was typed comes back
    assert record(rid).corrected_at is None


def test_the_correction_form_is_walked_for_every_kind_of_caller(app, users, make_token):
    rid = PageClient(app).post("/api/records", json={"camera_id": "CAM1", "plate_number": "กข1284"}).get_json()[
        "record_id"]
    path = f"/records/{rid}/correct"
    form = {"plate_corrected": "กข1234"}
    stranger = PageClient(app)
    answer = stranger.post(path, data={**form, "csrf_token": stranger.token("/login")})
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    for scope in ("read", "read-write"):  # pages never take a token
        answer = PageClient(app).post(path, data=form, headers=bearer(make_token("admin", scope)))
        assert answer.status_code in (302, 400), scope
    viewer = PageClient(app)
    assert viewer.login("viewer").status_code == 302
    page = viewer.get(f"/records/{rid}").get_data(as_text=True)
    assert 'id="correction-form"' not in page
    assert viewer.post(path, data={**form, "csrf_token": csrf_token(page)}).status_code == 403
    operator = PageClient(app)
    assert operator.login("operator").status_code == 302
    assert operator.post(path, data=form).status_code == 400  # no CSRF token
    assert record(rid).corrected_at is None
    for role in ("operator", "admin"):
        browser = PageClient(app)
        assert browser.login(role).status_code == 302
        answer = browser.post(path, data={**form, "csrf_token": browser.token(f"/records/{rid}")})
        assert answer.status_code == 302
        assert record(rid).corrected_by == role
    assert browser.post("/records/987654/correct", data={**form, "csrf_token": browser.token("/")}).status_code == 404


# --- live: the alert reaches every open page ---------------------------------------------------------------


def test_a_correction_onto_a_blacklisted_plate_pops_up_live(webapp, app, users):
    add_entry(db.session, "ขค 9999", reason="หมายจับ", category="wanted")
    db.session.commit()
    http = web_session(webapp, "operator")
    listener = browser_socket(webapp, http)
    inbox = Inbox(listener, "blacklist_alert")
    try:
        rid = requests.post(f"{webapp.url}/api/records", json={"camera_id": "CAM1", "plate_number": "ขค9990"},
                            timeout=10).json()["record_id"]
        token = csrf_token(http.get(f"{webapp.url}/records/{rid}", timeout=10).text)
        answer = http.patch(f"{webapp.url}/api/records/{rid}", json={"plate_corrected": "ขค9999"},
                            headers={"X-CSRFToken": token}, timeout=10)
        assert answer.status_code == 200, answer.text
        _, alert, _ = inbox.wait_for(lambda e, d: d["record"]["id"] == rid)
    finally:
        close_client(listener)
        http.close()
    assert alert["record"]["plate_corrected"] == "ขค9999" and alert["record"]["plate_number"] == "ขค9990"
    assert alert["entry"]["reason"] == "หมายจับ" and alert["alert_id"] and alert["detection_id"]
    stored = fresh().get(Alert, alert["alert_id"])
    assert (stored.trigger, stored.record_id) == ("blacklist", rid)


def test_the_record_page_in_chromium_corrects_a_misread_and_the_plate_page_and_alert_follow(
        webapp, app, users, browser_page):
    add_entry(db.session, "ขค 9999", reason="หมายจับ", category="wanted")
    db.session.commit()
    jpeg = make_jpeg(seed=7)
    rid = requests.post(f"{webapp.url}/api/records", timeout=10, json={
        "camera_id": "CAM1", "plate_number": "ขค9990", "image_data": data_uri(jpeg)}).json()["record_id"]
    page = browser_page
    sign_in(page, webapp, "operator")
    page.goto(f"{webapp.url}/records/{rid}")
    page.fill("#correct-plate", "ขค 9999")
    page.select_option("#correct-province", "TH-10")
    screenshot(page, "record-correction-form")
    page.click("#correction-form button[type=submit]")
    page.wait_for_url(f"{webapp.url}/records/{rid}")
    page.locator("#record-correction").wait_for(timeout=10_000)
    assert "กล้องส่งมาเป็น ขค9990" in page.locator("#record-correction").inner_text()
    assert page.locator("h1.record-plate").inner_text().strip() == "ขค 9999"
    # the pop-up of the blacklist hit the correction raised (reloaded pages replay unacknowledged hits)
    card = page.locator(".lpr-alert").first
    card.wait_for(timeout=10_000)
    assert "ขค 9999" in card.inner_text() or "ขค9999" in card.inner_text()
    screenshot(page, "record-corrected")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{webapp.url}/records/{rid}")
    page.locator("#correction-form").wait_for()
    screenshot(page, "record-correction-form-phone")
    wide = page.evaluate("[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 391)"
                         ".map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 8)")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{webapp.url}/plates/ขค9999")
    body = page.locator("main").inner_text()
    assert str(rid) in page.content() and "ขค9999" in body
    page.goto(f"{webapp.url}/plates/ขค9990")
    assert page.locator("main").inner_text() and fresh().get(Record, rid).plate_normalized == "ขค9999"
