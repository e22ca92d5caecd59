"""lpr_records partitioned by UTC month on PostgreSQL (SPEC §14 "PostgreSQL at scale"): partitions ahead,
reads in their month, dedupe across months, retention dropping whole months, erase across months."""

from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import func, select, text, update

from lprserver import partitions
from lprserver.extensions import db
from lprserver.image_store import ensure_thumbnail
from lprserver.images import FilesystemImageStore
from lprserver.ingest import pipeline
from lprserver.ingest.pipeline import IngestSettings, ingest_read
from lprserver.models import Record, RecordKey, utcnow
from lprserver.privacy import erase_plate
from lprserver.retention import cleanup

from .imagegen import data_uri, make_jpeg


@pytest.fixture
def pg(app, db_kind):
    if db_kind != "postgresql":
        pytest.skip("needs --db postgresql")
    this = partitions.Month.of(utcnow())
    partitions.ensure_months(db.session, this.next(-7), this.next(partitions.AHEAD_MONTHS))
    db.session.commit()
    yield this
    db.session.rollback()
    for name in partitions.attached(db.session) + partitions.detached(db.session):
        month = partitions.Month.from_name(name)
        if month and (month.year, month.month) < (this.year, this.month):
            db.session.execute(text(f"DROP TABLE {name}"))
    db.session.commit()


def _store() -> FilesystemImageStore:
    return FilesystemImageStore(current_app.config["IMAGE_STORAGE_PATH"])


def _ingest(monkeypatch, at, plate="กข1234", event_id=None):
    """A read stored as if it arrived at `at`."""
    monkeypatch.setattr(pipeline, "utcnow", lambda: at)
    settings = IngestSettings.from_config(current_app.config)
    payload = {"camera_id": "CAM001", "plate_number": plate, "confidence": 90,
               "image_data": data_uri(make_jpeg(64, 48))}
    if event_id:
        payload["event_id"] = event_id
    result = ingest_read(db.session, _store(), settings, payload)
    monkeypatch.undo()
    return result


def _partition_of(record_id: int) -> str:
    return db.session.scalar(text("SELECT tableoid::regclass::text FROM lpr_records WHERE id = :i"),
                             {"i": record_id})


def test_partitions_exist_two_months_ahead_and_a_read_lands_in_its_month(pg, monkeypatch):
    names = set(partitions.attached(db.session))
    assert {pg.name, pg.next(1).name, pg.next(2).name, partitions.DEFAULT} <= names
    for back in (0, 1, 3):
        month = pg.next(-back)
        result = _ingest(monkeypatch, month.start + timedelta(hours=5))
        assert _partition_of(result.record_id) == month.name


def test_a_read_of_a_month_without_partition_goes_to_default_and_moves_when_it_is_made(pg, monkeypatch):
    later = pg.next(5)
    result = _ingest(monkeypatch, later.start + timedelta(days=2))
    assert _partition_of(result.record_id) == partitions.DEFAULT
    made = partitions.ensure_partitions(db.session, later.start)
    db.session.commit()
    assert later.name in made
    assert _partition_of(result.record_id) == later.name
    db.session.execute(text(f"DELETE FROM lpr_record_keys WHERE record_id = {result.record_id}"))
    db.session.execute(text(f"DELETE FROM lpr_records WHERE id = {result.record_id}"))
    for month in (later.next(-2), later.next(-1), later, later.next(1), later.next(2)):
        if month.name in made:
            db.session.execute(text(f"DROP TABLE {month.name}"))
    db.session.commit()


def test_a_read_resent_a_month_later_is_still_a_duplicate(pg, monkeypatch):
    first = _ingest(monkeypatch, pg.next(-2).start + timedelta(days=3), event_id="resent-1")
    again = _ingest(monkeypatch, utcnow(), event_id="resent-1")
    assert not first.duplicate and again.duplicate and again.record_id == first.record_id
    assert db.session.scalar(select(func.count()).select_from(Record)) == 1


def test_retention_drops_a_month_past_retention_and_keeps_one_with_a_kept_hit(pg, monkeypatch):
    old, with_hit, recent = pg.next(-6), pg.next(-5), pg.next(-1)
    gone = [_ingest(monkeypatch, old.start + timedelta(days=d), event_id=f"old-{d}") for d in (1, 2)]
    hit = _ingest(monkeypatch, with_hit.start + timedelta(days=1), plate="HIT1")
    plain = _ingest(monkeypatch, with_hit.start + timedelta(days=2), plate="PLAIN1")
    kept = _ingest(monkeypatch, recent.start + timedelta(days=1))
    db.session.execute(update(Record).where(Record.id == hit.record_id).values(blacklisted=True))
    db.session.commit()
    files = []
    for rec in gone:
        image, thumbnail = db.session.execute(
            select(Record.image_path, Record.thumbnail_path).where(Record.id == rec.record_id)).one()
        ensure_thumbnail(_store(), image, thumbnail)  # as after its first view
        files += [_store().path(image), _store().path(thumbnail)]
    assert all(f.exists() for f in files)
    read_days = (utcnow() - pg.next(-4).start).days  # cutoff on or after the start of month -4
    report = cleanup(db.session, _store(), read_days, 0, 100, hit_days=3650)
    assert report.partitions_dropped == 2  # the month's and the empty one before it
    names = set(partitions.attached(db.session))
    assert old.name not in names and old.name not in partitions.detached(db.session)
    assert with_hit.name in names
    assert not any(f.exists() for f in files)
    ids = set(db.session.scalars(select(Record.id)))
    assert hit.record_id in ids and kept.record_id in ids and plain.record_id not in ids
    assert not db.session.scalar(select(func.count()).select_from(RecordKey)
                                 .where(RecordKey.record_id.in_([r.record_id for r in gone])))
    assert report.records == 3  # two in the dropped month, one by the row batches


def test_erase_removes_a_plate_in_several_months(pg, monkeypatch):
    for back in (0, 2, 4):
        _ingest(monkeypatch, pg.next(-back).start + timedelta(days=1), plate="กข9999", event_id=f"e{back}")
    result = erase_plate(db.session, _store(), "กข9999", reason="PDPA request", user=None, timezone="UTC")
    db.session.commit()
    assert result["records"] == 3
    assert db.session.scalar(select(func.count()).select_from(Record)) == 0
    assert db.session.scalar(select(func.count()).select_from(RecordKey)) == 0
