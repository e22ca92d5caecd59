"""IMAGE_STORE=s3 (SPEC §14 "Images on an object store"), with moto's standalone S3 server standing in for
MinIO: a read through the real daemon is an object in the bucket and nothing on disk, the web app serves it
at the same URLs with the same checks, retention and erase delete the objects, the export reads them, and a
store that is down or refusing answers `unavailable` with nothing kept."""

import io
import os
import re
import socket
import sqlite3
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from PIL import Image
from sqlalchemy import select, update

import config
from lprserver import create_app
from lprserver.alert_sender import _read_image
from lprserver.extensions import db
from lprserver.image_store import S3ImageStore, ensure_thumbnail, image_store_for
from lprserver.images import ImageStoreUnavailable, SentImage
from lprserver.models import AuditEntry, Camera, Record, User, utcnow
from lprserver.retention import CleanupReport, sweep_orphan_files

from .conftest import bearer
from .imagegen import b64, data_uri, make_jpeg, make_png
from .processes import Daemon, ServiceProcess, WebApp
from .test_ingest import SEED_READ, camera, records
from .test_setup_sh import run_setup
from .webserver import web_session

BUCKET = "lpr-test-images"
KEYS = {"AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
        "AWS_DEFAULT_REGION": "us-east-1",
        # boto3 never looks for an instance role here (it would ask an address off this machine).
        "AWS_EC2_METADATA_DISABLED": "true"}
KEY_SHAPE = re.compile(r"\d{4}/\d{2}/\d{2}/(?P<camera>[A-Za-z0-9_.-]+)/(?P<name>[0-9a-f]{32})(?P<rest>.*)")


class MotoServer(ServiceProcess):
    """moto's S3 API server (`python -m moto.server`) on a free port; its buckets live in its memory."""

    port_setting, host_setting = "MOTO_PORT", "MOTO_HOST"
    default_command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"]

    def client(self):
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
                            config=BotoConfig(s3={"addressing_style": "path"}))

    def keys(self) -> set[str]:
        listed = self.client().list_objects_v2(Bucket=BUCKET)
        return {item["Key"] for item in listed.get("Contents", [])}


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer({}, tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def no_disk(tmp_path_factory) -> Path:
    """IMAGE_STORAGE_PATH of the s3 processes: it must never come to exist (nothing written to disk)."""
    return tmp_path_factory.mktemp("s3-run") / "never-images"


@pytest.fixture(scope="module")
def s3_env(base_env, moto, no_disk) -> dict:
    return {**base_env, **KEYS, "IMAGE_STORE": "s3", "S3_ENDPOINT_URL": moto.url, "S3_BUCKET": BUCKET,
            "S3_TIMEOUT": "2", "IMAGE_STORAGE_PATH": str(no_disk)}


@pytest.fixture(scope="module")
def s3_daemon(s3_env, tmp_path_factory):
    """The daemon as production runs it: gevent, store worker processes writing to the bucket."""
    proc = Daemon({**s3_env, "ASYNC_MODE": "gevent"}, tmp_path_factory.mktemp("daemon") / "s3.log").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module", params=["gevent", "eventlet"])
def inline_daemon(request, s3_env, tmp_path_factory):
    """The daemon storing batches itself (INGEST_STORE_WORKERS=0): uploads as greenlets (images.io_map)."""
    env = {**s3_env, "ASYNC_MODE": request.param, "INGEST_STORE_WORKERS": "0"}
    proc = Daemon(env, tmp_path_factory.mktemp("daemon") / f"s3-inline-{request.param}.log").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def s3_webapp(s3_env, tmp_path_factory):
    """The web app as `python run.py` serves it (gevent, monkey-patched), reading the bucket."""
    proc = WebApp({**s3_env, "ASYNC_MODE": "gevent"}, tmp_path_factory.mktemp("web") / "s3-web.log").start()
    yield proc
    proc.stop()


@pytest.fixture
def bucket(moto):
    """An empty bucket (made again after a test restarted the server)."""
    client = moto.client()
    names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET not in names:
        client.create_bucket(Bucket=BUCKET)
    for key in moto.keys():
        client.delete_object(Bucket=BUCKET, Key=key)
    return client


@pytest.fixture
def app(s3_env, clean, bucket, monkeypatch):
    """The web app with IMAGE_STORE=s3 (this module's `app`: conftest's client, tokens and users use it)."""
    for name, value in KEYS.items():  # boto3 in this process reads them as it would in the web app's
        monkeypatch.setenv(name, value)
    app = create_app(config.TestingConfig(s3_env))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def send_http(client, token: str, plate: str = "กข1234", camera_id: str = "CAM001", seed: int = 1,
              image: bytes | None = None) -> int:
    body = {"camera_id": camera_id, "plate_number": plate, "confidence": 90,
            "image_data": data_uri(image or make_jpeg(160, 120, seed=seed))}
    answer = client.post("/api/records", json=body, headers=bearer(token))
    assert answer.status_code == 201, answer.get_json()
    record_id = answer.get_json()["record_id"]
    # Viewed once: the web app makes its thumbnail then and keeps it in the bucket (issue 24).
    assert client.get(f"/api/records/{record_id}/thumbnail", headers=bearer(token)).status_code == 200
    return record_id


def test_a_read_through_the_daemon_is_an_object_in_the_bucket_and_nothing_is_on_disk(s3_daemon, app, moto,
                                                                                     no_disk):
    jpeg, png = make_jpeg(), make_png()
    with camera(s3_daemon) as sio:
        first = sio.call("lpr_data", {**SEED_READ, "event_id": "e1", "image_data": b64(jpeg)}, timeout=20)
        second = sio.call("lpr_data", {**SEED_READ, "event_id": "e2", "image_data": data_uri(png, "image/png")},
                          timeout=20)
        again = sio.call("lpr_data", {**SEED_READ, "event_id": "e1", "image_data": b64(jpeg)}, timeout=20)
    assert first["status"] == second["status"] == "success", (first, second)
    assert again["duplicate"] is True and again["record_id"] == first["record_id"]
    stored = records()
    assert [r.id for r in stored] == [first["record_id"], second["record_id"]]
    client = moto.client()
    for record, data, kind in ((stored[0], jpeg, "image/jpeg"), (stored[1], png, "image/png")):
        # The key as SPEC §4 names files: the UTC day received, the camera, a name of the server's.
        shape = KEY_SHAPE.fullmatch(record.image_path)
        assert shape and shape["camera"] == "CAM001" and shape["rest"] in (".jpg", ".png")
        assert record.received_at.strftime("%Y/%m/%d/") == record.image_path[:11]
        assert record.thumbnail_path == record.image_path.rsplit(".", 1)[0] + "_thumb.jpg"
        got = client.get_object(Bucket=BUCKET, Key=record.image_path)
        assert got["ContentType"] == kind and got["ContentLength"] == len(data)
        assert got["Body"].read() == data  # byte for byte, in its own format (SPEC §2.1)
    # The repeat stored no second object; nothing went to the local disk; the thumbnails are made on
    # their first view (below), not while the camera waits.
    assert moto.keys() == {r.image_path for r in stored}
    store = image_store_for(app)
    for record in stored:
        ensure_thumbnail(store, record.image_path, record.thumbnail_path)
        thumb = client.get_object(Bucket=BUCKET, Key=record.thumbnail_path)
        assert thumb["ContentType"] == "image/jpeg"
        with Image.open(io.BytesIO(thumb["Body"].read())) as small:
            assert small.format == "JPEG" and small.width <= 160 and small.height <= 120
    assert not no_disk.exists()
    health = requests.get(f"{s3_daemon.url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["image_store"]["ok"] is True


def test_a_daemon_without_store_workers_uploads_a_batch_as_greenlets(inline_daemon, app, moto):
    def send(number: int) -> list[dict]:
        with camera(inline_daemon) as sio:
            # Registered first: on SQLite a batch that creates a camera holds the write lock while its
            # images are stored, and the daemon's presence update then waits out SQLite's busy timeout.
            assert sio.call("camera_register", {"camera_id": f"CAM{number}"}, timeout=20)["status"] == "success"
            return [sio.call("lpr_data", {**SEED_READ, "camera_id": f"CAM{number}", "event_id": str(i),
                                          "image_data": b64(make_jpeg(320, 240, seed=number * 10 + i))},
                             timeout=20) for i in range(3)]

    with ThreadPoolExecutor(4) as pool:  # four cameras at once: batches of several reads
        answers = [a for each in pool.map(send, range(4)) for a in each]
    assert {a["status"] for a in answers} == {"success"}, answers
    stored = records()
    assert len(stored) == 12
    assert moto.keys() == {r.image_path for r in stored}


def test_the_gevent_web_app_streams_the_objects(s3_webapp, app, client, make_token, users):
    jpeg = make_jpeg(320, 240, seed=7)
    record_id = send_http(client, make_token("admin"), image=jpeg)
    http = web_session(s3_webapp, "viewer")
    image = http.get(f"{s3_webapp.url}/api/records/{record_id}/image", timeout=10)
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
    assert image.content == jpeg
    thumb = http.get(f"{s3_webapp.url}/api/records/{record_id}/thumbnail", timeout=10)
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    assert requests.get(f"{s3_webapp.url}/api/records/{record_id}/image", timeout=10).status_code == 401


def test_the_web_app_serves_objects_at_the_same_urls_with_its_checks_and_audit(app, client, make_token, moto):
    admin = make_token("admin")
    jpeg = make_jpeg(320, 240, seed=3)
    record_id = send_http(client, admin, image=jpeg)
    db.session.add(Camera(id="CAM-B", name="B", site="B"))
    db.session.commit()
    answer = client.get(f"/api/records/{record_id}/image", headers=bearer(admin))
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
    assert answer.get_data() == jpeg and answer.headers["Content-Length"] == str(len(jpeg))
    assert answer.headers["Cache-Control"] == "private, max-age=3600"
    thumb = client.get(f"/api/records/{record_id}/thumbnail", headers=bearer(admin))
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg" and thumb.get_data()[:2] == b"\xff\xd8"
    # The checks before any byte is fetched: sign-in, and sites (another site's read is a 404).
    assert client.get(f"/api/records/{record_id}/image").status_code == 401
    viewer = make_token("viewer", username="site-b-viewer")
    db.session.scalar(select(User).where(User.username == "site-b-viewer")).sites = ["B"]
    db.session.commit()
    assert client.get(f"/api/records/{record_id}/image", headers=bearer(viewer)).status_code == 404
    # Each view of the full image is audited; the thumbnail's is not (SPEC §15).
    views = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "record.image")).all()
    assert [v.target for v in views] == [f"record:{record_id}"]
    # An object gone from the bucket is a 404, as a missing file is.
    record = db.session.get(Record, record_id)
    moto.client().delete_object(Bucket=BUCKET, Key=record.image_path)
    assert client.get(f"/api/records/{record_id}/image", headers=bearer(admin)).status_code == 404
    health = client.get("/health").get_json()["checks"]
    assert health["image_store"]["ok"] is True and "image_disk" not in health


def test_retention_deletes_the_objects_with_their_rows_and_sweeps_orphans(app, client, make_token, moto):
    admin = make_token("admin")
    old, kept = send_http(client, admin, seed=1), send_http(client, admin, seed=2)
    db.session.execute(update(Record).where(Record.id == old).values(received_at=utcnow() - timedelta(days=40)))
    db.session.commit()
    old_keys = set(db.session.execute(select(Record.image_path, Record.thumbnail_path)
                                      .where(Record.id == old)).one())
    orphan = "2020/01/01/CAM001/" + "0" * 32 + ".jpg"  # a write whose read failed, as a crash leaves it
    moto.client().put_object(Bucket=BUCKET, Key=orphan, Body=b"\xff\xd8stray", ContentType="image/jpeg")
    foreign = "notes/admin-readme.txt"  # not named as the server names images: never swept
    moto.client().put_object(Bucket=BUCKET, Key=foreign, Body=b"the admin's own")
    result = app.test_cli_runner().invoke(args=["lpr", "cleanup", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "records_deleted=1 files_deleted=2" in result.output
    assert [r.id for r in db.session.scalars(select(Record))] == [kept]
    left = moto.keys()
    assert not old_keys & left and orphan in left  # the orphan is younger than the grace period
    report = CleanupReport()
    sweep_orphan_files(db.session, image_store_for(app), report, now=utcnow() + timedelta(hours=2))
    kept_keys = set(db.session.execute(select(Record.image_path, Record.thumbnail_path)).one())
    assert report.orphan_files == 1 and moto.keys() == kept_keys | {foreign}  # nor are the rows' objects


def test_image_retention_clears_the_objects_and_keeps_the_read(app, client, make_token, moto):
    admin = make_token("admin")
    record_id = send_http(client, admin)
    db.session.execute(update(Record).values(received_at=utcnow() - timedelta(days=10)))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["lpr", "cleanup", "--days", "30", "--image-days", "5"])
    assert result.exit_code == 0, result.output
    record = db.session.get(Record, record_id)
    assert record.image_path is None and moto.keys() == set()
    assert client.get(f"/api/records/{record_id}/image", headers=bearer(admin)).status_code == 404


def test_the_export_zip_reads_the_objects_and_erase_deletes_them(app, client, make_token, moto):
    admin = make_token("admin")
    images = {send_http(client, admin, seed=i): None for i in range(2)}
    other = send_http(client, admin, plate="ขค999", seed=9)
    client_s3 = moto.client()
    for rid in images:
        images[rid] = client_s3.get_object(Bucket=BUCKET, Key=db.session.get(Record, rid).image_path)["Body"].read()
    answer = client.get("/api/plates/" + quote("กข1234") + "/export.zip", headers=bearer(admin))
    assert answer.status_code == 200
    with zipfile.ZipFile(io.BytesIO(answer.get_data())) as zf:
        for rid, data in images.items():
            assert zf.read(f"images/{rid}.jpg") == data
    answer.close()
    erased = client.delete("/api/plates/" + quote("กข1234") + "?reason=data subject request 42",
                           headers=bearer(admin))
    assert erased.status_code == 200 and erased.get_json() == {"records": 2, "files": 4}
    other_record = db.session.get(Record, other)
    assert moto.keys() == {other_record.image_path, other_record.thumbnail_path}


def test_alert_e_mails_attach_the_object(app, client, make_token):
    record_id = send_http(client, make_token("admin"), seed=5)
    store = image_store_for(app)
    key = db.session.get(Record, record_id).image_path
    assert _read_image(store, key)[:2] == b"\xff\xd8"
    assert _read_image(store, key.replace(".jpg", "-gone.jpg")) is None  # the message goes without it


def test_a_bucket_that_refuses_writes_answers_unavailable_and_keeps_nothing(app, client, make_token, moto):
    admin = make_token("admin")
    moto.client().delete_bucket(Bucket=BUCKET)  # NoSuchBucket: the store is up but refuses every write
    answer = client.post("/api/records", headers=bearer(admin), json={
        "camera_id": "CAM001", "plate_number": "กข1234", "image_data": data_uri(make_jpeg(160, 120))})
    assert answer.status_code == 503 and answer.get_json()["error"]["code"] == "unavailable"
    assert records() == []
    assert client.get("/health").get_json()["checks"]["image_store"]["ok"] is False


def test_a_store_that_is_down_answers_unavailable_in_seconds_and_keeps_nothing(s3_daemon, app, moto, no_disk):
    jpeg = make_jpeg()
    with camera(s3_daemon) as sio:
        assert sio.call("lpr_data", {**SEED_READ, "event_id": "before", "image_data": b64(jpeg)},
                        timeout=20)["status"] == "success"
        moto.stop()
        try:
            started = time.monotonic()
            down = sio.call("lpr_data", {**SEED_READ, "event_id": "during", "image_data": b64(jpeg)}, timeout=60)
            waited = time.monotonic() - started
            assert down["status"] == "error" and down["code"] == "unavailable", down
            health = requests.get(f"{s3_daemon.url}/health", timeout=30)
            assert health.status_code == 503 and health.json()["image_store"]["ok"] is False
        finally:
            moto.start()
        print(f"the read was answered `unavailable` {waited:.2f} s after it was sent, the store down")
        assert waited < 10
        assert [r.event_id for r in records()] == ["before"]  # no row for the refused read
        # moto kept its bucket in memory: a new one, empty, as a store that lost nothing of the refused read.
        moto.client().create_bucket(Bucket=BUCKET)
        after = sio.call("lpr_data", {**SEED_READ, "event_id": "during", "image_data": b64(jpeg)}, timeout=20)
    assert after["status"] == "success" and after["duplicate"] is False
    during = records()[-1]
    assert moto.keys() == {during.image_path}
    assert not no_disk.exists()


def test_a_store_that_accepts_and_never_answers_is_unavailable_within_its_timeouts(monkeypatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    silent = socket.create_server(("127.0.0.1", 0))  # takes connections (the kernel's backlog), says nothing
    store = S3ImageStore(BUCKET, f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=1.0)
    try:
        started = time.monotonic()
        result = store.save_many([(SentImage(b64(make_jpeg(160, 120)), 2_000_000, 40_000_000), "CAM001")],
                                  utcnow())
        waited = time.monotonic() - started
    finally:
        silent.close()
    assert isinstance(result[0], ImageStoreUnavailable) and "ReadTimeoutError" in str(result[0])
    print(f"a store that never answers: unavailable after {waited:.2f} s (S3_TIMEOUT=1, one retry)")
    assert waited < 6  # two attempts of 1 s for "100 Continue" and 1 s for the answer, and a back-off


@pytest.mark.parametrize("env, message", [
    ({"IMAGE_STORE": "s3"}, "needs S3_BUCKET"),
    ({"IMAGE_STORE": "s3", "S3_BUCKET": "Bad_Bucket"}, "is not a bucket name"),
    ({"IMAGE_STORE": "disk"}, "IMAGE_STORE must be filesystem or s3"),
    ({"IMAGE_STORE": "s3", "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": "minio:9000"}, "S3_ENDPOINT_URL must be"),
    ({"IMAGE_STORE": "s3", "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": "http://key:secret@minio:9000"},
     "no credentials in it"),
    ({"IMAGE_STORE": "s3", "S3_BUCKET": BUCKET, "S3_TIMEOUT": "0"}, "S3_TIMEOUT must be"),
    ({"IMAGE_STORE": "s3", "S3_BUCKET": BUCKET, "IMAGE_DISK_BUDGET_GB": "10"}, "IMAGE_DISK_BUDGET_GB is for"),
    ({"IMAGE_STORE": "s3", "S3_BUCKET": BUCKET, "IMAGE_ACCEL_REDIRECT": "/_images/"}, "leave it empty"),
])
def test_settings_that_cannot_work_are_refused(env, message):
    with pytest.raises(ValueError, match=message):
        config.TestingConfig(env)


def test_production_refuses_an_s3_store_without_a_bucket():
    with pytest.raises(ValueError, match="needs S3_BUCKET"):
        config.ProductionConfig({"SECRET_KEY": "a3f9c1e07b5d48e2a6c4f0b9d1e7a5c3b8f2e6d0a4c9b7e1f5d3a8c6e0b2f4d7",
                          "IMAGE_STORE": "s3"})


def test_the_default_store_is_the_filesystem_and_s3_keys_are_not_settings():
    assert config.TestingConfig({}).IMAGE_STORE == "filesystem"
    s3 = config.TestingConfig({"IMAGE_STORE": "S3", "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": "http://127.0.0.1:9000/",
                        **KEYS})
    assert (s3.IMAGE_STORE, s3.S3_ENDPOINT_URL) == ("s3", "http://127.0.0.1:9000")
    assert not [name for name in vars(s3) if name.startswith("AWS_")]  # boto3 reads them itself
    assert isinstance(S3ImageStore.from_config(vars(s3)), S3ImageStore)


def test_backup_leaves_the_bucket_to_the_store_and_restore_leaves_it_alone(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("backup and restore need root")
    etc, images, db_file = tmp_path / "etc", tmp_path / "images", tmp_path / "lpr.db"
    etc.mkdir()
    sqlite3.connect(db_file).close()
    (etc / "lprserver.env").write_text("\n".join([
        "FLASK_CONFIG=testing", f"DATABASE_URL=sqlite:///{db_file}", f"IMAGE_STORAGE_PATH={images}",
        "IMAGE_STORE=s3", f"S3_BUCKET={BUCKET}", "S3_ENDPOINT_URL=http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID=backup-test-key", "AWS_SECRET_ACCESS_KEY=backup-test-secret", ""]))
    env = {"VENV": sys.prefix, "LPR_ETC": str(etc), "LPR_USER": "nobody", "LPR_BACKUP_DIR": str(tmp_path / "b")}
    done = run_setup("backup", str(tmp_path / "b" / "one"), env=env)
    assert f"they are in the bucket {BUCKET}" in done.stdout
    made = tmp_path / "b" / "one"
    assert {p.name for p in made.iterdir()} == {"database.sqlite", "images-in-bucket.txt", "lprserver.env"}
    assert (made / "images-in-bucket.txt").read_text() == (f"IMAGE_STORE=s3\nS3_BUCKET={BUCKET}\n"
                                                          "S3_ENDPOINT_URL=http://127.0.0.1:9\n")
    restored = run_setup("restore", str(made), "--yes", env=env)
    assert "left as they are" in restored.stdout and not images.exists()
    assert "backup-test-secret" not in done.stdout + done.stderr + restored.stdout + restored.stderr
