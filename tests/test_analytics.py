"""Analytics from pre-aggregated counts (SPEC §12 "Dashboard"): reads sent through every door are counted
once in the ingest transaction, the counts equal what a direct query over lpr_records finds, the rebuild
makes the same counts, /analytics and GET /api/analytics answer from them for every role (and read
tokens), refuse bad arguments, and the page draws its charts in Chromium at desktop and phone sizes."""

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from lprserver.analytics import analytics
from lprserver.analytics_counts import hour_of, rebuild
from lprserver.blacklist import add_entry
from lprserver.corrections import correct_record
from lprserver.extensions import db
from lprserver.images import FilesystemImageStore
from lprserver.models import (
    AnalyticsCameraDay,
    AnalyticsDay,
    AnalyticsDayGap,
    AnalyticsHour,
    AnalyticsHourTotal,
    AnalyticsPlateDay,
    AnalyticsProvinceDay,
    Camera,
    Record,
    User,
    utcnow,
)
from lprserver.retention import delete_older_than

from .conftest import bearer
from .test_ingest import SEED_DETECTION, camera, fresh, raw_call, raw_socket
from .webserver import PageClient, sign_in

TZ = "Asia/Bangkok"
COUNT_TABLES = ("analytics_hours", "analytics_camera_days", "analytics_hour_totals", "analytics_days",
                "analytics_plate_days", "analytics_day_gaps", "analytics_province_days")
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def empty_counts(clean, database):
    """tests/conftest.py's `clean` empties the tables it lists; the counts' tables too, until it lists them."""
    from sqlalchemy import create_engine, text

    from config import database_url

    engine = create_engine(database_url(database))
    with engine.begin() as conn:
        for table in COUNT_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


# --- what a direct query over lpr_records finds ----------------------------------------------------


def _spans(groups: dict, with_end: bool) -> dict:
    out = {}
    for key, rows in groups.items():
        times = sorted(r.received_at for r in rows)
        gap, end = 0.0, None
        for before, after in zip(times, times[1:], strict=False):
            if (after - before).total_seconds() > gap:
                gap, end = (after - before).total_seconds(), after
        confidences = [r.confidence for r in rows if r.confidence is not None]
        out[key] = {"reads": len(rows), "hits": sum(r.blacklisted for r in rows),
                    "confidence_sum": round(sum(confidences), 6), "confidence_reads": len(confidences),
                    "first_at": times[0], "last_at": times[-1], "max_gap_seconds": gap,
                    **({"max_gap_end_at": end} if with_end else {})}
    return out


def direct_counts() -> dict:
    """The aggregate tables' contents, computed in Python from every row of lpr_records."""
    tz = ZoneInfo(TZ)
    hours, camera_days = defaultdict(list), defaultdict(list)
    plate_days, provinces = set(), Counter()
    records = fresh().scalars(select(Record)).all()
    for r in records:
        day = r.received_at.astimezone(tz).date()
        hours[(hour_of(r.received_at), r.camera_id)].append(r)
        camera_days[(day, r.camera_id)].append(r)
        plate_days.add((day, r.plate_normalized))
        provinces[(day, r.province_code or "")] += 1
    days_of = defaultdict(list)
    for day, plate in sorted(plate_days):
        days_of[plate].append(day)
    gaps = Counter()
    for days in days_of.values():
        for previous, day in zip([None, *days], days, strict=False):
            gaps[(day, 0 if previous is None else (day - previous).days)] += 1
    return {"hours": _spans(hours, False), "camera_days": _spans(camera_days, True),
            "hour_totals": dict(Counter(hour_of(r.received_at) for r in records)),
            "plate_days": plate_days, "days": dict(Counter(day for day, _ in plate_days)),
            "gaps": dict(gaps), "provinces": dict(provinces)}


def stored_counts() -> dict:
    session = fresh()

    def span(h, with_end):
        return {"reads": h.reads, "hits": h.hits, "confidence_sum": round(h.confidence_sum, 6),
                "confidence_reads": h.confidence_reads, "first_at": h.first_at, "last_at": h.last_at,
                "max_gap_seconds": h.max_gap_seconds, **({"max_gap_end_at": h.max_gap_end_at} if with_end else {})}

    return {
        "hours": {(h.hour, h.camera_id): span(h, False) for h in session.scalars(select(AnalyticsHour))},
        "camera_days": {(d.day, d.camera_id): span(d, True) for d in session.scalars(select(AnalyticsCameraDay))},
        "hour_totals": {t.hour: t.reads for t in session.scalars(select(AnalyticsHourTotal))},
        "plate_days": {(p.day, p.plate_normalized) for p in session.scalars(select(AnalyticsPlateDay))},
        "days": {d.day: d.unique_plates for d in session.scalars(select(AnalyticsDay)) if d.unique_plates},
        "gaps": {(g.day, g.gap): g.plates for g in session.scalars(select(AnalyticsDayGap)) if g.plates},
        "provinces": {(p.day, p.province_code): p.reads for p in session.scalars(select(AnalyticsProvinceDay))
                      if p.reads},
    }


SPAN_TABLES = ("hours", "camera_days")


def without_gaps(counts: dict) -> dict:
    """The counts but the longest gaps (compared to the millisecond in assert_same)."""
    return {**counts, **{table: {k: {n: v for n, v in h.items() if n not in ("max_gap_seconds", "max_gap_end_at")}
                                 for k, h in counts[table].items()} for table in SPAN_TABLES}}


def assert_same(got: dict, want: dict) -> None:
    """The same counts; the longest gaps to the millisecond (SQLite's julianday() rounds them)."""
    assert without_gaps(got) == without_gaps(want)
    for table in SPAN_TABLES:
        gaps = {k: h["max_gap_seconds"] for k, h in got[table].items()}
        assert gaps == pytest.approx({k: h["max_gap_seconds"] for k, h in want[table].items()}, abs=0.002)
    ends = {k: h["max_gap_end_at"] for k, h in got["camera_days"].items()}
    wanted = {k: h["max_gap_end_at"] for k, h in want["camera_days"].items()}
    assert ends.keys() == wanted.keys()
    for key, end in ends.items():
        if end != wanted[key]:
            # Two gaps of a camera's day within SQLite's millisecond of each other (reads sent back to back
            # on a fast machine): either read may end the longest one. It must still be one of its reads.
            assert end is not None and wanted[key] is not None, key
            reads = db.session.scalars(select(Record.received_at).where(Record.camera_id == key[1])).all()
            assert any(abs((_naive(r) - _naive(end)).total_seconds()) < 0.002 for r in reads), (key, end)


def _naive(at):
    return at.replace(tzinfo=None) if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


def rebuilt() -> dict:
    rebuild(db.session, TZ)
    db.session.commit()
    return stored_counts()


# --- counted in the ingest transaction, through every door ------------------------------------------


def test_reads_through_every_door_are_counted_once_and_match_lpr_records(daemon, app, client):
    add_entry(db.session, "ฮฮ999", reason="stolen", category="stolen", added_by="tests")
    db.session.commit()
    read = {"camera_id": "GATE-1", "plate_number": "กข1234", "province": "กรุงเทพมหานคร", "confidence": 91.5}
    with camera(daemon) as sio:  # Socket.IO, each twice (the second is a repeat)
        for n, plate in enumerate(["กข1234", "กข1234", "ฮฮ999", "1กก22 เชียงใหม่"]):
            for _ in range(2):
                answer = sio.call("lpr_data", {**read, "plate_number": plate, "event_id": f"sio-{n}"}, timeout=10)
                assert answer["status"] == "success"
        assert sio.call("lpr_data", {**read, "camera_id": "GATE-2", "confidence": None, "province": None,
                                     "event_id": "sio-x"}, timeout=10)["status"] == "success"
    with raw_socket(daemon) as ws:  # the raw WebSocket door, the seed's envelope, sent twice
        for _ in range(2):
            envelope = json.loads(json.dumps(SEED_DETECTION))
            envelope["data"]["event_id"] = "raw-1"
            assert raw_call(ws, envelope)["status"] == "success"
    for n in range(3):  # HTTP, the last one a repeat
        body = {**read, "camera_id": "GATE-2", "plate_number": "ฮฮ999", "event_id": f"http-{min(n, 1)}"}
        assert client.post("/api/records", json=body).status_code in (200, 201)
    direct = direct_counts()
    assert len(fresh().scalars(select(Record)).all()) == 8  # 5 + 1 + 2, the repeats not stored
    assert sum(h["reads"] for h in direct["hours"].values()) == 8
    assert sum(h["hits"] for h in direct["hours"].values()) == 3
    assert without_gaps(stored_counts()) == without_gaps(direct)
    assert_same(rebuilt(), direct)  # the backfill finds the same counts, the gaps exact


def test_a_batch_is_summed_per_key_and_a_repeat_within_it_counts_once(app):
    from lprserver.ingest.pipeline import IngestSettings, ingest_reads, prepare_read

    settings = IngestSettings.from_config(app.config)
    reads = [prepare_read({"camera_id": cam, "plate_number": plate, "confidence": conf, "event_id": event}, None)
             for cam, plate, conf, event in [("A", "กข1", 0.9, "1"), ("A", "กข1", 0.8, "2"), ("B", "กข2", None, "3"),
                                             ("A", "กข1", 0.9, "1"), ("B", "ABC1", 0.5, "4")]]
    store = FilesystemImageStore(app.config["IMAGE_STORAGE_PATH"])
    outcomes = ingest_reads(db.session, store, settings, reads)
    assert [o.duplicate for o in outcomes] == [False, False, False, True, False]
    counts = stored_counts()
    assert without_gaps(counts) == without_gaps(direct_counts())
    assert {k[1]: h["reads"] for k, h in counts["hours"].items()} == {"A": 2, "B": 2}
    assert sum(counts["days"].values()) == 3
    again = ingest_reads(db.session, store, settings, reads)  # all repeats now: nothing more is counted
    assert all(o.duplicate for o in again)
    assert_same(stored_counts(), counts)


def test_a_rolled_back_batch_leaves_no_counts(app):
    from lprserver.analytics_counts import count_reads

    now = utcnow()
    count_reads(db.session, [{"received_at": now, "camera_id": "A", "plate_normalized": "กข1",
                              "province_code": None, "confidence": 90.0, "blacklisted": False}], TZ)
    db.session.rollback()
    assert stored_counts() == {"hours": {}, "camera_days": {}, "hour_totals": {}, "plate_days": set(), "days": {},
                               "gaps": {}, "provinces": {}}


# --- the backfill, corrections and retention ---------------------------------------------------------


def add_history(now: datetime) -> None:
    """Reads over six weeks at three cameras (one silent for a day), a few hits, provinces and none."""
    db.session.add_all([Camera(id="NORTH", name="ประตูเหนือ"), Camera(id="SOUTH", name="South gate"),
                        Camera(id="IDLE", name="Idle")])
    provinces = ["TH-10", "TH-50", None, "TH-10"]
    n = 0
    for hours_back in range(0, 42 * 24, 5):
        at = now - timedelta(hours=hours_back, minutes=hours_back % 60)
        for cam in ("NORTH", "SOUTH"):
            if cam == "SOUTH" and 30 <= hours_back < 60:
                continue  # a silence of about a day
            n += 1
            db.session.add(Record(camera_id=cam, plate_number=f"กข{n % 37}", plate_normalized=f"กข{n % 37}",
                                  province_code=provinces[n % 4], captured_at=at, received_at=at,
                                  confidence=None if n % 11 == 0 else 70.0 + n % 30, blacklisted=n % 13 == 0))
    db.session.commit()


def expected_figures(now: datetime, days: int) -> dict:
    """GET /api/analytics' figures, computed from lpr_records' rows in Python."""
    tz = ZoneInfo(TZ)
    today = now.astimezone(tz).date()
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), tz).astimezone(UTC)
    before = start - timedelta(days=days)
    rows = fresh().scalars(select(Record)).all()

    def totals(lo, hi):
        chosen = [r for r in rows if lo <= r.received_at < hi]
        return {"reads": len(chosen), "unique_plates": len({r.plate_normalized for r in chosen}),
                "hits": sum(r.blacklisted for r in chosen)}

    cells = [[0] * 24 for _ in range(7)]
    first = datetime.combine(today - timedelta(days=27), datetime.min.time(), tz)
    for r in rows:
        if r.received_at >= first:
            local = r.received_at.astimezone(tz)
            cells[local.weekday()][local.hour] += 1
    per_day = Counter(d for d in {(r.received_at.astimezone(tz).date(), r.plate_normalized) for r in rows})
    unique = Counter(day for day, _ in per_day)
    provinces = Counter(r.province_code for r in rows if start <= r.received_at)
    cameras = {}
    for cam in ("NORTH", "SOUTH", "IDLE"):
        mine = sorted((r for r in rows if r.camera_id == cam and r.received_at >= start),
                      key=lambda r: r.received_at)
        conf = [r.confidence for r in mine if r.confidence is not None]
        times = [r.received_at for r in mine]
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        if times:
            gaps.append((now - times[-1]).total_seconds())
        cameras[cam] = {"reads": len(mine), "mean_confidence": round(sum(conf) / len(conf), 2) if conf else None,
                        "corrections": sum(1 for r in mine if r.corrected_at is not None),
                        "last_read_at": times[-1].isoformat() if times else None,
                        "longest_silence_seconds": round(max(gaps)) if gaps else None}
    return {"current": totals(start, now + timedelta(seconds=1)), "previous": totals(before, start),
            "cells": cells,
            "unique": [unique.get(today - timedelta(days=n), 0) for n in range(29, -1, -1)],
            "provinces": {code: n for code, n in provinces.items()}, "cameras": cameras}


@pytest.mark.parametrize("days", [1, 7, 30])
def test_the_api_answers_what_a_direct_query_over_lpr_records_finds(client, api_token, days):
    now = utcnow()
    add_history(now)
    rebuild(db.session, TZ)
    db.session.commit()
    answer = client.get(f"/api/analytics?days={days}", headers=bearer(api_token))
    assert answer.status_code == 200
    got, want = answer.get_json(), expected_figures(now, days)
    assert got["comparison"] == {"current": want["current"], "previous": want["previous"]}
    assert got["heatmap"]["cells"] == want["cells"]
    assert [d["unique_plates"] for d in got["unique_plates_per_day"]] == want["unique"]
    assert {p["province_code"]: p["reads"] for p in got["top_provinces"]} == want["provinces"]
    cameras = {c["camera_id"]: c for c in got["cameras"]}
    for cam, figures in want["cameras"].items():
        # The silence up to now is counted from the API's own now, a moment after this test's: a second apart
        # at most.
        silence = figures.pop("longest_silence_seconds")
        assert {k: cameras[cam][k] for k in figures} == figures, cam
        got_silence = cameras[cam]["longest_silence_seconds"]
        assert (got_silence is None) == (silence is None) and (silence is None or abs(got_silence - silence) <= 1), cam
    assert cameras["IDLE"]["reads_per_hour"] == 0 and cameras["IDLE"]["longest_silence_seconds"] is None
    if days >= 7:  # SOUTH's day of silence, with the reads on either side of it
        south = cameras["SOUTH"]
        assert south["longest_silence_seconds"] >= 24 * 3600 and south["longest_silence_to"]


def test_rebuild_matches_the_counts_ingest_made_and_a_correction_moves_its_read(app):
    from lprserver.ingest.pipeline import IngestSettings, ingest_read

    settings = IngestSettings.from_config(app.config)
    store = FilesystemImageStore(app.config["IMAGE_STORAGE_PATH"])
    add_entry(db.session, "ฮฮ999", reason="stolen", category="stolen", added_by="tests")
    db.session.commit()
    stored = [ingest_read(db.session, store, settings, {"camera_id": "A", "plate_number": p, "province": v})
              for p, v in [("กข1", "เชียงใหม่"), ("กข1", None), ("กข2", "เชียงใหม่")]]
    made = stored_counts()
    assert_same(made, direct_counts())
    assert_same(rebuilt(), made)
    operator = User(username="op", password_hash="x", role="operator")
    db.session.add(operator)
    record = db.session.get(Record, stored[0].record_id)
    correct_record(db.session, record, "ฮฮ999", "กรุงเทพมหานคร", operator, utcnow(), timezone=TZ)
    db.session.commit()
    followed = stored_counts()
    assert without_gaps(followed) == without_gaps(direct_counts())
    assert sum(h["hits"] for h in followed["hours"].values()) == 1
    assert_same(rebuilt(), followed)


def test_retention_deletes_records_but_not_the_counts(app):
    now = utcnow()
    add_history(now)
    rebuild(db.session, TZ)
    db.session.commit()
    before = analytics(db.session, now, TZ, 30)
    store = FilesystemImageStore(app.config["IMAGE_STORAGE_PATH"])
    from lprserver.retention import CleanupReport

    delete_older_than(db.session, store, now - timedelta(days=3), 500, CleanupReport())
    assert fresh().scalar(select(Record.id).where(Record.received_at < now - timedelta(days=4))) is None
    after = analytics(db.session, now, TZ, 30)
    assert after["comparison"] == before["comparison"] and after["heatmap"] == before["heatmap"]
    assert after["unique_plates_per_day"] == before["unique_plates_per_day"]


def test_the_rebuild_command_prints_what_it_made(app):
    add_history(utcnow())
    result = app.test_cli_runner().invoke(args=["lpr", "rebuild-analytics"])
    assert result.exit_code == 0, result.output
    assert "Analytics rebuilt" in result.output and "analytics_hours" in result.output
    assert_same(stored_counts(), direct_counts())


# --- who may see it, and bad arguments ---------------------------------------------------------------


def test_every_kind_of_caller_on_the_page_and_the_api(app, client, users, make_token):
    add_history(utcnow())
    assert client.get("/api/analytics").status_code == 401
    assert client.get("/api/analytics").get_json()["error"]["code"]
    tokens = {"viewer": make_token("viewer"), "operator": make_token("operator"), "admin": make_token("admin"),
              "read-only admin": make_token("admin", "read"), "read-only viewer": make_token("viewer", "read")}
    for who, token in tokens.items():
        assert client.get("/api/analytics", headers=bearer(token)).status_code == 200, who
        page = PageClient(app).get("/analytics", headers=bearer(token))  # pages never take a token
        assert page.status_code == 302 and "/login" in page.headers["Location"], who
    stranger = PageClient(app).get("/analytics")
    assert stranger.status_code == 302 and "/login" in stranger.headers["Location"]
    for role in ("viewer", "operator", "admin"):
        browser = PageClient(app)
        assert browser.login(role).status_code == 302
        page = browser.get("/analytics?days=30")
        assert page.status_code == 200, role
        html = page.get_data(as_text=True)
        assert 'id="analytics-heatmap"' in html and 'id="analytics-data"' in html
        assert "ประตูเหนือ" in html and browser.get("/api/analytics").status_code == 200
    assert client.post("/api/analytics", headers=bearer(tokens["admin"])).status_code == 405


@pytest.mark.parametrize("days", ["0", "91", "abc", "-1", "7.5", ""])
def test_bad_arguments_are_refused_with_400(app, client, users, api_token, days):
    answer = client.get(f"/api/analytics?days={days}", headers=bearer(api_token))
    assert answer.status_code == 400  # an empty value too: the API says it is not a number
    assert set(answer.get_json()) == {"error"} and answer.get_json()["error"]["message"]
    browser = PageClient(app)
    browser.login("viewer")
    page = browser.get(f"/analytics?days={days}")
    assert page.status_code == (200 if days == "" else 400)  # the page's form may send it empty


def test_the_api_is_in_the_openapi_document(client):
    document = client.get("/api/openapi.json").get_json()
    operation = document["paths"]["/api/analytics"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["days"]
    assert "200" in operation["responses"]


# --- in Chromium ---------------------------------------------------------------------------------------


def test_the_page_draws_its_charts_at_desktop_and_phone_sizes(webapp, app, users, browser_page):
    add_history(utcnow())
    rebuild(db.session, TZ)
    db.session.commit()
    page = browser_page
    console = []
    page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
    sign_in(page, webapp, "viewer")
    for size, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.goto(f"{webapp.url}/analytics?days=7")
        page.wait_for_selector('body[data-analytics-ready="1"]', state="attached", timeout=10_000)
        drawn = page.evaluate("""() => ['chart-unique', 'chart-provinces', 'chart-cameras'].map((id) => {
            const chart = Chart.getChart(document.getElementById(id));
            const box = document.getElementById(id).getBoundingClientRect();
            return chart ? [chart.data.datasets[0].data.length, Math.round(box.width), Math.round(box.height)]
                         : null; })""")
        assert all(d is not None for d in drawn), name
        unique, provinces, cameras = drawn
        assert unique[0] == 30 and provinces[0] >= 2 and cameras[0] == 3
        assert all(width > 100 and height > 50 for _, width, height in drawn), (name, drawn)
        assert page.locator("#analytics-heatmap tbody tr").count() == 7
        assert page.locator("#analytics-cameras tbody tr").count() == 3
        # The page itself does not scroll sideways on a phone: the wide tables scroll in their boxes.
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), name
        page.screenshot(path=f"/work/notes/shots/analytics_{name}.png", full_page=True)
    assert console == []
