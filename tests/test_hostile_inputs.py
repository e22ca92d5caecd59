"""The hostile-input table (tests/hostile_inputs.py) through every door of the real daemon and web app:
each message gets the answer README "Sending reads" names, the connection and the daemon stay up, nothing is stored."""

import json
from collections import Counter

import pytest
import requests
from sqlalchemy import func, select

from lprserver.extensions import db
from lprserver.models import BlacklistEntry, HealthReport, Record

from .hostile_inputs import CAMERA_MESSAGES, ENVELOPES, NOT_OBJECTS, ROWS, SOCKETIO_FRAMES, payload, raw_data
from .test_ingest import camera, engineio_socket, fresh, raw_socket, stored_files
from .webserver import PageClient

HTTP_STATUS = {"invalid_payload": 400, "invalid_camera_id": 400, "invalid_plate": 400, "invalid_image": 400,
               "unauthorized": 401, "unavailable": 503}
REQUIRED = ("camera_id", "plate_number")
TALLY: Counter = Counter()


def _expected_on_raw_door(change: dict, code: str, field: str | None) -> tuple[str | None, str | None]:
    """The raw door reads "" as "not given" (README "Sending reads"): a required field is then missing, another one
    is simply left out and the read is stored."""
    if any(value == "" for value in change.values()):
        name = next(iter(change))
        return ("invalid_payload", name) if name in REQUIRED else (None, None)
    return code, field


def _http_post(webapp, message) -> requests.Response:
    # Written as Python writes JSON, NaN and Infinity included (requests' json= refuses them).
    return requests.post(f"{webapp.url}/api/records", data=json.dumps(message), timeout=30,
                         headers={"Content-Type": "application/json"})


def _as_answer(body: dict) -> dict:
    """An HTTP refusal (the API's error shape, docs/api.md) as the daemon's doors answer it."""
    error = body["error"]
    return {"status": "error", "code": error["code"], "message": error["message"], "field": error.get("field")}


def _assert_nothing_stored(image_root) -> None:
    assert fresh().scalar(select(func.count(Record.id))) == 0
    assert fresh().scalar(select(func.count(HealthReport.id))) == 0
    assert stored_files(image_root) == []


def _check(door: str, case: str, answer: dict, code: str | None, field: str | None) -> None:
    if code is None:
        assert answer["status"] == "success", (door, case, answer)
    else:
        assert (answer.get("status"), answer.get("code"), answer.get("field")) == ("error", code, field), \
            (door, case, answer)
        assert answer["message"] and "Traceback" not in answer["message"]
    TALLY[(door, answer.get("code") or "success")] += 1


def test_every_hostile_read_gets_its_answer_on_every_door(daemon, webapp, app, image_root):
    """All rows on one connection per door: the connection must stay usable after each of them."""
    with camera(daemon) as sio, raw_socket(daemon) as ws:
        for case, change, code, field in ROWS:
            read = payload(change)
            _check("socketio", case, sio.call("lpr_data", read, timeout=30), code, field)
            ws.send(json.dumps({"table": "lpr_detection", "action": "insert", "data": raw_data(read)}))
            raw_code, raw_field = _expected_on_raw_door(change, code, field)
            _check("websocket", case, json.loads(ws.recv()), raw_code, raw_field)
            response = _http_post(webapp, read)
            body = response.json()
            assert response.status_code == HTTP_STATUS[code], (case, response.status_code, body)
            _check("http", case, _as_answer(body), code, field)
            if raw_code is None:  # stored by the raw door, as it should be: clear it for the next row
                db.session.execute(Record.__table__.delete())
                db.session.commit()
                for path in stored_files(image_root):
                    path.unlink()
            _assert_nothing_stored(image_root)
        for case, message in NOT_OBJECTS:
            _check("socketio", case, sio.call("lpr_data", message, timeout=10), "invalid_payload", None)
            ws.send(json.dumps({"table": "lpr_detection", "action": "insert", "data": message}))
            _check("websocket", case, json.loads(ws.recv()), "invalid_payload", "data")
            _check("http", case, _as_answer(_http_post(webapp, message).json()), "invalid_payload", None)
    assert daemon.alive()
    _assert_nothing_stored(image_root)


def test_hostile_registrations_and_health_reports_are_answered(daemon, app, image_root):
    tables = {"camera_register": None, "health_status": "health_monitor"}
    with camera(daemon) as sio, raw_socket(daemon) as ws:
        for case, event, message, field in CAMERA_MESSAGES:
            _check("socketio", case, sio.call(event, message, timeout=10), "invalid_payload", field)
            if tables[event]:
                ws.send(json.dumps({"table": tables[event], "action": "insert", "data": message}))
                _check("websocket", case, json.loads(ws.recv()), "invalid_payload", field)
    _assert_nothing_stored(image_root)


def test_hostile_envelopes_are_answered(daemon, app, image_root):
    with raw_socket(daemon) as ws:
        for case, text, field in ENVELOPES:
            ws.send(text)
            _check("websocket", case, json.loads(ws.recv()), "invalid_payload", field)
        ws.send_binary(b"\x00\xff")
        _check("websocket", "a binary frame", json.loads(ws.recv()), "invalid_payload", None)
    _assert_nothing_stored(image_root)


def test_hostile_socketio_frames_are_answered(daemon, app, image_root):
    ws = engineio_socket(daemon)
    try:
        for case, frame, says in SOCKETIO_FRAMES:
            ws.send(frame)
            answer = ws.recv()
            ws.send('422["camera_register",{"camera_id":"AFTER1"}]')  # and the connection still works
            assert ws.recv().startswith("432")
            assert answer.startswith("431"), (case, answer)
            body = json.loads(answer[3:])[0]
            assert says in body["message"], (case, body)
            _check("socketio", case, body, "invalid_payload", body["field"])
    finally:
        ws.close(timeout=2)
    _assert_nothing_stored(image_root)


# --- The web app's pages and forms ---------------------------------------------------------------

PAGE_QUERIES = [
    "/records?plate=%00", "/records?plate=%ED%A0%80", "/records?camera_id=%00", "/records?plate_mode=regex&plate=1",
    "/records?min_confidence=abc", "/records?min_confidence=1e999", "/records?min_confidence=nan",
    "/records?since=2026-13-45T99:99", "/records?since=0001-01-01", "/records?until=9999-12-31",
    "/records?p=99999999999999999999", "/records?before=abc", "/records/export.csv?plate=%00",
    "/records/export.csv?until=0001-01-01T00:00", "/live/missed?after=-1",
    "/api/records?plate=%00", "/api/records?camera_id=%00", "/api/records?per_page=0", "/api/records?page=0",
    "/api/records?per_page=100000", "/api/records?before_id=-1", "/api/records?plate_match=regex",
    "/api/records?min_confidence=nan", "/api/records?from=yesterday", "/api/records?blacklisted=maybe",
    "/api/records/export.csv?plate=%00", "/api/blacklist?plate=%00", "/api/blacklist?per_page=-5",
    "/api/statistics?hours=0", "/api/statistics?hours=99999999999999999999",
    "/api/blacklist/detections?entry_id=99999999999999999999", "/api/cameras/%00",
]


@pytest.mark.parametrize("path", PAGE_QUERIES)
def test_hostile_page_and_api_queries_get_a_clear_answer(app, users, path):
    browser = PageClient(app)
    browser.login("admin")
    response = browser.get(path)
    assert response.status_code < 500, (path, response.status_code)
    if path.startswith("/api/") and response.status_code >= 400:
        assert response.get_json()["error"]["code"]
    TALLY[("web", str(response.status_code))] += 1


BLACKLIST_FORMS = [
    {"license_plate_text": "กข\x001234"}, {"license_plate_text": "กข1234", "reason": "a\x00b"},
    {"license_plate_text": "กข1234", "reason": "r" * 2001}, {"license_plate_text": "ก" * 65},
    {"license_plate_text": "กข1234", "category": "enemy"}, {"license_plate_text": "กข1234", "expires_at": "soon"},
    {"license_plate_text": ""},
]


@pytest.mark.parametrize("form", BLACKLIST_FORMS)
def test_hostile_blacklist_forms_are_refused_and_store_nothing(app, users, form):
    browser = PageClient(app)
    browser.login("operator")
    response = browser.post("/blacklist", data={"category": "stolen", **form, "csrf_token": browser.token("/blacklist")})
    assert response.status_code == 400
    assert db.session.scalar(select(func.count(BlacklistEntry.id))) == 0
    TALLY[("web", "400")] += 1


@pytest.mark.parametrize("body", [
    b"plate,reason\n\xff\xfe\x00garbage\n", "plate,reason\nกข1\x00,x\n".encode(), b"\x00" * 1000,
    b"plate,reason\n" + b"a" * 100_000 + b",x\n", b"no,plate,column\n1,2,3\n",
])
def test_hostile_blacklist_imports_are_reported_and_store_nothing_bad(app, users, body):
    import io

    browser = PageClient(app)
    browser.login("operator")
    response = browser.post("/blacklist/import", data={"file": (io.BytesIO(body), "list.csv"),
                                                      "csrf_token": browser.token("/blacklist")},
                            content_type="multipart/form-data")
    assert response.status_code < 500
    for entry in db.session.scalars(select(BlacklistEntry)):
        assert "\x00" not in entry.license_plate_text and len(entry.license_plate_text) <= 64
    TALLY[("web", str(response.status_code))] += 1


@pytest.mark.parametrize("form", [
    {"username": "admin\x00", "password": "x"}, {"username": "a" * 10_000, "password": "x"},
    {"username": "admin", "password": "p" * 100_000},
])
def test_hostile_sign_ins_are_refused(app, users, form):
    browser = PageClient(app)
    response = browser.post("/login", data={**form, "csrf_token": browser.token()})
    assert response.status_code == 401
    TALLY[("web", "401")] += 1


def test_zz_print_the_tally():
    """The answers the table got, per door (read when the suite runs with -s, and in CI's log)."""
    lines = [f"{door:9} {code:18} {count}" for (door, code), count in sorted(TALLY.items())]
    print("\nhostile-input table, answers per door:\n" + "\n".join(lines) + f"\ntotal {sum(TALLY.values())}")
