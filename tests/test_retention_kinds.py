"""Retention by kind (SPEC §15): reads, blacklist hits, images and the audit log each go at their own
time, rows and files together; the retention page says beforehand what the next run deletes."""

import os
from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import func, select, update

from lprserver.audit import audit
from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.image_store import ensure_thumbnail
from lprserver.images import FilesystemImageStore
from lprserver.ingest.pipeline import IngestSettings, ingest_read
from lprserver.models import Alert, AuditEntry, BlacklistDetection, Record, Visit, utcnow
from lprserver.retention import RetentionSettings, cleanup, preview, run

from .conftest import bearer
from .imagegen import data_uri, make_jpeg
from .webserver import PageClient

JPEG = make_jpeg(64, 48)


def _store() -> FilesystemImageStore:
    return FilesystemImageStore(current_app.config["IMAGE_STORAGE_PATH"])


def _ingest(plate: str, age_days: float) -> int:
    settings = IngestSettings.from_config(current_app.config)
    payload = {"camera_id": "CAM001", "plate_number": plate, "confidence": 95, "image_data": data_uri(JPEG)}
    result = ingest_read(db.session, _store(), settings, payload)
    db.session.execute(update(Record).where(Record.id == result.record_id)
                       .values(received_at=utcnow() - timedelta(days=age_days)))
    db.session.commit()
    record = db.session.get(Record, result.record_id)
    ensure_thumbnail(_store(), record.image_path, record.thumbnail_path)  # as after its first view
    return result.record_id


def _files_of(record_id: int) -> list:
    record = db.session.get(Record, record_id)
    return [_store().path(record.image_path), _store().path(record.thumbnail_path)]


def _walk_images() -> set[str]:
    root = _store().root
    return {os.path.relpath(os.path.join(folder, name), root)
            for folder, _dirs, names in os.walk(root) for name in names}


def _assert_rows_and_files_agree() -> None:
    """Every file has a row and every row's path exists: no orphan either way."""
    db.session.expire_all()
    referenced = {path for row in db.session.execute(select(Record.image_path, Record.thumbnail_path))
                  for path in row if path}
    on_disk = _walk_images()
    assert referenced == on_disk


@pytest.fixture
def mixed(app):
    """Reads of several ages: plain ones, blacklist hits (one hit only through its detection), and
    audit entries, with an alert and a visit hanging on an old read."""
    add_entry(db.session, "HIT1", "stolen", "stolen", "tests", None)
    db.session.commit()
    made = {
        "new": [_ingest(f"NEW{i}", 1) for i in range(3)],  # kept whole
        "mid": [_ingest(f"MID{i}", 15) for i in range(4)],  # image cleared (IMAGE 10), row kept
        "old": [_ingest(f"OLD{i}", 40) for i in range(5)],  # deleted (RETENTION 30)
        "hit_old": [_ingest("HIT1", 70)],  # deleted (HIT 60), with its alert (the later hits repeat it)
        "hit_mid": [_ingest("HIT1", 40)],  # kept whole (HIT 60), image too
    }
    # A read that hit before a correction took the flag away is still a hit.
    unflagged = _ingest("HIT1", 45)
    db.session.execute(update(Record).where(Record.id == unflagged).values(blacklisted=False))
    made["hit_mid"].append(unflagged)
    old_read = made["old"][0]
    db.session.add(Visit(plate_normalized="OLD0", entered_at=utcnow() - timedelta(days=40),
                         entry_record_id=old_read))
    db.session.add(Visit(plate_normalized="NEW0", entered_at=utcnow() - timedelta(days=1),
                         entry_record_id=made["new"][0]))
    for age in (400, 380, 10):
        entry = audit(db.session, "records.search", username="tests", detail={"age": age})
        db.session.flush()
        entry.at = utcnow() - timedelta(days=age)
    db.session.commit()
    return made


SETTINGS = RetentionSettings(read_days=30, image_days=10, hit_days=60, audit_days=365, batch_size=2)


def test_each_kind_goes_at_its_own_time_with_its_files(mixed, client, api_token):
    files = {kind: [f for rid in ids for f in _files_of(rid)] for kind, ids in mixed.items()}
    hits_before = db.session.scalar(select(func.count()).select_from(BlacklistDetection))
    assert hits_before == 3
    assert db.session.scalar(select(func.count()).select_from(Alert).where(
        Alert.record_id.in_(mixed["hit_old"]))) == 1

    coming = preview(db.session, SETTINGS)
    assert (coming.reads, coming.hits, coming.images, coming.audit) == (5, 1, 4, 2)

    report = run(db.session, _store(), SETTINGS)

    # The preview said what the run then did.
    assert report.records == coming.reads + coming.hits == 6
    assert report.hit_records == coming.hits == 1
    assert report.images_cleared == coming.images == 4
    assert report.audit_deleted == coming.audit == 2
    assert report.files == 2 * 6 + 2 * 4 and report.orphan_files == 0 and report.missing_files == 0

    kept = set(db.session.scalars(select(Record.id)))
    assert kept == set(mixed["new"] + mixed["mid"] + mixed["hit_mid"])
    assert all(f.exists() for kind in ("new", "hit_mid") for f in files[kind])
    assert not any(f.exists() for kind in ("mid", "old", "hit_old") for f in files[kind])
    # Child rows: the deleted hit's detection and alert went; the old read's visit went with its read.
    assert db.session.scalar(select(func.count()).select_from(BlacklistDetection)) == 2
    assert db.session.scalar(select(func.count()).select_from(Alert).where(
        Alert.record_id.in_(mixed["hit_old"]))) == 0
    assert report.visits_deleted == 1
    assert [v.plate_normalized for v in db.session.scalars(select(Visit))] == ["NEW0"]
    assert sorted(e.detail["age"] for e in db.session.scalars(select(AuditEntry))) == [10]

    # A read without its image: the row is there, its image and thumbnail answer 404.
    mid = db.session.get(Record, mixed["mid"][0])
    assert (mid.image_path, mid.thumbnail_path, mid.image_bytes) == (None, None, None)
    assert client.get(f"/api/records/{mid.id}", headers=bearer(api_token)).status_code == 200
    for part in ("image", "thumbnail"):
        answer = client.get(f"/api/records/{mid.id}/{part}", headers=bearer(api_token))
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"
    _assert_rows_and_files_agree()

    # A second run finds nothing left to do.
    again = preview(db.session, SETTINGS)
    assert (again.reads, again.hits, again.images, again.audit) == (0, 0, 0, 0)
    assert run(db.session, _store(), SETTINGS).files == 0


def test_hits_may_go_sooner_than_reads_and_defaults_follow_retention_days(mixed):
    # HIT 20 < RETENTION 30: all three hits go, the 15-day-old reads stay with their images.
    settings = RetentionSettings(read_days=30, hit_days=20, audit_days=0, batch_size=3)
    assert settings.cutoffs(utcnow()).images is None and settings.cutoffs(utcnow()).audit is None
    report = run(db.session, _store(), settings)
    assert (report.records, report.hit_records, report.images_cleared, report.audit_deleted) == (8, 3, 0, 0)
    assert set(db.session.scalars(select(Record.id))) == set(mixed["new"] + mixed["mid"])
    _assert_rows_and_files_agree()
    # cleanup()'s old arguments: image and hit periods unset follow retention_days.
    assert cleanup(db.session, _store(), 10, 0, 100).records == 4


def test_settings_default_to_retention_days_and_refuse_negatives():
    from config import TestingConfig

    config = TestingConfig({"RETENTION_DAYS": "90", "SECRET_KEY": "x" * 40})
    assert (config.IMAGE_RETENTION_DAYS, config.HIT_RETENTION_DAYS, config.AUDIT_RETENTION_DAYS) == (90, 90, 365)
    config = TestingConfig({"RETENTION_DAYS": "90", "IMAGE_RETENTION_DAYS": "7", "HIT_RETENTION_DAYS": "0",
                            "AUDIT_RETENTION_DAYS": "0"})
    cut = RetentionSettings(read_days=90, image_days=7, hit_days=0).cutoffs(utcnow())
    assert (config.IMAGE_RETENTION_DAYS, config.HIT_RETENTION_DAYS, config.AUDIT_RETENTION_DAYS) == (7, 0, 0)
    assert cut.hits is None and cut.images is not None and cut.reads is not None
    for name in ("IMAGE_RETENTION_DAYS", "HIT_RETENTION_DAYS", "AUDIT_RETENTION_DAYS"):
        with pytest.raises(ValueError, match=name):
            TestingConfig({name: "-1"})
        with pytest.raises(ValueError, match=name):
            TestingConfig({name: "soon"})


def test_the_cleanup_command_applies_the_settings_and_the_page_shows_the_last_run(mixed, users, make_token):
    app = current_app._get_current_object()
    app.config.update(RETENTION_DAYS=30, IMAGE_RETENTION_DAYS=10, HIT_RETENTION_DAYS=60,
                      AUDIT_RETENTION_DAYS=365)
    admin = PageClient(app)
    assert admin.login("admin").status_code == 302
    page = admin.get("/retention")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for kind, count in (("reads", 5), ("hits", 1), ("images", 4), ("audit", 2)):
        assert f'data-kind="{kind}"' in html
        row = html.split(f'data-kind="{kind}"')[1].split("</tr>")[0]
        assert f'<td class="text-end count">{count}</td>' in row, row
    assert "No cleanup has run yet" in html

    runner = app.test_cli_runner()
    dry = runner.invoke(args=["lpr", "cleanup", "--dry-run"])
    assert dry.exit_code == 0 and "reads=5 hits=1 images=4 audit=2" in dry.output, dry.output
    assert db.session.scalar(select(func.count()).select_from(Record)) == 15
    done = runner.invoke(args=["lpr", "cleanup"])
    assert done.exit_code == 0, done.output
    assert "records_deleted=6" in done.output and "images_cleared=4" in done.output
    assert "audit_deleted=2" in done.output
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.cleanup"))
    assert entry.detail["records"] == 6 and entry.detail["settings"]["hit_days"] == 60
    html = admin.get("/retention").get_data(as_text=True)
    assert 'id="retention-last"' in html and "No cleanup has run yet" not in html
    _assert_rows_and_files_agree()

    # In Thai too.
    thai = admin.get("/retention", headers={"Accept-Language": "th"})
    assert thai.status_code == 200


def test_only_admins_open_the_retention_page(app, users, make_token):
    stranger = PageClient(app)
    answer = stranger.get("/retention")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    for role, status in (("viewer", 403), ("operator", 403), ("admin", 200)):
        browser = PageClient(app)
        assert browser.login(role).status_code == 302
        assert browser.get("/retention").status_code == status, role
    # An API token opens no HTML page, an admin's read-only one neither.
    token = make_token("admin", "read")
    answer = PageClient(app).get("/retention", headers=bearer(token))
    assert answer.status_code in (302, 401) and answer.status_code != 200
