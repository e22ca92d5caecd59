"""The ingest daemon over real sockets, in both async modes: good reads, bad input, duplicates."""

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import socketio
import websocket
from sqlalchemy import func, select

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.models import BlacklistDetection, Camera, HealthReport, Record

from .imagegen import b64, data_uri, huge_header_jpeg, make_jpeg, make_png, noisy_jpeg

SEED_READ = {
    "camera_id": "CAM001",
    "plate_number": "กข1234",
    "confidence": 85.5,
    "location": "ประตูหน้า",
}

SEED_DETECTION = {
    "table": "lpr_detection",
    "action": "insert",
    "data": {
        "license_plate": "ABC1234", "confidence": 95.5, "checkpoint_id": "1",
        "timestamp": "2024-08-06T10:30:00", "hostname": "aicamera", "vehicle_type": "",
        "vehicle_color": "", "latitude": "", "longitude": "", "image": None,
        "exposure_time": 0.033, "analog_gain": 1.0, "lux": 250,
    },
}

SEED_HEALTH = {
    "table": "health_monitor",
    "action": "insert",
    "data": {
        "checkpoint_id": "1", "hostname": "aicamera", "timestamp": "2024-08-06T10:30:00",
        "component": "camera", "status": "PASS", "message": "Camera working normally",
        "system_info": {"python_version": "3.9.2", "platform": "linux",
                        "memory_usage": "45%", "cpu_usage": "12%"},
    },
}


@contextmanager
def camera(daemon, auth=None, transports=("websocket",)):
    """A connected python-socketio client, as an edge camera uses it."""
    client = socketio.Client(reconnection=False)
    client.connect(daemon.url, auth=auth, transports=list(transports), wait_timeout=10)
    try:
        yield client
    finally:
        close_client(client)


def close_client(client: socketio.Client) -> None:
    # python-engineio's client drops its HTTP session on disconnect without closing it.
    http = client.eio.http
    client.disconnect()
    if http is not None:
        http.close()


@contextmanager
def raw_socket(daemon, path="/", header=None):
    ws = websocket.create_connection(daemon.ws_url.rstrip("/") + path, timeout=15, header=header)
    try:
        yield ws
    finally:
        try:
            ws.close(timeout=2)
        except OSError:
            pass
        ws.shutdown()


def raw_call(ws, message) -> dict:
    ws.send(message if isinstance(message, str) else json.dumps(message))
    return json.loads(ws.recv())


def fresh():
    """End the test's read transaction so the daemon's commits are visible."""
    db.session.rollback()
    return db.session


def records() -> list[Record]:
    return list(fresh().scalars(select(Record).order_by(Record.id)))


def stored_files(image_root: Path) -> list[Path]:
    return sorted(p for p in image_root.rglob("*") if p.is_file())


def wait_until(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    return check()


# --- The seed README's own examples -------------------------------------------------------


def test_seed_socketio_snippet_runs_against_the_daemon(daemon, app):
    # The seed README's snippet, unchanged. Its emit() is fire-and-forget and
    # python-engineio's client closes the WebSocket without flushing its send
    # queue, so the register may or may not reach the server: the README tells
    # cameras to use call(). What the server owes is to survive it and, when the
    # message arrives, to store it right.
    sio = socketio.Client()
    sio.connect(daemon.url)
    sio.emit("camera_register", {"camera_id": "TEST_CAM"})
    http = sio.eio.http
    sio.disconnect()
    http.close()
    assert daemon.alive()

    def registered_and_offline():
        cam = fresh().get(Camera, "TEST_CAM")
        return cam is not None and cam.first_seen is not None and not cam.online

    settled = wait_until(registered_and_offline, timeout=3)
    assert fresh().get(Camera, "TEST_CAM") is None or settled


def test_seed_snippet_with_call_registers_test_cam(daemon, app):
    sio = socketio.Client()
    sio.connect(daemon.url)
    answer = sio.call("camera_register", {"camera_id": "TEST_CAM"}, timeout=10)
    assert fresh().get(Camera, "TEST_CAM").online is True
    close_client(sio)
    assert answer["status"] == "success" and answer["camera_id"] == "TEST_CAM"
    cam = wait_until(lambda: not fresh().get(Camera, "TEST_CAM").online and fresh().get(Camera, "TEST_CAM"))
    assert cam and cam.first_seen is not None


def test_camera_register_answers_success_with_server_time(daemon, app):
    with camera(daemon) as sio:
        answer = sio.call("camera_register", {"camera_id": "CAM001", "name": "Front gate",
                                              "location": "ประตูหน้า", "version": "2.1"}, timeout=10)
    assert answer["status"] == "success" and answer["camera_id"] == "CAM001"
    assert answer["server_time"].endswith("+00:00")
    cam = fresh().get(Camera, "CAM001")
    assert (cam.name, cam.location, cam.version) == ("Front gate", "ประตูหน้า", "2.1")


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_seed_lpr_data_is_stored_with_its_image_byte_for_byte(daemon, app, client, api_token,
                                                              image_root, transport):
    jpeg = make_jpeg()
    with camera(daemon, transports=(transport,)) as sio:
        answer = sio.call("lpr_data", {**SEED_READ, "image_data": data_uri(jpeg)}, timeout=10)
    assert answer == {"status": "success", "record_id": answer["record_id"], "duplicate": False,
                      "blacklisted": False}
    [record] = records()
    assert (record.id, record.plate_number, record.plate_normalized) == (answer["record_id"], "กข1234", "กข1234")
    assert record.confidence == 85.5 and record.location == "ประตูหน้า"
    assert (image_root / record.image_path).read_bytes() == jpeg
    assert record.image_path.split("/")[3] == "CAM001"
    assert not (image_root / record.thumbnail_path).exists()  # made on its first view, not before the answer

    listing = client.get("/api/records", headers={"Authorization": f"Bearer {api_token}"}).get_json()
    assert listing["total"] == 1
    assert listing["records"][0]["plate_number"] == "กข1234"
    with client.get(listing["records"][0]["image_url"], headers={"Authorization": f"Bearer {api_token}"}) as image:
        assert image.status_code == 200 and image.data == jpeg
    for _ in range(2):  # made and kept on the first view, served from the file on the second
        with client.get(listing["records"][0]["thumbnail_url"], headers={"Authorization": f"Bearer {api_token}"}) \
                as thumb:
            assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg" and thumb.data[:3] == b"\xff\xd8\xff"
        assert (image_root / record.thumbnail_path).is_file()


def test_png_is_accepted_and_kept_as_png(daemon, app, image_root):
    png = make_png()
    with camera(daemon) as sio:
        answer = sio.call("lpr_data", {**SEED_READ, "image_data": data_uri(png, "image/png")}, timeout=10)
    assert answer["status"] == "success"
    [record] = records()
    assert record.image_path.endswith(".png") and (image_root / record.image_path).read_bytes() == png


def test_an_image_over_the_library_default_of_1_mb_is_taken(daemon, app, image_root):
    jpeg = noisy_jpeg(1_500_000)
    with camera(daemon) as sio:
        answer = sio.call("lpr_data", {**SEED_READ, "image_data": b64(jpeg)}, timeout=30)
    assert answer["status"] == "success", answer
    assert (image_root / records()[0].image_path).read_bytes() == jpeg


def test_seed_lpr_detection_envelope_over_raw_websocket(daemon, app, image_root):
    jpeg = make_jpeg(seed=5)
    envelope = json.loads(json.dumps(SEED_DETECTION))
    envelope["data"]["image"] = data_uri(jpeg)
    with raw_socket(daemon) as ws:
        answer = raw_call(ws, envelope)
    assert answer["status"] == "success" and answer["message"] == "Data saved successfully"
    assert (answer["table"], answer["action"]) == ("lpr_detection", "insert")
    [record] = records()
    assert answer["record_id"] == record.id
    assert record.camera_id == "1" and record.plate_normalized == "ABC1234"
    # 10:30 without an offset is Bangkok time, 03:30 UTC.
    assert record.captured_at.isoformat() == "2024-08-06T03:30:00+00:00"
    assert record.extra == {"exposure_time": 0.033, "analog_gain": 1.0, "lux": 250}
    assert record.vehicle_type is None and record.latitude is None
    assert (image_root / record.image_path).read_bytes() == jpeg
    assert fresh().get(Camera, "1").hostname == "aicamera"


def test_seed_health_monitor_envelope_over_raw_websocket(daemon, app):
    with raw_socket(daemon) as ws:
        answer = raw_call(ws, SEED_HEALTH)
    assert answer["status"] == "success" and answer["table"] == "health_monitor"
    report = fresh().get(HealthReport, answer["record_id"])
    assert (report.camera_id, report.component, report.status) == ("1", "camera", "PASS")
    assert report.system_info["cpu_usage"] == "12%"
    assert fresh().get(Camera, "1").health_status == "PASS"


def test_health_status_event_over_socketio(daemon, app):
    with camera(daemon) as sio:
        answer = sio.call("health_status", {"camera_id": "CAM001", "component": "storage", "status": "WARN",
                                            "message": "disk 91% full", "system_info": {"disk": "91%"},
                                            "timestamp": "2026-01-01T08:00:00+07:00"}, timeout=10)
    assert answer["status"] == "success"
    report = fresh().get(HealthReport, answer["record_id"])
    assert report.status == "WARN" and report.reported_at.isoformat() == "2026-01-01T01:00:00+00:00"


def test_raw_websocket_answers_many_messages_on_one_connection(daemon, app):
    with raw_socket(daemon, path="/any/path") as ws:
        answers = [raw_call(ws, {"table": "lpr_detection", "action": "insert",
                                 "data": {"license_plate": f"กข{n}", "checkpoint_id": 7}}) for n in range(5)]
    assert [a["status"] for a in answers] == ["success"] * 5
    assert {r.camera_id for r in records()} == {"7"}


def test_every_camera_a_connection_spoke_for_goes_offline_when_it_closes(daemon, app):
    # A relay (the seed's checkpoint sender) sends for several checkpoints on one connection.
    def online():
        return {c.id for c in fresh().scalars(select(Camera).where(Camera.online.is_(True)))}

    with camera(daemon) as other:  # RELAY_C is spoken for here too
        other.call("health_status", {"camera_id": "RELAY_C", "status": "PASS"}, timeout=10)
        with raw_socket(daemon) as ws:
            for checkpoint in ("RELAY_A", "RELAY_B", "RELAY_C"):
                assert raw_call(ws, {"table": "lpr_detection", "action": "insert",
                                     "data": {"checkpoint_id": checkpoint, "license_plate": "กข1"}})["status"] == "success"
            assert online() == {"RELAY_A", "RELAY_B", "RELAY_C"}
        assert wait_until(lambda: online() == {"RELAY_C"}), online()
    assert wait_until(lambda: online() == set()), online()


# --- Duplicates (README "Sending reads") ---------------------------------------------------------------


def test_duplicate_event_sent_three_times_over_two_connections_is_one_row(daemon, app, image_root):
    read = {**SEED_READ, "event_id": "edge-42", "image_data": b64(make_jpeg())}
    answers = []
    with camera(daemon) as first, camera(daemon) as second:
        threads = [threading.Thread(target=lambda c=c: answers.append(c.call("lpr_data", read, timeout=10)))
                   for c in (first, second, first)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(answers) == 3 and all(a["status"] == "success" for a in answers)
    assert len({a["record_id"] for a in answers}) == 1
    assert sorted(a["duplicate"] for a in answers) == [False, True, True]
    assert len(records()) == 1
    assert len(stored_files(image_root)) == 1  # the image, once


def test_same_event_id_from_another_camera_is_a_new_read(daemon, app):
    with camera(daemon) as sio:
        a = sio.call("lpr_data", {**SEED_READ, "event_id": "e1"}, timeout=10)
        b = sio.call("lpr_data", {**SEED_READ, "camera_id": "CAM002", "event_id": "e1"}, timeout=10)
    assert a["record_id"] != b["record_id"] and not b["duplicate"]


# --- Blacklist ----------------------------------------------------------------------------


def test_a_read_of_a_blacklisted_plate_is_a_detection(daemon, app):
    entry = add_entry(db.session, "กข 1234", reason="รถหาย", category="stolen", added_by="test")
    add_entry(db.session, "ขค999", reason="old", category="watch").active = False
    db.session.commit()
    with camera(daemon) as sio:
        hit = sio.call("lpr_data", {**SEED_READ, "plate_number": "กข-๑๒๓๔"}, timeout=10)
        inactive = sio.call("lpr_data", {**SEED_READ, "plate_number": "ขค999"}, timeout=10)
        clean = sio.call("lpr_data", {**SEED_READ, "plate_number": "กข1235"}, timeout=10)
    assert (hit["blacklisted"], inactive["blacklisted"], clean["blacklisted"]) == (True, False, False)
    [detection] = fresh().scalars(select(BlacklistDetection))
    assert (detection.record_id, detection.entry_id, detection.match_type) == (hit["record_id"], entry.id, "normalized")
    assert fresh().get(Record, hit["record_id"]).blacklisted


def test_an_expired_entry_does_not_match(daemon, app):
    from datetime import timedelta

    from lprserver.models import utcnow

    add_entry(db.session, "กข1234", expires_at=utcnow() - timedelta(minutes=1))
    db.session.commit()
    with camera(daemon) as sio:
        answer = sio.call("lpr_data", SEED_READ, timeout=10)
    assert answer["blacklisted"] is False


# --- Bad input (README "Sending reads") ----------------------------------------------------------------

JPEG = make_jpeg()
BAD_READS = [
    ("missing camera_id", {"plate_number": "กข1234"}, "invalid_payload", "camera_id"),
    ("missing plate", {"camera_id": "CAM001"}, "invalid_payload", "plate_number"),
    ("plate not a string", {"camera_id": "CAM001", "plate_number": 1234}, "invalid_payload", "plate_number"),
    ("camera_id not a string", {"camera_id": 7, "plate_number": "กข1"}, "invalid_payload", "camera_id"),
    ("path in camera_id", {"camera_id": "../../etc", "plate_number": "กข1"}, "invalid_camera_id", "camera_id"),
    ("camera_id too long", {"camera_id": "C" * 65, "plate_number": "กข1"}, "invalid_camera_id", "camera_id"),
    ("camera_id with space", {"camera_id": "CAM 1", "plate_number": "กข1"}, "invalid_camera_id", "camera_id"),
    ("empty plate", {"camera_id": "CAM001", "plate_number": ""}, "invalid_plate", "plate_number"),
    ("separators only", {"camera_id": "CAM001", "plate_number": " - . "}, "invalid_plate", "plate_number"),
    ("plate too long", {"camera_id": "CAM001", "plate_number": "ก" * 33}, "invalid_plate", "plate_number"),
    ("confidence 150", {**SEED_READ, "confidence": 150}, "invalid_payload", "confidence"),
    ("confidence negative", {**SEED_READ, "confidence": -1}, "invalid_payload", "confidence"),
    ("confidence boolean", {**SEED_READ, "confidence": True}, "invalid_payload", "confidence"),
    ("latitude out of range", {**SEED_READ, "latitude": 91}, "invalid_payload", "latitude"),
    ("bad timestamp", {**SEED_READ, "timestamp": "yesterday"}, "invalid_payload", "timestamp"),
    ("nested metadata", {**SEED_READ, "extra": {"a": [1]}}, "invalid_payload", "extra"),
    ("event_id empty", {**SEED_READ, "event_id": ""}, "invalid_payload", "event_id"),
    ("image not base64", {**SEED_READ, "image_data": "not base64!!"}, "invalid_image", "image_data"),
    ("random bytes as jpeg", {**SEED_READ, "image_data": data_uri(bytes(range(256)) * 64)}, "invalid_image", "image_data"),
    ("truncated jpeg", {**SEED_READ, "image_data": data_uri(JPEG[: len(JPEG) // 2])}, "invalid_image", "image_data"),
    ("50000x50000 header", {**SEED_READ, "image_data": data_uri(huge_header_jpeg())}, "invalid_image", "image_data"),
    ("image over 2 MB", {**SEED_READ, "image_data": b64(noisy_jpeg(2_200_000))}, "invalid_image", "image_data"),
    ("image not a string", {**SEED_READ, "image_data": 12}, "invalid_payload", "image_data"),
    # A good image with a bad field elsewhere: no file may be left behind.
    ("confidence 150 with image", {**SEED_READ, "confidence": 150, "image_data": b64(JPEG)}, "invalid_payload", "confidence"),
    ("nested metadata with image", {**SEED_READ, "extra": {"a": 1}, "image_data": b64(JPEG)}, "invalid_payload", "extra"),
]


@pytest.mark.parametrize(("case", "payload", "code", "field"), BAD_READS, ids=[row[0] for row in BAD_READS])
def test_bad_reads_get_their_code_and_store_nothing(daemon, app, image_root, case, payload, code, field):
    with camera(daemon) as sio:
        answer = sio.call("lpr_data", payload, timeout=15)
        assert answer["status"] == "error" and answer["code"] == code, answer
        assert answer["field"] == field and answer["message"]
        # The same connection still works afterwards.
        assert sio.call("lpr_data", {**SEED_READ, "camera_id": "OK1"}, timeout=10)["status"] == "success"
    assert [r.camera_id for r in records()] == ["OK1"]
    assert stored_files(image_root) == []


@pytest.mark.parametrize("payload", [[1, 2], "a string", 42, None], ids=["list", "string", "number", "null"])
def test_a_payload_that_is_not_an_object_is_invalid(daemon, app, payload):
    with camera(daemon) as sio:
        answer = sio.call("lpr_data", payload, timeout=10)
    assert answer["code"] == "invalid_payload"
    assert records() == []


def test_an_event_with_no_payload_is_invalid(daemon, app):
    with camera(daemon) as sio:
        assert sio.call("lpr_data", timeout=10)["code"] == "invalid_payload"
        assert sio.call("camera_register", timeout=10)["code"] == "invalid_payload"
        assert sio.call("health_status", {"camera_id": "CAM1", "status": "MAYBE"}, timeout=10)["code"] == "invalid_payload"
        huge_info = {"camera_id": "CAM1", "status": "PASS", "system_info": {"log": "x" * 20_000}}
        answer = sio.call("health_status", huge_info, timeout=10)
        assert answer["code"] == "invalid_payload" and answer["field"] == "system_info"


BAD_ENVELOPES = [
    ("not json", "{not json", None),
    ("nested too deep", "[" * 5000 + "]" * 5000, None),  # deeper than either JSON parser follows
    ("a list", [1, 2, 3], None),
    ("a string", '"hello"', None),
    ("unknown table", {"table": "users", "action": "insert", "data": {}}, "table"),
    ("unknown action", {"table": "lpr_detection", "action": "delete", "data": {}}, "action"),
    ("data not an object", {"table": "lpr_detection", "action": "insert", "data": [1]}, "data"),
    ("no camera", {"table": "lpr_detection", "action": "insert", "data": {"license_plate": "AB1"}}, "camera_id"),
    ("no plate", {"table": "lpr_detection", "action": "insert", "data": {"checkpoint_id": "1"}}, "plate_number"),
    ("bad image", {"table": "lpr_detection", "action": "insert",
                   "data": {"checkpoint_id": "1", "license_plate": "AB1", "image": "data:image/jpeg;base64,////"}},
     "image_data"),
]


@pytest.mark.parametrize(("case", "message", "field"), BAD_ENVELOPES, ids=[row[0] for row in BAD_ENVELOPES])
def test_bad_envelopes_get_an_error_and_the_connection_stays(daemon, app, image_root, case, message, field):
    with raw_socket(daemon) as ws:
        answer = raw_call(ws, message)
        assert answer["status"] == "error" and answer["field"] == field and answer["message"]
        assert answer["code"] in ("invalid_payload", "invalid_image")
        if isinstance(message, dict) and message.get("table") == "lpr_detection":
            assert answer["table"] == "lpr_detection" and answer["action"] == message["action"]
        ok = raw_call(ws, {"table": "lpr_detection", "action": "insert",
                           "data": {"checkpoint_id": "OK1", "license_plate": "AB1"}})
        assert ok["status"] == "success"
    assert [r.camera_id for r in records()] == ["OK1"]
    assert stored_files(image_root) == []


def test_a_binary_frame_on_the_raw_door_is_refused(daemon, app):
    with raw_socket(daemon) as ws:
        ws.send_binary(b"\x00\x01\x02")
        answer = json.loads(ws.recv())
    assert answer["code"] == "invalid_payload"


def test_a_10_mb_socketio_message_is_refused_and_the_daemon_stays_up(daemon, app, image_root):
    huge = {**SEED_READ, "image_data": "A" * (10 * 1024 * 1024)}
    client = socketio.Client(reconnection=False)
    client.connect(daemon.url, transports=["websocket"], wait_timeout=10)
    with pytest.raises((socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError)):
        client.call("lpr_data", huge, timeout=10)
    assert wait_until(lambda: not client.connected)
    close_client(client)
    assert daemon.alive()
    assert records() == [] and stored_files(image_root) == []


def test_a_10_mb_raw_message_closes_with_message_too_big(daemon, app):
    closed = (websocket.WebSocketConnectionClosedException, ConnectionResetError, BrokenPipeError)
    with raw_socket(daemon) as ws, pytest.raises(closed):
        # The daemon stops reading at the cap and closes (1009), often while we still send.
        ws.send(json.dumps({"table": "lpr_detection", "action": "insert",
                            "data": {"checkpoint_id": "1", "license_plate": "AB1", "image": "A" * (10 << 20)}}))
        ws.recv()
        ws.recv()
    assert daemon.alive()
    assert records() == []


def test_plain_http_on_the_daemon_port_gets_a_clear_answer(daemon):
    import requests

    response = requests.get(daemon.url + "/", timeout=5)
    assert response.status_code == 426 and "Socket.IO" in response.json()["message"]


def test_many_bad_messages_leave_the_daemon_up(daemon, app):
    with raw_socket(daemon) as ws:
        for n in range(200):
            raw_call(ws, "x" * n)
    assert daemon.alive()
    assert fresh().scalar(select(func.count(Record.id))) == 0


# --- Floods --------------------------------------------------------------------------------


def test_a_socketio_flood_is_told_to_wait_and_others_go_on(daemon, app):
    answers = []
    done = threading.Event()

    def collect(answer):
        answers.append(answer)
        if len(answers) == 300:
            done.set()

    with camera(daemon) as flooder, camera(daemon) as neighbour:
        for n in range(300):
            flooder.emit("lpr_data", {**SEED_READ, "camera_id": "FLOOD", "event_id": f"f{n}"}, callback=collect)
        assert neighbour.call("lpr_data", {**SEED_READ, "camera_id": "CALM"}, timeout=30)["status"] == "success"
        assert done.wait(60)
    # Whether any had to wait depends on how fast the store keeps up; each answer is
    # either stored or "wait" (never lost), and the neighbour was served meanwhile.
    waited = [a for a in answers if a["status"] == "error"]
    assert all(a["code"] == "unavailable" and "in flight" in a["message"] for a in waited)
    stored = {r.event_id for r in records() if r.camera_id == "FLOOD"}
    assert len(stored) == 300 - len(waited)
    assert daemon.alive()


def test_a_raw_websocket_flood_without_reading_answers_is_closed(daemon, app):
    closed = (websocket.WebSocketConnectionClosedException, ConnectionResetError, BrokenPipeError)
    envelope = json.dumps({"table": "lpr_detection", "action": "insert",
                           "data": {"checkpoint_id": "FLOOD", "license_plate": "AB1", "image": b64(make_jpeg())}})
    with raw_socket(daemon) as ws, pytest.raises(closed):
        for _ in range(2000):
            ws.send(envelope)
    assert daemon.alive()
    with raw_socket(daemon) as ws:
        assert raw_call(ws, {"table": "lpr_detection", "action": "insert",
                             "data": {"checkpoint_id": "CALM", "license_plate": "AB1"}})["status"] == "success"


def test_socketio_websockets_get_the_message_cap_and_the_receive_size():
    # python-engineio's gevent driver passes neither to simple-websocket; the daemon adds both.
    # Without the cap a huge frame is buffered whole; without the receive size a 53 KB read
    # goes through the pure-Python frame parser in 4 KB pieces (1.5-2x the daemon's CPU).
    from lprserver.ingest.raw_websocket import RECEIVE_BYTES
    from lprserver.ingest.server import create_socketio_server

    sio = create_socketio_server(None, "gevent", 1_234_567)
    websocket_wsgi = sio.eio._async["websocket"](lambda ws: None, sio.eio)
    assert websocket_wsgi.server_args["max_message_size"] == 1_234_567
    assert websocket_wsgi.server_args["receive_bytes"] == RECEIVE_BYTES == 65536


def test_with_store_workers_off_the_daemon_itself_stores_the_reads(base_env, app, image_root, tmp_path):
    from .processes import Daemon

    proc = Daemon({**base_env, "INGEST_STORE_WORKERS": "0"}, tmp_path / "threads.log").start()
    try:
        jpeg = make_jpeg()
        with camera(proc) as sio:
            good = sio.call("lpr_data", {**SEED_READ, "event_id": "t1", "image_data": data_uri(jpeg)}, timeout=10)
            cut = sio.call("lpr_data", {**SEED_READ, "event_id": "t2",
                                        "image_data": data_uri(jpeg[: len(jpeg) // 2])}, timeout=10)
        writers = _children_running(proc.process.pid, b"lprserver.ingest.store_worker")
    finally:
        proc.stop()
    assert writers == []  # no helper processes: the daemon's greenlets and threads did the work
    assert good["status"] == "success" and (cut["status"], cut["code"]) == ("error", "invalid_image")
    [record] = records()
    assert (record.id, record.event_id) == (good["record_id"], "t1")
    assert (image_root / record.image_path).read_bytes() == jpeg
    assert stored_files(image_root) == [image_root / record.image_path]


def _children_running(parent: int, command_part: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if command_part in (entry / "cmdline").read_bytes() and \
                    f"PPid:\t{parent}\n" in (entry / "status").read_text():
                found.append(int(entry.name))
        except OSError:  # the process ended meanwhile
            pass
    return found


def engineio_socket(daemon) -> websocket.WebSocket:
    """A Socket.IO connection spoken by hand over a raw Engine.IO WebSocket (for frames no Socket.IO
    client would send), connected to the namespace "/"."""
    ws = websocket.create_connection(daemon.ws_url.rstrip("/") + "/socket.io/?EIO=4&transport=websocket",
                                     timeout=15)
    assert ws.recv().startswith("0")
    ws.send("40")
    assert ws.recv().startswith("40")
    return ws


def test_socketio_json_nested_too_deep_is_answered_and_the_daemon_answers_on(daemon, app):
    # Sent as raw Engine.IO frames: no Socket.IO client encodes JSON this deep.
    ws = engineio_socket(daemon)
    try:
        ws.send('421["lpr_data",' + "[" * 5000 + "]" * 5000 + "]")
        ws.send('422["camera_register",{"camera_id":"DEEP1"}]')
        answers = sorted([ws.recv(), ws.recv()])
    finally:
        ws.close(timeout=2)
    assert answers[0].startswith("431") and json.loads(answers[0][3:])[0]["code"] == "invalid_payload"
    assert answers[1].startswith("432") and json.loads(answers[1][3:])[0]["status"] == "success"
    assert daemon.alive() and records() == []


def _masked(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """One client frame (RFC 6455 §5.2), masked as clients must."""
    import os
    import struct

    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    length = len(payload)
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", length)
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("path", ["/", "/socket.io/?EIO=4&transport=websocket"])
def test_websocket_compression_is_refused_so_fragments_with_pings_between_work(daemon, app, path):
    # wsproto (both doors on gevent) failed a compressed message whose fragments had a ping between
    # them (close 1007). The daemon does not negotiate permessage-deflate: a client that offers it
    # sends plain frames, and such a message is answered.
    import base64
    import os
    import socket as sockets
    import zlib

    sock = sockets.create_connection(("127.0.0.1", daemon.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    head, _, rest = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    deflate = b"permessage-deflate" in head.lower()
    assert not deflate, head
    if path != "/":  # Engine.IO opens with its handshake, then the Socket.IO connect
        sock.sendall(_masked(1, b"40"))
    message = json.dumps({"table": "lpr_detection", "action": "insert",
                          "data": {"checkpoint_id": "FRAG1", "license_plate": "กข1234"}}).encode()
    if path != "/":
        message = b'421["lpr_data",{"camera_id":"FRAG1","plate_number":"AB1234"}]'
    body = message
    if deflate:  # RFC 7692 §7.2.1: a raw deflate stream, sync-flushed, without its final 4 bytes
        compressor = zlib.compressobj(wbits=-15)
        body = (compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    sock.sendall(_masked(1, body[:20], fin=False, rsv1=deflate) + _masked(9, b"ping")
                 + _masked(0, body[20:]))
    received = rest
    deadline = time.monotonic() + 10
    while b"status" not in received and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    sock.close()
    assert b'"status":"success"' in received.replace(b" ", b""), received[:300]
    assert [r.camera_id for r in records()] == ["FRAG1"]
