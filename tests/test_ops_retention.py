"""Retention: old records go with their files, newer ones stay, nothing dangles."""

import os
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from lprserver.extensions import db
from lprserver.image_store import ensure_thumbnail
from lprserver.images import FilesystemImageStore
from lprserver.ingest.pipeline import IngestSettings, ingest_read
from lprserver.models import BlacklistDetection, Record, utcnow
from lprserver.retention import cleanup

from .imagegen import data_uri, make_jpeg


def _store() -> FilesystemImageStore:
    return FilesystemImageStore(current_app.config["IMAGE_STORAGE_PATH"])


def _ingest(plate: str, age_days: int, viewed: bool = True) -> Record:
    """A read with its image; `viewed`: its thumbnail was asked for once, so it is kept too (issue 24)."""
    settings = IngestSettings.from_config(current_app.config)
    payload = {"camera_id": "CAM001", "plate_number": plate, "confidence": 90,
               "image_data": data_uri(make_jpeg(64, 48))}
    result = ingest_read(db.session, _store(), settings, payload)
    db.session.execute(update(Record).where(Record.id == result.record_id)
                       .values(received_at=utcnow() - timedelta(days=age_days)))
    db.session.commit()
    record = db.session.get(Record, result.record_id)
    if viewed:
        ensure_thumbnail(_store(), record.image_path, record.thumbnail_path)
    return record


def _files(record: Record) -> list:
    store = _store()
    return [store.path(record.image_path), store.path(record.thumbnail_path)]


def test_records_older_than_the_limit_go_with_their_files_newer_ones_stay(app):
    old = [_ingest(f"OLD{i}", 40) for i in range(5)]
    new = [_ingest(f"NEW{i}", 2) for i in range(3)]
    old_files = [f for r in old for f in _files(r)]
    new_files = [f for r in new for f in _files(r)]
    new_ids = {r.id for r in new}

    report = cleanup(db.session, _store(), retention_days=30, budget_bytes=0, batch_size=2)

    assert report.records == 5 and report.files == 10 and report.batches == 3
    assert set(db.session.scalars(select(Record.id))) == new_ids
    assert not any(f.exists() for f in old_files)
    assert all(f.exists() for f in new_files)
    _assert_no_row_points_at_a_missing_file()


def test_blacklist_hits_of_deleted_records_go_too(app):
    from lprserver.blacklist import add_entry

    add_entry(db.session, "HIT1", "stolen", "stolen", "tests", None)
    db.session.commit()
    _ingest("HIT1", 100)
    assert db.session.scalar(select(func.count()).select_from(BlacklistDetection)) == 1
    cleanup(db.session, _store(), retention_days=30, budget_bytes=0, batch_size=10)
    assert db.session.scalar(select(func.count()).select_from(BlacklistDetection)) == 0
    assert db.session.scalar(select(func.count()).select_from(Record)) == 0


def test_disk_budget_deletes_the_oldest_records_first(app):
    records = [_ingest(f"B{i}", 10 - i) for i in range(6)]
    one = sum(f.stat().st_size for f in _files(records[0]))
    report = cleanup(db.session, _store(), retention_days=0, budget_bytes=int(one * 3.5), batch_size=1)
    kept = set(db.session.scalars(select(Record.id)))
    assert kept == {r.id for r in records[3:]}
    assert report.records == 3
    _assert_no_row_points_at_a_missing_file()


def test_orphan_files_are_swept_and_rows_with_missing_files_lose_their_dangling_path(app):
    kept = _ingest("KEEP1", 1)
    unviewed = _ingest("UNVIEWED1", 1, viewed=False)  # no thumbnail yet: not a missing file
    broken = _ingest("BROKEN1", 1)
    broken_thumbnail = broken.thumbnail_path
    _files(broken)[0].unlink()
    orphan = _store().root / "2020" / "01" / "01" / "CAM001" / "stray.jpg"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x")
    hour_ago = time.time() - 7200
    os.utime(orphan, (hour_ago, hour_ago))
    fresh = orphan.with_name("just-written.jpg")
    fresh.write_bytes(b"y")

    report = cleanup(db.session, _store(), retention_days=30, budget_bytes=0, batch_size=10)

    assert report.orphan_files == 1 and report.missing_files == 1
    assert not _store().path(broken_thumbnail).exists()
    assert not orphan.exists() and fresh.exists()
    assert all(f.exists() for f in _files(kept))
    db.session.expire_all()
    assert db.session.get(Record, broken.id).image_path is None
    assert db.session.get(Record, unviewed.id).image_path == unviewed.image_path
    assert _store().path(unviewed.image_path).is_file()


def test_cleanup_command_uses_retention_days_and_logs_what_it_removed(app, caplog):
    _ingest("OLD1", 90)
    _ingest("NEW1", 1)
    app.config["RETENTION_DAYS"] = 30
    caplog.set_level("INFO", logger="lprserver.retention")
    result = app.test_cli_runner().invoke(args=["lpr", "cleanup"])
    assert result.exit_code == 0, result.output
    assert "records_deleted=1 files_deleted=2" in result.output
    assert "event=retention_batch reason=age" in caplog.text
    assert [r.plate_number for r in db.session.scalars(select(Record))] == ["NEW1"]


def _assert_no_row_points_at_a_missing_file():
    store = _store()
    for image, thumbnail in db.session.execute(select(Record.image_path, Record.thumbnail_path)):
        assert image is None or store.path(image).is_file(), image
        assert (image is None) == (thumbnail is None)
