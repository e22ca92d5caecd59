"""The database or the image disk failing while cameras send: `unavailable`, nothing half-stored, recovery."""

import sqlite3
import time
from datetime import UTC, datetime

import pytest

from .imagegen import b64, make_jpeg
from .test_ingest import SEED_READ, camera, records, stored_files


def send_until_stored(sio, read, timeout=30.0) -> tuple[dict, list[dict]]:
    """Resend a read, as a camera does, until it is stored; return the answer and the refusals."""
    refusals = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = sio.call("lpr_data", read, timeout=30)
        if answer["status"] == "success":
            return answer, refusals
        refusals.append(answer)
        time.sleep(0.5)
    raise AssertionError(f"never stored; last answers {refusals[-3:]}")


def test_postgresql_stopped_answers_unavailable_and_the_daemon_recovers(daemon, app, postgres, image_root):
    jpeg = make_jpeg()
    with camera(daemon) as sio:
        before = sio.call("lpr_data", {**SEED_READ, "event_id": "before", "image_data": b64(jpeg)}, timeout=10)
        assert before["status"] == "success"
        postgres.stop("immediate")
        try:
            down = sio.call("lpr_data", {**SEED_READ, "event_id": "during", "image_data": b64(jpeg)}, timeout=30)
            assert down["status"] == "error" and down["code"] == "unavailable", down
            assert daemon.alive()
        finally:
            postgres.resume()
        started = time.monotonic()
        after, _ = send_until_stored(sio, {**SEED_READ, "event_id": "during", "image_data": b64(jpeg)})
        recovered_in = time.monotonic() - started
    print(f"daemon recovered {recovered_in:.1f} s after PostgreSQL came back")
    assert recovered_in < 10
    assert not after["duplicate"]
    stored = records()
    assert [r.event_id for r in stored] == ["before", "during"]
    # Each stored read has its image; the refused attempt left no file behind.
    assert len(stored_files(image_root)) == 2
    assert all((image_root / r.image_path).read_bytes() == jpeg for r in stored)


def test_a_locked_sqlite_database_answers_unavailable(daemon, app, database, db_kind, image_root):
    if db_kind != "sqlite":
        pytest.skip("SQLite's own failure mode; PostgreSQL's is the test above")
    blocker = sqlite3.connect(database.removeprefix("sqlite:///"), timeout=1)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with camera(daemon) as sio:
            answer = sio.call("lpr_data", {**SEED_READ, "event_id": "locked", "image_data": b64(make_jpeg())},
                              timeout=60)
    finally:
        blocker.rollback()
        blocker.close()
    assert answer["code"] == "unavailable"
    assert records() == [] and stored_files(image_root) == []
    with camera(daemon) as sio:
        assert sio.call("lpr_data", {**SEED_READ, "event_id": "locked"}, timeout=10)["status"] == "success"


def test_an_image_disk_that_refuses_writes_answers_unavailable_and_recovers(daemon, app, image_root):
    # A file where today's folder should be makes every image write fail, as a full
    # or read-only disk would; removing it is freeing the space.
    blocker = image_root / datetime.now(UTC).strftime("%Y")
    blocker.write_bytes(b"")
    try:
        with camera(daemon) as sio:
            answer = sio.call("lpr_data", {**SEED_READ, "event_id": "disk", "image_data": b64(make_jpeg())},
                              timeout=10)
        assert answer["code"] == "unavailable"
        assert records() == []
    finally:
        blocker.unlink()
    with camera(daemon) as sio:
        answer, _ = send_until_stored(sio, {**SEED_READ, "event_id": "disk", "image_data": b64(make_jpeg())})
    assert len(records()) == 1 and len(stored_files(image_root)) == 1
