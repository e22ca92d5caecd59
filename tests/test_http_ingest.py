"""POST /api/records: the HTTP door runs the same pipeline and answers the same way (SPEC §2.3)."""

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
    answer = response.get_json()
    assert answer["status"] == "error" and answer["code"] == code and answer["field"] == field
    assert answer["error"]["code"] == code and answer["error"]["message"]
    assert db.session.scalar(select(db.func.count(Record.id))) == 0
    assert not any(image_root.rglob("*.*"))


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b"", b'"text"'])
def test_http_body_that_is_not_a_json_object_is_invalid(client, data):
    response = client.post("/api/records", data=data, content_type="application/json")
    assert response.status_code == 400 and response.get_json()["code"] == "invalid_payload"


def test_http_oversize_body_is_refused(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/api/records", data=b"x" * 4096, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"


def test_reading_the_api_needs_a_user(client):
    response = client.get("/api/records")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/api/records", headers={"Authorization": "Bearer nope"}).status_code == 401
