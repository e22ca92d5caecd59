"""The vehicles core (SPEC §10): the known list in memory, and what the pipeline does with a read at a
gate, in its transaction — the visit, the review flag, the alerts."""

import dataclasses
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.images import FilesystemImageStore
from lprserver.ingest import pipeline
from lprserver.ingest.pipeline import IngestSettings, ReadResult, ingest_reads, prepare_read
from lprserver.known import KnownCache, KnownEntry, KnownList
from lprserver.models import Alert, Camera, KnownGroup, KnownPlate, Record, Visit, utcnow
from lprserver.visits import visit_kind

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def known(entry_id: int, plate: str, group: str, province: str | None = None,
          valid_from: datetime | None = None, valid_until: datetime | None = None) -> KnownEntry:
    return KnownEntry(entry_id, plate, plate, province, f"owner {entry_id}", group, valid_from, valid_until)


def test_a_known_list_names_current_plates_of_their_province_and_group():
    listed = KnownList([
        known(1, "กข1234", "residents", "TH-10"),
        known(2, "กข1234", "staff"),
        known(3, "ABC1", "staff", valid_from=NOW + timedelta(days=1)),
        known(4, "ABC2", "staff", valid_until=NOW),
    ], {"residents": None, "staff": 120})
    assert [e.id for e in listed.lookup("กข1234", "TH-10", NOW)] == [1, 2]
    assert [e.id for e in listed.lookup("กข1234", "TH-50", NOW)] == [2]  # another province: only 2
    assert [e.id for e in listed.lookup("กข1234", None, NOW)] == [1, 2]  # province unknown: both
    assert listed.lookup("ABC1", None, NOW) == []  # not valid yet
    assert listed.lookup("ABC2", None, NOW) == []  # valid_until is exclusive
    assert listed.in_group("กข1234", "TH-50", "residents", NOW) is None
    assert listed.in_group("กข1234", "TH-10", "residents", NOW).id == 1
    assert listed.stay_group("กข1234", "TH-10", NOW) == "staff"  # the group with a max stay
    assert listed.first("กข1234", "TH-10", NOW).shown() == {"id": 1, "name": "owner 1", "group": "residents"}


def _add_known(plate: str, group: str, **fields) -> KnownPlate:
    if db.session.get(KnownGroup, group) is None:
        db.session.add(KnownGroup(name=group))
    row = KnownPlate(plate=plate, plate_normalized=plate, group_name=group, **fields)
    db.session.add(row)
    db.session.commit()
    return row


def test_the_known_cache_sees_additions_edits_and_deletions_at_the_next_batch(app):
    clock = [0.0]
    cache = KnownCache(clock=lambda: clock[0])
    assert cache.current(db.session).lookup("กข1234", None, utcnow()) == []
    row = _add_known("กข1234", "residents", name="Somchai")
    assert cache.current(db.session).first("กข1234", None, utcnow()).name == "Somchai"
    row.name = "Somsak"
    db.session.commit()
    assert cache.current(db.session).first("กข1234", None, utcnow()).name == "Somsak"
    db.session.delete(row)
    db.session.commit()
    assert cache.current(db.session).lookup("กข1234", None, utcnow()) == []


def test_a_camera_s_role_decides_and_a_pass_camera_takes_the_read_s_direction():
    def camera(role):
        return Camera(id="C", role=role)
    assert visit_kind(camera("entry"), "out") == "in"
    assert visit_kind(camera("exit"), None) == "out"
    assert visit_kind(camera("pass"), "IN") == "in"
    assert visit_kind(camera("pass"), " Out ") == "out"
    assert visit_kind(camera("pass"), "north") is None
    assert visit_kind(camera("pass"), None) is None


def _settings() -> IngestSettings:
    return dataclasses.replace(IngestSettings.from_config(current_app.config), auth="open")


def _ingest(*payloads) -> list:
    store = FilesystemImageStore(current_app.config["IMAGE_STORAGE_PATH"])
    return ingest_reads(db.session, store, _settings(), [prepare_read(p) for p in payloads])


def _gates() -> None:
    db.session.add_all([Camera(id="GATE-IN", role="entry", created_at=utcnow()),
                        Camera(id="GATE-OUT", role="exit", created_at=utcnow()),
                        Camera(id="YARD", created_at=utcnow())])
    db.session.commit()


def test_a_batch_opens_keeps_and_closes_visits_in_order(app):
    _gates()
    outcomes = _ingest(
        {"camera_id": "GATE-IN", "plate_number": "กข1234"},
        {"camera_id": "GATE-IN", "plate_number": "กข 1234"},   # on site already: the visit stays open
        {"camera_id": "YARD", "plate_number": "กข1234"},       # a pass camera, no direction: nothing
        {"camera_id": "GATE-OUT", "plate_number": "กข1234"},   # closes it
        {"camera_id": "GATE-OUT", "plate_number": "ขค5678"},   # an exit with no entry: kept so
        {"camera_id": "YARD", "plate_number": "จฉ9", "direction": "in"},
    )
    assert all(isinstance(o, ReadResult) for o in outcomes)
    visits = db.session.scalars(select(Visit).order_by(Visit.id)).all()
    shown = [(v.plate_normalized, v.entry_camera_id, v.exit_camera_id, v.entered_at is not None,
              v.exited_at is not None) for v in visits]
    assert shown == [("กข1234", "GATE-IN", "GATE-OUT", True, True),
                     ("ขค5678", None, "GATE-OUT", False, True),
                     ("จฉ9", "YARD", None, True, False)]
    assert visits[0].entry_record_id == outcomes[0].record_id and visits[0].exit_record_id == outcomes[3].record_id


def test_a_race_for_one_plate_s_visit_stores_the_losing_read_again(app, monkeypatch):
    """Two store workers may both see no open visit of a plate: the second insert breaks the one-open-visit
    index, and its read is stored once more, finding the visit the other opened."""
    _gates()
    _ingest({"camera_id": "GATE-IN", "plate_number": "กข1234"})
    real = pipeline.apply_visits
    calls = []

    def blind_once(session, reads, now):  # the first attempt misses the open visit, as a racing worker would
        calls.append(len(reads))
        if len(calls) == 1:
            for read in reads:
                session.add(Visit(plate_normalized=read.plate, entered_at=now, entry_camera_id=read.camera_id,
                                  entry_record_id=read.record_id))
            return []
        return real(session, reads, now)

    monkeypatch.setattr(pipeline, "apply_visits", blind_once)
    [outcome] = _ingest({"camera_id": "GATE-IN", "plate_number": "กข1234", "event_id": "again"})
    assert isinstance(outcome, ReadResult) and not outcome.duplicate and len(calls) == 2
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 1
    assert db.session.scalar(select(func.count()).select_from(Record)) == 2


def test_low_confidence_reads_and_lookalike_hits_wait_for_review(app):
    add_entry(db.session, "กข1234", "stolen", "stolen", "tests", None, match="lookalike")
    db.session.commit()
    outcomes = _ingest(
        {"camera_id": "YARD", "plate_number": "AB1", "confidence": 0.5},
        {"camera_id": "YARD", "plate_number": "AB2", "confidence": 0.95},
        {"camera_id": "YARD", "plate_number": "AB3"},              # no confidence: nothing to doubt
        {"camera_id": "YARD", "plate_number": "กช1234", "confidence": 0.99},  # a look-alike hit
        {"camera_id": "YARD", "plate_number": "กข1234", "confidence": 0.99},  # the plate itself: exact
    )
    states = [db.session.get(Record, o.record_id).review_state for o in outcomes]
    assert states == ["pending", None, None, "pending", None]
    assert outcomes[3].alerts[0]["alert_id"] and outcomes[3].live["review_state"] == "pending"
    alerts = db.session.scalars(select(Alert).order_by(Alert.id)).all()
    assert [(a.trigger, a.record_id, a.detail["match_type"]) for a in alerts] == [
        ("blacklist", outcomes[3].record_id, "lookalike"), ("blacklist", outcomes[4].record_id, "exact")]


def test_a_gate_with_an_allow_group_alerts_on_plates_not_in_it(app):
    _gates()
    db.session.get(Camera, "GATE-IN").allow_group = "residents"
    db.session.commit()
    _add_known("กข1234", "residents", name="Somchai")
    _add_known("ขค5678", "staff")
    _add_known("จฉ9", "residents", valid_until=utcnow() - timedelta(days=1))
    resident, staff, expired = _ingest({"camera_id": "GATE-IN", "plate_number": "กข1234"},
                                       {"camera_id": "GATE-IN", "plate_number": "ขค5678"},
                                       {"camera_id": "GATE-IN", "plate_number": "จฉ9"})
    assert resident.other_alerts == [] and resident.live["known"]["name"] == "Somchai"
    assert staff.live["known"]["group"] == "staff" and expired.live["known"] is None
    for outcome in (staff, expired):
        [event] = outcome.other_alerts
        assert (event["trigger"], event["detail"], event["record"]["id"]) == (
            "not_on_list", {"group": "residents"}, outcome.record_id)
    rows = db.session.scalars(select(Alert).order_by(Alert.id)).all()
    assert [(a.trigger, a.plate, a.camera_id) for a in rows] == [
        ("not_on_list", "ขค5678", "GATE-IN"), ("not_on_list", "จฉ9", "GATE-IN")]
