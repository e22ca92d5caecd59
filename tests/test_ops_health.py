"""Health, metrics and logs: what load balancers, Prometheus and the journal see."""

import json
import os
import re
import signal
import time

import pytest
import requests

from lprserver.cameras import create_camera
from lprserver.extensions import db
from lprserver.heartbeat import write_heartbeat

from .imagegen import data_uri, make_jpeg
from .processes import Daemon
from .test_ingest import _children_running, camera

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def heartbeat(app, tmp_path):
    path = tmp_path / "ingest.heartbeat"
    app.config["HEARTBEAT_FILE"] = str(path)
    return path


def test_health_needs_no_sign_in_and_is_ok_with_a_fresh_heartbeat(app, client, heartbeat):
    write_heartbeat(heartbeat, {"connections": 0})
    answer = client.get("/health")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["image_disk"]["free_mb"] > 0
    assert body["checks"]["ingest_daemon"]["heartbeat_age_seconds"] < 5
    assert set(body) == {"status", "checks"}  # no records, no users, no cameras


def test_health_is_503_without_a_daemon_heartbeat(app, client, heartbeat):
    answer = client.get("/health")
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["ingest_daemon"] == {"ok": False, "heartbeat_age_seconds": None}


def test_health_is_503_when_the_heartbeat_is_stale(app, client, heartbeat):
    write_heartbeat(heartbeat, {})
    app.config["HEARTBEAT_MAX_AGE"] = 0.01
    time.sleep(0.05)
    assert client.get("/health").status_code == 503


def test_health_is_503_when_the_image_disk_is_short_of_space(app, client, heartbeat):
    write_heartbeat(heartbeat, {})
    app.config["HEALTH_MIN_FREE_MB"] = 10**12
    answer = client.get("/health")
    assert answer.status_code == 503 and answer.get_json()["checks"]["image_disk"]["ok"] is False


def test_health_is_503_when_the_image_folder_cannot_be_written(app, client, heartbeat, tmp_path):
    write_heartbeat(heartbeat, {})
    not_a_folder = tmp_path / "images-is-a-file"
    not_a_folder.write_text("")
    app.config["IMAGE_STORAGE_PATH"] = str(not_a_folder)
    answer = client.get("/health")
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["image_disk"]["writable"] is False


def test_metrics_are_off_without_a_token(app, client):
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_bearer_token_when_one_is_set(app, client):
    app.config["METRICS_TOKEN"] = METRICS_TOKEN
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "lpr_records_stored 0.0" in text and "lpr_http_requests_total" in text


@pytest.fixture
def monitored_daemon(base_env, tmp_path):
    env = {**base_env, "INGEST_AUTH": "token", "METRICS_TOKEN": METRICS_TOKEN, "ASYNC_MODE": "gevent",
           "HEARTBEAT_FILE": str(tmp_path / "hb"), "HEARTBEAT_INTERVAL": "0.2"}
    proc = Daemon(env, tmp_path / "daemon.log").start()
    yield proc
    proc.stop()


def test_daemon_counts_reads_rejects_and_beats(monitored_daemon, app, client, tmp_path):
    _cam, token = create_camera(db.session, "CAM001", None, None)
    db.session.commit()
    with camera(monitored_daemon, auth={"token": token}) as cam:
        ok = cam.call("lpr_data", {"camera_id": "CAM001", "plate_number": "AB1234",
                                   "image_data": data_uri(make_jpeg(64, 48))}, timeout=10)
        bad = cam.call("lpr_data", {"camera_id": "CAM001", "plate_number": ""}, timeout=10)
        assert ok["status"] == "success" and bad["code"] == "invalid_plate"
        metrics = requests.get(f"{monitored_daemon.url}/metrics", timeout=5,
                               headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert 'lpr_ingest_reads_total{duplicate="false"} 1.0' in metrics
    assert 'lpr_ingest_rejects_total{code="invalid_plate",event="read"} 1.0' in metrics
    assert "lpr_ingest_answer_seconds_bucket" in metrics and "lpr_ingest_cameras_connected" in metrics
    assert requests.get(f"{monitored_daemon.url}/metrics", timeout=5).status_code == 404
    beat = json.loads((tmp_path / "hb").read_text())
    assert time.time() - beat["time"] < 5
    app.config["HEARTBEAT_FILE"] = str(tmp_path / "hb")
    assert client.get("/health").status_code == 200


def test_a_killed_store_worker_costs_one_batch_is_replaced_and_counted(monitored_daemon, app):
    _cam, token = create_camera(db.session, "CAM003", None, None)
    db.session.commit()
    workers = _children_running(monitored_daemon.process.pid, b"lprserver.ingest.store_worker")
    assert workers  # one per writer (SQLite: one)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    answers = []
    with camera(monitored_daemon, auth={"token": token}) as cam:
        for number in range(len(workers) + 1):  # each dead worker fails the one batch it is given
            answers.append(cam.call("lpr_data", {"camera_id": "CAM003", "plate_number": "AB1234",
                                                 "event_id": f"k{number}"}, timeout=20))
            if answers[-1]["status"] == "success":
                break
        metrics = requests.get(f"{monitored_daemon.url}/metrics", timeout=5,
                               headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    refused = [a for a in answers if a["status"] != "success"]
    assert answers[-1]["status"] == "success" and 1 <= len(refused) <= len(workers)
    assert all(a["code"] == "unavailable" for a in refused)  # the camera sends them again
    assert f"lpr_ingest_store_worker_restarts_total {float(len(refused))}" in metrics
    assert "event=store_worker_failed" in monitored_daemon.log()
    assert monitored_daemon.alive() and len(
        _children_running(monitored_daemon.process.pid, b"lprserver.ingest.store_worker")) == len(workers)


def test_logs_are_key_value_lines_without_images_tokens_or_passwords(monitored_daemon, app):
    _cam, token = create_camera(db.session, "CAM002", None, None)
    db.session.commit()
    image = data_uri(make_jpeg(64, 48))
    with camera(monitored_daemon, auth={"token": token}) as cam:
        cam.call("camera_register", {"camera_id": "CAM002", "token": token}, timeout=10)
        cam.call("lpr_data", {"camera_id": "CAM002", "plate_number": "AB1", "image_data": image}, timeout=10)
        cam.call("lpr_data", {"camera_id": "CAM002", "plate_number": "AB2", "image_data": "!" + image[30:]},
                 timeout=10)
    with camera(monitored_daemon, auth={"token": "cam_wrong-token-that-is-long-enough"}) as cam:
        cam.call("lpr_data", {"camera_id": "CAM002", "plate_number": "AB3", "token": "password=hunter2"},
                 timeout=10)
    time.sleep(0.3)
    log = monitored_daemon.log()
    assert "event=read_stored camera_id=CAM002" in log and "event=rejected code=invalid_image" in log
    assert token not in log and token[4:20] not in log
    assert "cam_wrong-token" not in log and "hunter2" not in log
    assert image[23:80] not in log and image[200:260] not in log
    for line in log.splitlines():
        assert re.match(r"ts=\S+ level=[A-Z]+ logger=\S+ \w+=", line), line


def test_scrub_removes_secrets_from_any_message():
    from lprserver.logs import scrub

    text = scrub("url=postgresql://lpr:s3cret@db/lpr token=cam_abcdefghijklmnopqrstuvwxyz "
                 "Authorization: Bearer lpr_abcdefghijklmnopqrstuvwxyz0123 password=hunter2 "
                 "img=data:image/jpeg;base64,/9j/4AAQSkZJRg==")
    assert "s3cret" not in text and "abcdefghijklmnop" not in text and "hunter2" not in text
    assert "4AAQ" not in text


def test_the_daemon_s_health_says_when_the_image_disk_cannot_take_writes(base_env, tmp_path):
    # More free space asked for than any disk has: what a full image disk looks like to /health.
    daemon = Daemon({**base_env, "HEALTH_MIN_FREE_MB": str(10**12)}, tmp_path / "daemon.log").start()
    try:
        answer = requests.get(f"{daemon.url}/health", timeout=5)
    finally:
        daemon.stop()
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "fail" and body["image_disk"]["ok"] is False
    assert body["image_disk"]["writable"] is True and body["image_disk"]["free_mb"] > 0
