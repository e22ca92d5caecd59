"""Camera tokens (README "Sending reads") on every door of a daemon with INGEST_AUTH=token."""

import json

import pytest
from sqlalchemy import select

from lprserver.cameras import create_camera
from lprserver.extensions import db
from lprserver.models import Camera, Record

from .test_ingest import SEED_READ, camera, fresh, raw_call, raw_socket, records


@pytest.fixture
def gate_token(app):
    _camera, token = create_camera(db.session, "CAM001", name="Front gate")
    create_camera(db.session, "CAM002")
    db.session.commit()
    return token


def test_tokens_are_random_and_stored_only_as_a_hash(app, gate_token):
    cam = fresh().get(Camera, "CAM001")
    assert gate_token.startswith("cam_") and len(gate_token) >= 4 + 43  # 256 bits, base64url
    assert cam.token_hash != gate_token and gate_token not in cam.token_hash
    dump = json.dumps([[str(v) for v in row] for row in db.session.execute(select(Camera.__table__))])
    assert gate_token not in dump


def test_a_read_without_a_token_is_unauthorized(token_daemon, app, gate_token, image_root):
    with camera(token_daemon) as sio:
        answer = sio.call("lpr_data", SEED_READ, timeout=10)
        register = sio.call("camera_register", {"camera_id": "CAM001"}, timeout=10)
    assert answer["code"] == "unauthorized" and register["code"] == "unauthorized"
    assert records() == [] and not any(image_root.rglob("*.jpg"))


def test_a_wrong_token_is_unauthorized(token_daemon, app, gate_token):
    with camera(token_daemon, auth={"token": gate_token[:-2] + "xx"}) as sio:
        assert sio.call("lpr_data", SEED_READ, timeout=10)["code"] == "unauthorized"


def test_one_cameras_token_does_not_open_another_camera(token_daemon, app, gate_token):
    with camera(token_daemon, auth={"token": gate_token}) as sio:
        answer = sio.call("lpr_data", {**SEED_READ, "camera_id": "CAM002"}, timeout=10)
    assert answer["code"] == "unauthorized"


def test_an_unknown_camera_is_not_created_in_token_mode(token_daemon, app, gate_token):
    with camera(token_daemon, auth={"token": gate_token}) as sio:
        answer = sio.call("lpr_data", {**SEED_READ, "camera_id": "ROGUE"}, timeout=10)
    assert answer["code"] == "unauthorized"
    assert fresh().get(Camera, "ROGUE") is None


def test_token_in_the_connect_auth(token_daemon, app, gate_token):
    with camera(token_daemon, auth={"token": gate_token}) as sio:
        assert sio.call("lpr_data", SEED_READ, timeout=10)["status"] == "success"


def test_token_in_camera_register_opens_the_connection(token_daemon, app, gate_token):
    with camera(token_daemon) as sio:
        register = sio.call("camera_register", {"camera_id": "CAM001", "token": gate_token}, timeout=10)
        answer = sio.call("lpr_data", SEED_READ, timeout=10)
    assert register["status"] == "success" and answer["status"] == "success"


def test_token_in_the_raw_websocket_query_string(token_daemon, app, gate_token):
    envelope = {"table": "lpr_detection", "action": "insert",
                "data": {"camera_id": "CAM001", "license_plate": "กข1234"}}
    with raw_socket(token_daemon, path=f"/?token={gate_token}") as ws:
        assert raw_call(ws, envelope)["status"] == "success"
    with raw_socket(token_daemon) as ws:
        assert raw_call(ws, envelope)["code"] == "unauthorized"


def test_token_as_bearer_on_the_raw_websocket(token_daemon, app, gate_token):
    envelope = {"table": "health_monitor", "action": "insert",
                "data": {"camera_id": "CAM001", "status": "PASS"}}
    with raw_socket(token_daemon, header=[f"Authorization: Bearer {gate_token}"]) as ws:
        assert raw_call(ws, envelope)["status"] == "success"


def test_a_new_token_replaces_the_old_one(token_daemon, app, gate_token):
    _camera, new_token = create_camera(db.session, "CAM001")
    db.session.commit()
    with camera(token_daemon, auth={"token": gate_token}) as sio:
        assert sio.call("lpr_data", SEED_READ, timeout=10)["code"] == "unauthorized"
    with camera(token_daemon, auth={"token": new_token}) as sio:
        assert sio.call("lpr_data", SEED_READ, timeout=10)["status"] == "success"


def test_http_ingest_takes_the_camera_token_as_bearer(app, base_env, gate_token):
    from config import TestingConfig
    from lprserver import create_app

    token_app = create_app(TestingConfig({**base_env, "INGEST_AUTH": "token"}))
    client = token_app.test_client()
    body = {"camera_id": "CAM001", "plate_number": "กข1234"}
    assert client.post("/api/records", json=body).status_code == 401
    ok = client.post("/api/records", json=body, headers={"Authorization": f"Bearer {gate_token}"})
    assert ok.status_code == 201
    assert fresh().scalar(select(Record.camera_id)) == "CAM001"
