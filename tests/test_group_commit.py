"""Group commit: many reads stored in one transaction, each still answered on its own."""

import dataclasses
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, func, select

from lprserver.blacklist import add_entry
from lprserver.cameras import create_camera
from lprserver.extensions import db
from lprserver.images import FilesystemImageStore
from lprserver.ingest.errors import IngestError
from lprserver.ingest.pipeline import (
    IngestSettings,
    ReadResult,
    ingest_read,
    ingest_reads,
    prepare_read,
)
from lprserver.models import BlacklistDetection, Camera, Record, RecordKey, Webhook, WebhookDelivery, utcnow

from .imagegen import data_uri, make_jpeg


def _settings(auth: str = "open") -> IngestSettings:
    return dataclasses.replace(IngestSettings.from_config(current_app.config), auth=auth)


def _store() -> FilesystemImageStore:
    return FilesystemImageStore(current_app.config["IMAGE_STORAGE_PATH"])


def _read(settings: IngestSettings, token: str | None = None, **fields):
    payload = {"camera_id": "CAM001", "plate_number": "กข1234", "confidence": 0.9,
               "image_data": data_uri(make_jpeg(64, 48)), **fields}
    return prepare_read(payload, token)


def _image_files() -> list[Path]:
    root = Path(current_app.config["IMAGE_STORAGE_PATH"])
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_batch_answers_each_read_on_its_own(app):
    camera, token = create_camera(db.session, "CAM001", name="Front gate")
    create_camera(db.session, "CAM002")
    add_entry(db.session, "HIT9", "stolen", "stolen", "tests", None)
    db.session.commit()
    settings = _settings("token")
    earlier = ingest_read(db.session, _store(), settings,
                          {"camera_id": "CAM001", "plate_number": "OLD1", "event_id": "e-old"}, token)

    reads = [
        _read(settings, token, event_id="e1"),
        _read(settings, "wrong-token", event_id="e2"),                       # refused alone
        _read(settings, token, event_id="e-old", plate_number="OLD1"),       # stored before
        _read(settings, token, event_id="e3", plate_number="HIT9"),          # blacklisted
        _read(settings, token, event_id="e1"),                               # e1 again, same batch
        _read(settings, token),                                              # no event_id
    ]
    outcomes = ingest_reads(db.session, _store(), settings, reads)

    first, refused, repeat, hit, again, plain = outcomes
    assert isinstance(refused, IngestError) and refused.code == "unauthorized"
    assert isinstance(first, ReadResult) and not first.duplicate and first.live["camera_name"] == "Front gate"
    assert (repeat.record_id, repeat.duplicate) == (earlier.record_id, True)
    assert hit.blacklisted and len(hit.alerts) == 1 and hit.alerts[0]["entry"]["license_plate_text"] == "HIT9"
    assert (again.record_id, again.duplicate) == (first.record_id, True)
    assert not plain.duplicate and plain.record_id not in (first.record_id, hit.record_id)
    db.session.remove()
    rows = db.session.execute(select(Record.id, Record.event_id, Record.image_path)).all()
    assert sorted(r.event_id or "" for r in rows) == ["", "e-old", "e1", "e3"]
    assert db.session.scalar(select(func.count()).select_from(BlacklistDetection)) == 1
    # Three images were stored (e1, e3, the plain one), and nothing else (thumbnails: on first view).
    assert {str(p.relative_to(current_app.config["IMAGE_STORAGE_PATH"])) for p in _image_files()} == {
        r.image_path for r in rows if r.image_path}
    assert len(_image_files()) == 3


def test_open_mode_creates_the_batch_s_new_cameras_once(app):
    settings = _settings("open")
    reads = [_read(settings, camera_id=f"NEW{i % 3}", event_id=f"n{i}") for i in range(9)]
    outcomes = ingest_reads(db.session, _store(), settings, reads)
    assert all(isinstance(o, ReadResult) and not o.duplicate for o in outcomes)
    db.session.remove()
    assert sorted(db.session.scalars(select(Camera.id))) == ["NEW0", "NEW1", "NEW2"]
    assert db.session.scalar(select(func.count()).select_from(Record)) == 9


def test_a_failed_commit_leaves_no_files_and_answers_unavailable(app, monkeypatch):
    settings = _settings("open")
    reads = [_read(settings, event_id=f"f{i}") for i in range(4)]

    def refuse(*args, **kwargs):
        from sqlalchemy.exc import OperationalError

        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(db.session, "commit", refuse)
    outcomes = ingest_reads(db.session, _store(), settings, reads)
    monkeypatch.undo()
    assert [o.code for o in outcomes] == ["unavailable"] * 4
    assert _image_files() == []
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(Record)) == 0


def test_when_the_database_fails_before_the_insert_no_image_is_left(app, monkeypatch):
    # If the lookup of the batch's cameras and repeats fails, the batch is answered
    # `unavailable` and nothing of it is on disk.
    from sqlalchemy.exc import OperationalError

    from lprserver.ingest import pipeline

    def refuse(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(pipeline, "_earlier_reads", refuse)
    settings = _settings("open")
    outcomes = ingest_reads(db.session, _store(), settings, [_read(settings, event_id=f"q{i}") for i in range(3)])
    assert [o.code for o in outcomes] == ["unavailable"] * 3
    assert _image_files() == []


def test_one_image_that_cannot_be_written_refuses_only_its_read(app):
    settings = _settings("open")
    root = Path(current_app.config["IMAGE_STORAGE_PATH"])
    reads = [_read(settings, camera_id="GOOD", event_id="g"), _read(settings, camera_id="BLOCKED", event_id="b")]
    # A file where the camera's folder would go: that camera's image cannot be written.
    day = utcnow().strftime("%Y/%m/%d")
    (root / day).mkdir(parents=True, exist_ok=True)
    (root / day / "BLOCKED").write_text("not a folder")
    good, blocked = ingest_reads(db.session, _store(), settings, reads)
    assert isinstance(good, ReadResult)
    assert isinstance(blocked, IngestError) and blocked.code == "unavailable"
    db.session.remove()
    assert list(db.session.scalars(select(Record.camera_id))) == ["GOOD"]
    assert not [p for p in root.rglob("*.tmp")]


def test_an_invalid_image_refuses_only_its_read_and_a_repeat_is_not_decoded_again(app):
    settings = _settings("open")
    jpeg = make_jpeg(64, 48)
    stored = ingest_read(db.session, _store(), settings,
                         {"camera_id": "CAM001", "plate_number": "OLD1", "event_id": "e-old"})
    reads = [
        _read(settings, event_id="ok1"),
        _read(settings, event_id="cut", image_data=data_uri(jpeg[: len(jpeg) // 2])),   # truncated
        _read(settings, event_id="b64", image_data="not base64!!"),
        # A resend of a stored read is answered from the database; its image is not looked at.
        _read(settings, event_id="e-old", plate_number="OLD1", image_data="not base64!!"),
        _read(settings, event_id="ok2"),
    ]
    ok1, cut, bad64, repeat, ok2 = ingest_reads(db.session, _store(), settings, reads)
    assert isinstance(ok1, ReadResult) and isinstance(ok2, ReadResult)
    assert (cut.code, cut.field) == ("invalid_image", "image_data") and "complete JPEG" in cut.message
    assert (bad64.code, bad64.field) == ("invalid_image", "image_data") and "base64" in bad64.message
    assert (repeat.record_id, repeat.duplicate) == (stored.record_id, True)
    db.session.remove()
    assert sorted(db.session.scalars(select(Record.event_id))) == ["e-old", "ok1", "ok2"]
    assert len(_image_files()) == 2  # ok1's and ok2's; nothing of the refused ones


def test_webhook_events_of_a_batch_are_queued_with_it(app):
    db.session.add(Webhook(url="http://127.0.0.1:9/hook", secret="whsec_x", events=["record.created"],
                           active=True))
    db.session.commit()
    settings = _settings("open")
    ingest_reads(db.session, _store(), settings, [_read(settings, event_id=f"w{i}") for i in range(5)])
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 5


def test_a_read_deleted_by_hand_in_sql_can_be_sent_again(app, caplog):
    """Its dedupe key (lpr_record_keys) stays behind when an admin deletes the row in SQL: the resend finds
    no read for it, drops the key and is stored as new, instead of being refused for ever."""
    settings = _settings("open")
    first = ingest_reads(db.session, _store(), settings, [_read(settings, event_id="gone-1")])[0]
    db.session.execute(delete(Record).where(Record.id == first.record_id))
    db.session.commit()
    caplog.set_level("WARNING", logger="lprserver.ingest")
    again = ingest_reads(db.session, _store(), settings, [_read(settings, event_id="gone-1")])[0]
    assert isinstance(again, ReadResult) and not again.duplicate  # (SQLite may give it the same id again)
    assert "event=dangling_key_dropped" in caplog.text
    repeat = ingest_reads(db.session, _store(), settings, [_read(settings, event_id="gone-1")])[0]
    assert (repeat.record_id, repeat.duplicate) == (again.record_id, True)
    assert db.session.scalar(select(func.count()).select_from(RecordKey)) == 1
