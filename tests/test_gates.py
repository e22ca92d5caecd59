"""Gates (SPEC §10): a camera's role and allow_group, set with PATCH /api/cameras/<id> and on /cameras;
a read at a gate of a plate not on its list raises not_on_list, through the real daemon and live channel;
the cameras page counts corrected reads."""

import pytest
from sqlalchemy import select

from lprserver.extensions import db
from lprserver.models import Alert, AuditEntry, Camera, KnownGroup, KnownPlate, Record, utcnow

from .conftest import bearer
from .test_ingest import SEED_READ, camera, close_client, fresh, wait_until
from .test_live import Inbox, browser_socket
from .webserver import PageClient, web_session


def _camera(camera_id: str = "GATE1", **fields) -> Camera:
    row = Camera(id=camera_id, created_at=utcnow(), **fields)
    db.session.add(row)
    db.session.commit()
    return row


def _known(plate: str, group: str, **fields) -> KnownPlate:
    if db.session.get(KnownGroup, group) is None:
        db.session.add(KnownGroup(name=group))
        db.session.flush()
    row = KnownPlate(plate=plate, plate_normalized=plate, group_name=group, **fields)
    db.session.add(row)
    db.session.commit()
    return row


# --- PATCH /api/cameras/<id> -------------------------------------------------------------------------


def test_patch_sets_role_group_name_and_place_and_get_shows_them(client, api_token):
    _camera()
    db.session.add(KnownGroup(name="residents"))
    db.session.commit()
    h = bearer(api_token)
    answer = client.patch("/api/cameras/GATE1", headers=h, json={
        "role": "entry", "allow_group": "residents", "name": "ประตูหน้า", "location": "หน้าหอพัก",
        "latitude": 13.75, "longitude": 100.5})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["role"], body["allow_group"], body["name"], body["location"], body["latitude"]) == (
        "entry", "residents", "ประตูหน้า", "หน้าหอพัก", 13.75)
    [listed] = client.get("/api/cameras", headers=h).get_json()["cameras"]
    assert (listed["role"], listed["allow_group"], listed["corrections"]) == ("entry", "residents", 0)
    assert client.get("/api/cameras/GATE1", headers=h).get_json()["allow_group"] == "residents"
    cleared = client.patch("/api/cameras/GATE1", headers=h, json={"allow_group": "", "role": "pass"}).get_json()
    assert (cleared["allow_group"], cleared["role"], cleared["name"]) == (None, "pass", "ประตูหน้า")
    assert client.patch("/api/cameras/GATE1", headers=h, json={"allow_group": None}).status_code == 200
    db.session.rollback()
    first, *_ = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "camera.update")
                                   .order_by(AuditEntry.id)).all()
    assert first.detail["allow_group"] == [None, "residents"] and first.target == "camera:GATE1"


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"allow_group": "nobody"}, "allow_group", "no such group"),
    ({"role": "gate"}, "role", "Must be one of"),
    ({"latitude": 91}, "latitude", "Must be greater than or equal to -90"),
    ({"longitude": -180.5}, "longitude", "Must be greater than or equal to -180"),
    ({"allow_group": "g" * 65}, "allow_group", "Longer than maximum"),
    ({"name": "n" * 129}, "name", "Longer than maximum"),
])
def test_bad_gate_settings_are_refused_and_change_nothing(client, api_token, body, field, message):
    _camera(role="exit")
    answer = client.patch("/api/cameras/GATE1", headers=bearer(api_token), json={"name": "changed", **body})
    error = answer.get_json()["error"]
    assert answer.status_code == 400 and error["field"] == field and message in error["message"], error
    db.session.rollback()
    row = db.session.get(Camera, "GATE1")
    assert (row.role, row.allow_group, row.name) == ("exit", None, None)


def test_an_unknown_camera_answers_404_json(client, api_token):
    answer = client.patch("/api/cameras/NOPE", headers=bearer(api_token), json={"role": "entry"})
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"


def test_patch_is_in_the_openapi_document(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert "patch" in paths["/api/cameras/{camera_id}"]
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    assert {"role", "allow_group", "corrections"} <= set(schemas["CameraOut"]["properties"])


# --- the cameras page --------------------------------------------------------------------------------


def test_the_cameras_page_sets_a_gate_and_counts_corrected_reads(app, users):
    _camera()
    _camera("YARD")
    _known("กข1234", "residents")
    now = utcnow()
    for plate, corrected in (("AB1", now), ("AB2", now), ("AB3", None)):
        db.session.add(Record(camera_id="GATE1", plate_number=plate, plate_normalized=plate, captured_at=now,
                              received_at=now, corrected_at=corrected, plate_corrected=plate if corrected else None))
    db.session.commit()
    browser = PageClient(app)
    assert browser.login("operator").status_code == 302
    page = browser.get("/cameras").get_data(as_text=True)
    row = page.split('data-camera-id="GATE1"')[1].split("</tr>")[0]
    assert '<td class="text-end camera-corrected">2</td>' in row and 'value="residents"' in row
    assert '<td class="text-end camera-corrected">0</td>' in page.split('data-camera-id="YARD"')[1]
    token = browser.token("/cameras")
    answer = browser.post("/cameras/GATE1/gate", data={"role": "entry", "allow_group": "residents",
                                                       "csrf_token": token})
    assert answer.status_code == 302
    db.session.rollback()
    assert (db.session.get(Camera, "GATE1").role, db.session.get(Camera, "GATE1").allow_group) == (
        "entry", "residents")
    page = browser.get("/cameras").get_data(as_text=True).split('data-camera-id="GATE1"')[1].split("</tr>")[0]
    assert '<option value="entry" selected>' in page and '<option value="residents" selected>' in page
    bad = browser.post("/cameras/GATE1/gate", data={"role": "exit", "allow_group": "nobody", "csrf_token": token})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "no such group" in html.split('id="gate-error"')[1].split("</div>")[0]
    bad = browser.post("/cameras/GATE1/gate", data={"role": "sideways", "allow_group": "", "csrf_token": token})
    assert bad.status_code == 400 and "role must be one of" in bad.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(Camera, "GATE1").role == "entry"


# --- who may do what ----------------------------------------------------------------------------------


def test_the_new_routes_are_walked_for_every_kind_of_caller(app, client, users, make_token):
    _camera()
    db.session.add(KnownGroup(name="g"))
    db.session.commit()
    patch = {"role": "exit"}
    assert client.patch("/api/cameras/GATE1", json=patch).status_code == 401
    tokens = {who: make_token(role, scope) for who, role, scope in (
        ("viewer", "viewer", "read-write"), ("read-only", "admin", "read"),
        ("operator", "operator", "read-write"), ("admin", "admin", "read-write"))}
    for who, token in tokens.items():
        assert client.get("/api/cameras", headers=bearer(token)).status_code == 200, who
    for who in ("viewer", "read-only"):
        answer = client.patch("/api/cameras/GATE1", headers=bearer(tokens[who]), json=patch)
        assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "forbidden", who
    db.session.rollback()
    assert db.session.get(Camera, "GATE1").role == "pass"
    for who, role in (("operator", "exit"), ("admin", "entry")):
        answer = client.patch("/api/cameras/GATE1", headers=bearer(tokens[who]), json={"role": role})
        assert answer.status_code == 200 and answer.get_json()["role"] == role, who
    form = {"role": "exit", "allow_group": "g"}
    stranger = PageClient(app)
    answer = stranger.post("/cameras/GATE1/gate", data={**form, "csrf_token": stranger.token("/login")})
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    for scope in ("read", "read-write"):  # pages never take a Bearer token
        answer = PageClient(app).post("/cameras/GATE1/gate", data=form, headers=bearer(make_token("admin", scope)))
        assert answer.status_code in (302, 400)
    viewer = PageClient(app)
    assert viewer.login("viewer").status_code == 302
    page = viewer.get("/cameras").get_data(as_text=True)
    assert "/cameras/GATE1/gate" not in page and "camera-corrected" in page
    assert viewer.post("/cameras/GATE1/gate", data={**form, "csrf_token": viewer.token("/cameras")}).status_code == 403
    db.session.rollback()
    assert db.session.get(Camera, "GATE1").allow_group is None
    for role in ("operator", "admin"):
        browser = PageClient(app)
        assert browser.login(role).status_code == 302
        assert browser.post("/cameras/GATE1/gate", data=form).status_code == 400  # no CSRF token
        answer = browser.post("/cameras/GATE1/gate", data={**form, "csrf_token": browser.token("/cameras")})
        assert answer.status_code == 302, role
    db.session.rollback()
    assert db.session.get(Camera, "GATE1").allow_group == "g"


# --- through the real daemon ---------------------------------------------------------------------------


def _alerts() -> list[Alert]:
    return fresh().scalars(select(Alert).where(Alert.trigger == "not_on_list").order_by(Alert.id)).all()


def test_a_gate_raises_not_on_list_for_plates_outside_its_group_only(daemon, app, client, api_token):
    _camera(role="entry", allow_group="residents")
    _known("กข1234", "residents", name="สมชาย")
    _known("ขค5678", "staff")
    with camera(daemon) as sio:
        def send(plate: str) -> dict:
            return sio.call("lpr_data", {**SEED_READ, "camera_id": "GATE1", "plate_number": plate}, timeout=10)

        resident = send("กข 1234")
        staff = send("ขค5678")  # known, but of another group
        stranger = send("จฉ999")
        # A plate added to the group just before its read counts (KnownCache checks every batch).
        answer = client.post("/api/known-plates", headers=bearer(api_token), json={"plate": "ฮฮ1", "group": "residents"})
        assert answer.status_code == 201
        newcomer = send("ฮฮ1")
    alerts = _alerts()
    assert [(a.plate, a.camera_id, a.record_id) for a in alerts] == [
        ("ขค5678", "GATE1", staff["record_id"]), ("จฉ999", "GATE1", stranger["record_id"])]
    assert alerts[0].detail == {"group": "residents"}
    assert {resident["record_id"], newcomer["record_id"]}.isdisjoint(a.record_id for a in alerts)


def test_a_gate_set_through_the_api_is_used_from_the_next_read(daemon, app, client, api_token):
    _camera("GATE2")
    _known("กข1234", "residents")
    with camera(daemon) as sio:
        def send(plate: str) -> dict:
            return sio.call("lpr_data", {**SEED_READ, "camera_id": "GATE2", "plate_number": plate}, timeout=10)

        send("จฉ1")  # no allow_group yet: no alert
        assert client.patch("/api/cameras/GATE2", headers=bearer(api_token),
                            json={"allow_group": "residents"}).status_code == 200
        flagged = wait_until(lambda: _alerts() or (send("จฉ2") and _alerts()), timeout=5)
    assert flagged and {a.plate for a in flagged} == {"จฉ2"}


@pytest.mark.parametrize("live_daemon", ["gevent"], indirect=True)
def test_the_live_channel_carries_the_alert_and_the_known_plate(webapp, live_daemon, app, users):
    _camera("LIVEGATE", allow_group="residents")
    _known("กข1234", "residents", name="สมชาย")
    http = web_session(webapp, "operator")
    browser = browser_socket(webapp, http)
    inbox = Inbox(browser, "new_record", "alert")
    try:
        with camera(live_daemon) as cam:
            known = cam.call("lpr_data", {**SEED_READ, "camera_id": "LIVEGATE", "plate_number": "กข 1234"}, timeout=10)
            other = cam.call("lpr_data", {**SEED_READ, "camera_id": "LIVEGATE", "plate_number": "ขค 999"}, timeout=10)
        _, record, _ = inbox.wait_for(lambda e, d: e == "new_record" and d["id"] == known["record_id"])
        _, alert, _ = inbox.wait_for(lambda e, d: e == "alert" and d["record"]["id"] == other["record_id"])
        _, plain, _ = inbox.wait_for(lambda e, d: e == "new_record" and d["id"] == other["record_id"])
    finally:
        close_client(browser)
        http.close()
    assert record["known"]["name"] == "สมชาย" and record["known"]["group"] == "residents"
    assert plain["known"] is None
    assert alert["trigger"] == "not_on_list" and alert["camera_id"] == "LIVEGATE" and alert["plate"] == "ขค999"
    assert not [d for e, d, _ in inbox.items if e == "alert" and d["record"]["id"] == known["record_id"]]
