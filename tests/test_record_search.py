"""Searching many records: keyset pages, totals that say when they are capped or estimated, Thai
"contains" on both databases."""

from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import text

from lprserver import records as records_module
from lprserver.api import records as api_records
from lprserver.extensions import db
from lprserver.models import Camera, Record, utcnow
from lprserver.plates import normalize_plate
from lprserver.records import RecordFilter, Total, count_records, page_records, total_reads
from lprserver.statistics import reads_per_camera, reads_per_hour
from lprserver.web import records as web_records

from .conftest import bearer
from .test_web_pages import signed_in

THAI = ("กข1234", "1กข1299", "ขข5120", "กค9912", "ABC1234", "ขก3456")


def add_reads(plates, camera="CAM001"):
    if db.session.get(Camera, camera) is None:
        db.session.add(Camera(id=camera))
        db.session.flush()
    now = utcnow()
    for n, plate in enumerate(plates):
        at = now - timedelta(seconds=len(plates) - n)
        db.session.add(Record(camera_id=camera, plate_number=plate, plate_normalized=normalize_plate(plate),
                              captured_at=at, received_at=at))
    db.session.commit()


def search(plate, mode="contains"):
    f = RecordFilter.from_args({"plate": plate, "plate_mode": mode}, "Asia/Bangkok")
    return sorted(r.plate_number for r in page_records(db.session, f).records)


def analyze():
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("ANALYZE lpr_records"))
        db.session.commit()


# --- Thai "contains" ---------------------------------------------------------------------------

def test_thai_contains_search_finds_the_letters_and_digits_anywhere(app):
    add_reads(THAI)
    assert search("ข12") == ["1กข1299", "กข1234"]
    assert search("ข5") == ["ขข5120"]
    assert search("ก") == ["1กข1299", "กข1234", "กค9912", "ขก3456"]
    assert search("9912") == ["กค9912"]
    assert search("ขก34") == ["ขก3456"]
    assert search("ข 12") == ["1กข1299", "กข1234"]  # normalised like the plates are


def test_thai_contains_search_uses_the_trigram_index_on_postgresql(app, db_kind):
    if db_kind != "postgresql":
        pytest.skip("the trigram index exists on PostgreSQL only")
    add_reads(THAI)
    # pg_trgm keeps Thai letters only where the database's LC_CTYPE calls them letters (C.UTF-8 does,
    # plain C does not): without them a Thai search would read far more of the index.
    trigrams = db.session.scalar(text("SELECT array_length(show_trgm('กข1234'), 1)"))
    assert trigrams == 7  # "  ก", " กข", "กข1", "ข12", "123", "234", "34 "
    # Whether the index can serve the search, not which plan the planner prefers for these few rows
    # (with stale statistics it once walked the primary key instead): no sequential or plain index scan,
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    db.session.execute(text("SET LOCAL enable_indexscan = off"))
    # and no index-only scan: ix_lpr_records_plate_id holds (plate, id) and could be walked whole.
    db.session.execute(text("SET LOCAL enable_indexonlyscan = off"))
    plan = "\n".join(db.session.scalars(text(
        "EXPLAIN SELECT id FROM lpr_records WHERE plate_normalized LIKE '%ข12%' ORDER BY id DESC LIMIT 51")))
    db.session.rollback()
    assert "ix_lpr_records_plate_trgm" in plan


# --- a time range that ended long ago ----------------------------------------------------------

def test_a_range_that_ended_long_ago_is_read_range_first_and_pages_the_same(app, client, api_token,
                                                                             monkeypatch):
    """When walking the ids down would pass many more rows than the range holds, the first page reads the
    range and sorts it: the same records, in the same order, on the page, the API and the export."""
    add_reads([f"OLD{n}" for n in range(30)])
    received = list(db.session.scalars(db.select(Record.received_at).order_by(Record.id)))

    def between(start, end=None):
        args = {"since": received[start].isoformat()} if start is not None else {}
        return RecordFilter.from_args(dict(args, until=received[end].isoformat()), "Asia/Bangkok")

    f = between(10, 15)  # OLD10..OLD14, 15 rows after it
    expected = [f"OLD{n}" for n in range(14, 9, -1)]
    assert not records_module.range_first(db.session, f)  # 15 newer rows: walking them is cheap
    walked = page_records(db.session, f, per_page=3)
    monkeypatch.setattr(records_module, "WALK_ALWAYS_BELOW", 2)
    monkeypatch.setattr(records_module, "WALK_FASTER", 2)
    assert records_module.range_first(db.session, f)  # 15 newer > 2 × 5 inside
    assert not records_module.range_first(db.session, between(5, 15))  # 15 newer, not over 2 × 10 inside
    assert not records_module.range_first(db.session, between(20, 24))  # 6 newer, not over 2 × 4 inside
    assert not records_module.range_first(db.session, between(None, 29))  # 1 newer: walk
    assert records_module.range_first(db.session, between(12, 15))
    first = page_records(db.session, f, per_page=3)
    assert [r.plate_number for r in first.records] == [r.plate_number for r in walked.records] == expected[:3]
    assert first.older == walked.older
    rest = page_records(db.session, f, per_page=3, before=first.older)
    assert [r.plate_number for r in rest.records] == expected[3:] and rest.older is None
    query = {"from": received[10].isoformat(), "to": received[15].isoformat(), "per_page": 3}
    body = client.get("/api/records", query_string=query, headers=bearer(api_token)).get_json()
    assert [r["plate_number"] for r in body["records"]] == expected[:3]
    body = client.get("/api/records", query_string=dict(query, page=2), headers=bearer(api_token)).get_json()
    assert [r["plate_number"] for r in body["records"]] == expected[3:]
    csv_text = client.get("/api/records/export.csv", query_string=query, headers=bearer(api_token)).get_data(
        as_text=True)
    assert [line.split(",")[4] for line in csv_text.splitlines()[1:]] == expected
    statement = str(records_module.page_statement(f, 4, range_first=True).compile(db.engine))
    assert "lpr_records.id + " in statement  # the order no index gives


# --- keyset paging -----------------------------------------------------------------------------

def test_api_before_id_walks_every_record_once_newest_first(app, client, api_token):
    add_reads([f"กข{n}" for n in range(7)])
    ids = sorted(db.session.scalars(db.select(Record.id)), reverse=True)
    seen, query = [], {"per_page": 3}
    while True:
        body = client.get("/api/records", query_string=query, headers=bearer(api_token)).get_json()
        seen += [r["id"] for r in body["records"]]
        if body["next_before_id"] is None:
            break
        query["before_id"] = body["next_before_id"]
    assert seen == ids
    assert body["total"] == 7 and body["total_kind"] == "exact"


def test_api_before_id_keeps_the_filters(app, client, api_token):
    add_reads(THAI)
    first = client.get("/api/records?plate=ข12&per_page=1", headers=bearer(api_token)).get_json()
    assert [r["plate_number"] for r in first["records"]] == ["1กข1299"]
    after = first["next_before_id"]
    second = client.get(f"/api/records?plate=ข12&per_page=1&before_id={after}",
                        headers=bearer(api_token)).get_json()
    assert [r["plate_number"] for r in second["records"]] == ["กข1234"]


@pytest.mark.parametrize("query", ["before_id=5&page=2", "before_id=5&since_id=1"])
def test_api_before_id_cannot_be_mixed_with_other_paging(app, client, api_token, query):
    answer = client.get(f"/api/records?{query}", headers=bearer(api_token))
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "before_id"


def test_api_polling_with_since_id_has_no_before_cursor(app, client, api_token):
    add_reads(THAI)
    body = client.get("/api/records?since_id=0&per_page=2", headers=bearer(api_token)).get_json()
    assert len(body["records"]) == 2 and body["next_before_id"] is None


# --- totals ------------------------------------------------------------------------------------

def test_count_stops_at_the_cap_and_says_so(app):
    add_reads(THAI)
    f = RecordFilter.from_args({"plate": "ก"}, "Asia/Bangkok")
    assert count_records(db.session, f, cap=10) == Total(4, "exact")
    assert count_records(db.session, f, cap=3) == Total(3, "at_least")
    assert count_records(db.session, f, cap=None) == Total(4, "exact")


def test_unfiltered_total_past_the_cap_is_counted_or_estimated(app, db_kind, monkeypatch):
    add_reads(THAI)
    assert count_records(db.session, RecordFilter(), cap=3) == Total(6, "exact")  # small: counted
    analyze()
    monkeypatch.setattr(records_module, "ESTIMATE_ABOVE", 0)
    total = count_records(db.session, RecordFilter(), cap=3)
    if db_kind == "postgresql":
        assert total.kind == "estimate" and total.value > 0
    else:
        assert total == Total(6, "exact")  # SQLite counts
    assert total_reads(db.session).kind == total.kind


def test_records_page_says_more_than_when_the_count_is_capped(app, users, monkeypatch):
    add_reads(THAI)
    monkeypatch.setattr(web_records, "count_records", partial(count_records, cap=2))
    html = signed_in(app).get("/records?plate=ก").get_data(as_text=True)
    assert 'data-kind="at_least"' in html and "More than 2" in html
    monkeypatch.undo()
    html = signed_in(app).get("/records?plate=ก").get_data(as_text=True)
    assert 'data-kind="exact">4<' in html


def test_records_page_labels_an_estimated_total(app, users, db_kind, monkeypatch):
    if db_kind != "postgresql":
        pytest.skip("only PostgreSQL estimates")
    add_reads(THAI)
    analyze()
    monkeypatch.setattr(records_module, "ESTIMATE_ABOVE", 0)
    monkeypatch.setattr(web_records, "count_records", partial(count_records, cap=2))
    html = signed_in(app).get("/records").get_data(as_text=True)
    assert 'data-kind="estimate"' in html and "(estimate)" in html


def test_api_total_kind_says_at_least_when_capped(app, client, api_token, monkeypatch):
    add_reads(THAI)
    monkeypatch.setattr(api_records, "count_records", partial(count_records, cap=2))
    body = client.get("/api/records?plate=ก", headers=bearer(api_token)).get_json()
    assert (body["total"], body["total_kind"]) == (2, "at_least")
    assert len(body["records"]) == 4


def test_statistics_say_whether_the_total_is_exact(app, client, api_token, db_kind, monkeypatch):
    add_reads(THAI)
    body = client.get("/api/statistics", headers=bearer(api_token)).get_json()
    assert (body["total_records"], body["total_records_kind"]) == (6, "exact")
    analyze()
    monkeypatch.setattr(records_module, "ESTIMATE_ABOVE", 0)
    body = client.get("/api/statistics", headers=bearer(api_token)).get_json()
    assert body["total_records_kind"] == ("estimate" if db_kind == "postgresql" else "exact")


# --- dashboard charts --------------------------------------------------------------------------

def test_dashboard_counts_each_read_in_its_hour_and_camera(app):
    db.session.add_all([Camera(id="CAM001", name="Gate"), Camera(id="CAM002")])
    now = utcnow()
    for camera, seconds_ago in (("CAM001", 0), ("CAM001", 1), ("CAM002", 7200), ("CAM002", 7201),
                                ("CAM002", 7202), ("CAM001", 25 * 3600)):
        at = now - timedelta(seconds=seconds_ago)
        db.session.add(Record(camera_id=camera, plate_number="กข1", plate_normalized="กข1",
                              captured_at=at, received_at=at))
    db.session.commit()
    counts = reads_per_hour(db.session, now, "Asia/Bangkok")["counts"]
    assert len(counts) == 24 and sum(counts) == 5
    # (a read a second or two before an hour begins belongs to the hour before)
    assert sum(counts[-2:]) == 2 and sum(counts[-4:-2]) == 3 and counts[-1] >= 1
    assert reads_per_camera(db.session, now - timedelta(hours=24)) == [
        {"camera_id": "CAM002", "name": None, "count": 3}, {"camera_id": "CAM001", "name": "Gate", "count": 2}]
