"""POST /api/records: the HTTP door runs the same pipeline and answers the same way (README "Sending reads")."""

import pytest
from sqlalchemy import select

from lprserver.extensions import db
from lprserver.models import Record

from .imagegen import data_uri, make_jpeg


def test_seed_curl_example_creates_a_record(client):
    body = {"camera_id": "CAM001", "plate_number": "กข1234", "confidence": 0.95, "location": "หน้าหอพัก"}
    response = client.post("/api/records", json=body)
    assert response.status_code == 201
    answer = response.get_json()
    assert answer == {"status": "success", "record_id": answer["record_id"], "duplicate": False, "blacklisted": False}
    record = db.session.get(Record, answer["record_id"])
    assert (record.plate_normalized, record.confidence, record.location) == ("กข1234", 95.0, "หน้าหอพัก")


def test_http_read_with_image_is_stored_byte_for_byte(client, image_root):
    jpeg = make_jpeg()
    answer = client.post("/api/records", json={"camera_id": "CAM9", "plate_number": "ABC1234",
                                               "image_data": data_uri(jpeg)}).get_json()
    record = db.session.get(Record, answer["record_id"])
    assert (image_root / record.image_path).read_bytes() == jpeg


def test_http_duplicate_answers_200_with_the_first_id(client):
    body = {"camera_id": "CAM001", "plate_number": "กข1234", "event_id": "e-1"}
    first = client.post("/api/records", json=body)
    again = client.post("/api/records", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["record_id"] == first.get_json()["record_id"] and again.get_json()["duplicate"]
    assert db.session.scalar(select(db.func.count(Record.id))) == 1


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"plate_number": "กข1234"}, "invalid_payload", "camera_id"),
        ({"camera_id": "../../etc", "plate_number": "กข1234"}, "invalid_camera_id", "camera_id"),
        ({"camera_id": "CAM1", "plate_number": "---"}, "invalid_plate", "plate_number"),
        ({"camera_id": "CAM1", "plate_number": "กข1", "image_data": "!!"}, "invalid_image", "image_data"),
        ({"camera_id": "CAM1", "plate_number": "กข1", "confidence": 101}, "invalid_payload", "confidence"),
    ],
)
def test_http_bad_reads_get_400_with_the_code(client, image_root, body, code, field):
    response = client.post("/api/records", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == (code, field) and error["message"]
    assert set(response.get_json()) == {"error"}  # the API's error shape, nothing else
    assert db.session.scalar(select(db.func.count(Record.id))) == 0
    assert not any(image_root.rglob("*.*"))


@pytest.mark.parametrize(("data", "content_type", "says"), [
    (b"not json", "application/json", "not valid JSON: Expecting value at line 1 column 1"),
    (b'{"camera_id": "C1",', "application/json", "not valid JSON"),
    (b"[1, 2]", "application/json", "expected a JSON object, got list"),
    (b'"text"', "application/json", "expected a JSON object, got str"),
    (b"", "application/json", "no body"),
    (b'{"camera_id": "C1", "plate_number": "AB1"}', "text/plain", "Content-Type: application/json, not text/plain"),
    (b'{"camera_id": "C1", "plate_number": "AB1"}', None, "Content-Type: application/json"),
    (b'{"camera_id": "\xff"}', "application/json", "not UTF-8"),
])
def test_http_body_that_is_not_a_json_object_says_what_is_wrong(client, data, content_type, says):
    response = client.post("/api/records", data=data, content_type=content_type)
    error = response.get_json()["error"]
    assert response.status_code == 400 and error["code"] == "invalid_payload"
    assert says in error["message"], error["message"]


def test_http_oversize_body_is_refused(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/api/records", data=b"x" * 4096, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"


def test_reading_the_api_needs_a_user(client):
    response = client.get("/api/records")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/api/records", headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.parametrize("mode", ["token", "open"])
def test_who_may_send_reads_over_http(base_env, make_token, mode):
    # README "Sending reads": a camera with its token; an admin's or operator's read-write API token;
    # never a viewer's token nor a read-only one; with INGEST_AUTH=open anyone else too.
    from config import TestingConfig
    from lprserver import create_app
    from lprserver.cameras import create_camera

    _camera, camera_token = create_camera(db.session, "GATE1")
    db.session.commit()
    tokens = {"none": None, "camera": camera_token, "admin": make_token("admin", "read-write"),
              "operator": make_token("operator", "read-write"), "viewer": make_token("viewer", "read-write"),
              "read-only": make_token("admin", "read"), "unknown": "lpr_not-a-token"}
    expected = {"token": {"none": 401, "camera": 201, "admin": 201, "operator": 201, "viewer": 403,
                          "read-only": 403, "unknown": 401},
                "open": {"none": 201, "camera": 201, "admin": 201, "operator": 201, "viewer": 403,
                         "read-only": 403, "unknown": 201}}[mode]
    client = create_app(TestingConfig({**base_env, "INGEST_AUTH": mode})).test_client()
    seen = {}
    for who, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        seen[who] = client.post("/api/records", headers=headers,
                                json={"camera_id": "GATE1", "plate_number": f"กข{len(seen)}"}).status_code
    assert seen == expected
    if mode == "token":  # a user's token sends for cameras that exist only
        unknown = client.post("/api/records", headers={"Authorization": f"Bearer {tokens['admin']}"},
                              json={"camera_id": "NOSUCH1", "plate_number": "กข1"})
        assert unknown.status_code == 401 and unknown.get_json()["error"]["field"] == "camera_id"
