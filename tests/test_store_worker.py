"""Store workers: real helper processes that store whole batches for the daemon, on the real database."""

import os
import pickle
import signal
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.ingest.errors import IngestError
from lprserver.ingest.pipeline import ReadResult, prepare_read
from lprserver.ingest.store_worker import StoreWorkers, WorkerSetup
from lprserver.models import BlacklistDetection, Record, utcnow

from .imagegen import data_uri, make_jpeg


@pytest.fixture(params=["batch", "file"])
def workers(app, request):
    """One real worker process, in each IMAGE_SYNC mode."""
    setup = replace(WorkerSetup.from_config(app.config), image_sync=request.param)
    started = StoreWorkers(setup, count=1)
    yield started
    started.stop()


def _read(event_id: str, image: str | None = None, camera_id: str = "CAM001", plate: str = "กข1234"):
    return prepare_read({"camera_id": camera_id, "event_id": event_id, "plate_number": plate,
                         "confidence": 90.0, "image_data": image})


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _records() -> list[Record]:
    db.session.rollback()  # see what the worker committed
    return list(db.session.scalars(select(Record).order_by(Record.id)))


def test_a_batch_is_stored_rows_and_images_thumbnails_named(workers, image_root):
    jpegs = [make_jpeg(640, 480), make_jpeg(320, 240)]
    first, bare, second = workers.store([_read("w1", data_uri(jpegs[0])), _read("w2"),
                                         _read("w3", data_uri(jpegs[1]), camera_id="CAM002")])
    assert all(isinstance(r, ReadResult) and not r.duplicate for r in (first, bare, second))
    assert first.live["plate_number"] == "กข1234" and first.live["thumbnail_url"].endswith("/thumbnail")
    assert bare.live["image_url"] is None
    rows = _records()
    assert [(r.id, r.event_id, r.camera_id) for r in rows] == [
        (first.record_id, "w1", "CAM001"), (bare.record_id, "w2", "CAM001"), (second.record_id, "w3", "CAM002")]
    assert (image_root / rows[0].image_path).read_bytes() == jpegs[0]
    assert (image_root / rows[2].image_path).read_bytes() == jpegs[1]
    assert rows[1].image_path is None
    # The thumbnails are named with their rows and made on their first view (issue 24).
    assert rows[0].thumbnail_path == rows[0].image_path[:-4] + "_thumb.jpg"
    assert _files(image_root) == sorted([rows[0].image_path, rows[2].image_path])


def test_a_bad_image_refuses_its_read_alone(workers, image_root):
    jpeg = make_jpeg(640, 480)
    good, cut, garbage = workers.store([_read("g1", data_uri(jpeg)), _read("g2", data_uri(jpeg[:-2000])),
                                        _read("g3", "not base64!!")])
    assert isinstance(good, ReadResult)
    for refused, words in ((cut, "complete JPEG"), (garbage, "base64")):
        assert isinstance(refused, IngestError)
        assert (refused.code, refused.field) == ("invalid_image", "image_data") and words in refused.message
    [row] = _records()
    assert row.id == good.record_id and _files(image_root) == [row.image_path]


def test_a_repeat_is_answered_with_the_first_record_and_a_blacklisted_plate_alerts(app, workers):
    add_entry(db.session, "กข1234", reason="stolen")
    db.session.commit()
    [first] = workers.store([_read("r1")])
    again, twice, other = workers.store([_read("r1"), _read("r2"), _read("r2")])
    assert first.blacklisted and [a["entry"]["reason"] for a in first.alerts] == ["stolen"]
    assert (again.record_id, again.duplicate) == (first.record_id, True)
    assert not twice.duplicate and (other.record_id, other.duplicate) == (twice.record_id, True)
    assert len(_records()) == 2
    assert len(db.session.scalars(select(BlacklistDetection)).all()) == 2


def test_a_worker_that_dies_fails_its_batch_and_is_replaced(workers, image_root):
    worker = workers.idle.get_nowait()
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.wait()
    workers.idle.put(worker)
    [failed] = workers.store([_read("d1", data_uri(make_jpeg()))])
    assert isinstance(failed, IngestError) and failed.code == "unavailable"  # the camera sends it again
    [again] = workers.store([_read("d1", data_uri(make_jpeg()))])
    assert isinstance(again, ReadResult) and not again.duplicate
    [row] = _records()
    assert row.id == again.record_id and (image_root / row.image_path).exists()


def test_a_database_that_cannot_take_the_write_is_unavailable_and_leaves_no_files(app, image_root):
    # Nothing listens on port 9: the connection is refused, as while PostgreSQL restarts.
    setup = replace(WorkerSetup.from_config(app.config), database_uri="postgresql+psycopg2://lpr@127.0.0.1:9/lpr",
                    engine_options={"pool_pre_ping": True})
    down = StoreWorkers(setup, count=1)
    try:
        outcomes = down.store([_read("u1", data_uri(make_jpeg())), _read("u2")])
        assert [(o.code, o.message) for o in outcomes] == [
            ("unavailable", "the database cannot take the write now; retry later")] * 2
        assert down.idle.queue[0].process.poll() is None  # the worker goes on
    finally:
        down.stop()
    assert _files(image_root) == [] and _records() == []


def test_a_worker_exits_when_the_daemon_goes(app):
    workers = StoreWorkers(WorkerSetup.from_config(app.config), count=1)
    worker = workers.idle.get_nowait()
    worker.sock.close()  # what the kernel does when the daemon is killed
    assert worker.process.wait(timeout=10) == 0


def test_the_database_address_is_not_on_the_worker_s_command_line(app):
    workers = StoreWorkers(WorkerSetup.from_config(app.config), count=1)
    try:
        command = Path(f"/proc/{workers.idle.queue[0].process.pid}/cmdline").read_bytes()
        assert b"store_worker" in command
        assert app.config["SQLALCHEMY_DATABASE_URI"].encode() not in command and b"sqlite" not in command
    finally:
        workers.stop()


def test_outcomes_survive_the_trip_between_processes():
    error = pickle.loads(pickle.dumps(IngestError("invalid_image", "not valid base64", "image_data")))
    assert (error.code, error.message, error.field) == ("invalid_image", "not valid base64", "image_data")
    result = ReadResult(7, False, True, "CAM001", {"id": 7, "received_at": utcnow().isoformat()})
    assert pickle.loads(pickle.dumps(result)) == result


def test_workers_are_ready_before_the_daemon_listens_and_one_that_cannot_start_stops_it(app):
    workers = StoreWorkers(WorkerSetup.from_config(app.config), count=2)
    try:
        assert [w.ready for w in workers.idle.queue] == [True, True]  # the first read never waits for a start
    finally:
        workers.stop()
    broken = replace(WorkerSetup.from_config(app.config), image_sync="sometimes")  # the worker dies setting up
    with pytest.raises(RuntimeError, match="could not start"):
        StoreWorkers(broken, count=1)


def test_warm_up_runs_a_batch_s_lookups_and_leaves_nothing_behind(app, image_root):
    from lprserver import images
    from lprserver.ingest import pipeline
    from lprserver.models import Camera

    images.warm_up()
    pipeline.warm_up(db.session, utcnow())
    assert not db.session().in_transaction()
    assert _records() == [] and list(db.session.scalars(select(Camera))) == []
    assert _files(image_root) == []
