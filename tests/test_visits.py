"""Visits (SPEC §10): opened and closed by the real daemon's reads, `GET /api/visits`, the `/visits` page,
and the overstay alert, raised by `check_overstays` and by the daemon's periodic check."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from lprserver.extensions import db
from lprserver.models import Alert, Camera, KnownGroup, KnownPlate, Record, Visit, utcnow
from lprserver.overstay import check_overstays

from .conftest import bearer
from .processes import Daemon, WebApp
from .test_ingest import camera, close_client, fresh, wait_until
from .test_live import Inbox, browser_socket
from .webserver import PageClient, screenshot, sign_in, web_session


def gates(*cameras: tuple[str, str, str | None]) -> None:
    """Cameras with their roles, set in the database (the camera PATCH is its own piece)."""
    for camera_id, role, name in cameras:
        db.session.merge(Camera(id=camera_id, name=name, role=role))
    db.session.commit()


def read(sio, camera_id: str, plate: str, **extra) -> int:
    answer = sio.call("lpr_data", {"camera_id": camera_id, "plate_number": plate, "confidence": 95, **extra},
                      timeout=10)
    assert answer["status"] == "success", answer
    return answer["record_id"]


def visits_of(plate: str) -> list[Visit]:
    return list(fresh().scalars(select(Visit).where(Visit.plate_normalized == plate).order_by(Visit.id)))


def test_entry_and_exit_reads_open_and_close_visits(daemon, app, client, make_token):
    gates(("GATE-IN", "entry", "ประตูเข้า"), ("GATE-OUT", "exit", "ประตูออก"), ("ROAD", "pass", None))
    token = make_token("viewer", "read")
    with camera(daemon) as sio:
        first = read(sio, "GATE-IN", "กข 1234")
        [visit] = visits_of("กข1234")
        assert (visit.entry_camera_id, visit.entry_record_id, visit.exited_at) == ("GATE-IN", first, None)
        read(sio, "GATE-IN", "กข1234")  # a second entry read keeps the visit open from the first
        read(sio, "ROAD", "กข1234")  # a pass camera without a direction: no visit change
        [visit] = visits_of("กข1234")
        assert (visit.entry_record_id, visit.exited_at) == (first, None)
        on_site = client.get("/api/visits?open=true", headers=bearer(token)).get_json()
        [shown] = on_site["visits"]
        assert (shown["plate"], shown["entry_camera"], shown["entry_camera_name"], shown["open"]) == \
            ("กข1234", "GATE-IN", "ประตูเข้า", True)
        assert shown["stay_seconds"] >= 0 and shown["exited_at"] is None and shown["overstay"] is False
        time.sleep(1.1)
        out = read(sio, "GATE-OUT", "กข-1234")
        [visit] = visits_of("กข1234")
        assert (visit.exit_camera_id, visit.exit_record_id) == ("GATE-OUT", out)
        closed = client.get("/api/visits?plate=กข 1234", headers=bearer(token)).get_json()["visits"]
        assert closed[0]["stay_seconds"] >= 1 and closed[0]["exit_camera"] == "GATE-OUT"
        assert closed[0]["entry_record_id"] == first and closed[0]["exit_record_id"] == out
        assert client.get("/api/visits?open=true", headers=bearer(token)).get_json()["visits"] == []
        # An exit with no open visit is kept as a visit with no entry.
        lone = read(sio, "GATE-OUT", "ขค 999")
        [visit] = visits_of("ขค999")
        assert (visit.entered_at, visit.entry_camera_id, visit.exit_record_id) == (None, None, lone)
        shown = client.get("/api/visits?plate=ขค999", headers=bearer(token)).get_json()["visits"][0]
        assert (shown["entered_at"], shown["stay_seconds"], shown["open"]) == (None, None, False)
        # At a pass camera the read's direction decides.
        came = read(sio, "ROAD", "ฮฮ 55", direction="in")
        [visit] = visits_of("ฮฮ55")
        assert (visit.entry_record_id, visit.exited_at) == (came, None)
        went = read(sio, "ROAD", "ฮฮ55", direction="OUT")
        [visit] = visits_of("ฮฮ55")
        assert visit.exit_record_id == went and visit.exited_at is not None


# --- the API on stored visits -----------------------------------------------------------------------------

T0 = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)  # 08:00 in Bangkok


def add_visit(plate: str, entered: datetime | None, exited: datetime | None, entry="GATE-IN", exit_="GATE-OUT",
              group: str | None = None) -> Visit:
    visit = Visit(plate_normalized=plate, entered_at=entered, entry_camera_id=entry if entered else None,
                  exited_at=exited, exit_camera_id=exit_ if exited else None, group_name=group)
    db.session.add(visit)
    db.session.flush()
    return visit


def test_the_api_filters_by_plate_camera_and_time_and_pages(app, client, api_token):
    gates(("GATE-IN", "entry", None), ("GATE-OUT", "exit", None), ("SIDE", "exit", None))
    a = add_visit("กข1", T0, T0 + timedelta(hours=1))
    b = add_visit("กข2", T0 + timedelta(hours=2), T0 + timedelta(hours=3), exit_="SIDE")
    c = add_visit("กข3", None, T0 + timedelta(hours=5))
    d = add_visit("กข1", T0 + timedelta(days=1), None)
    db.session.commit()

    def ids(query: str) -> list[int]:
        answer = client.get(f"/api/visits{query}", headers=bearer(api_token))
        assert answer.status_code == 200, answer.get_json()
        return [v["id"] for v in answer.get_json()["visits"]]

    assert ids("") == [d.id, c.id, b.id, a.id]  # newest first
    assert ids("?open=true") == [d.id] and ids("?open=false") == [c.id, b.id, a.id]
    assert ids("?plate=กข1") == [d.id, a.id]
    assert ids("?camera_id=SIDE") == [b.id] and ids("?camera_id=GATE-IN") == [d.id, b.id, a.id]
    # from/to on entered_at or exited_at; a time without an offset is Bangkok's
    assert ids("?from=2026-03-10T10:30:00&to=2026-03-10T13:30:00") == [c.id, b.id]  # 03:30-06:30 UTC
    assert ids("?from=2026-03-10T02:30:00Z&to=2026-03-10T03:30:00Z") == [b.id]
    assert ids("?from=2026-03-11T00:00:00%2B07:00") == [d.id]
    first = client.get("/api/visits?per_page=2", headers=bearer(api_token)).get_json()
    assert [v["id"] for v in first["visits"]] == [d.id, c.id]
    assert (first["total"], first["total_kind"], first["next_before_id"]) == (4, "exact", c.id)
    assert ids(f"?per_page=2&before_id={c.id}") == [b.id, a.id]
    assert ids("?per_page=2&page=2") == [b.id, a.id]


def test_overstay_shows_in_the_api_once_past_the_groups_limit(app, client, api_token):
    db.session.add(KnownGroup(name="staff", max_stay_minutes=60))
    now = utcnow()
    late = add_visit("กข7", now - timedelta(minutes=90), None, group="staff")
    early = add_visit("กข8", now - timedelta(minutes=10), None, group="staff")
    db.session.commit()
    shown = {v["id"]: v for v in client.get("/api/visits?open=true", headers=bearer(api_token)).get_json()["visits"]}
    assert (shown[late.id]["overstay"], shown[early.id]["overstay"]) == (True, False)
    assert shown[late.id]["max_stay_minutes"] == 60 and shown[late.id]["stay_seconds"] >= 90 * 60


@pytest.mark.parametrize(("query", "field"), [
    ("from=yesterday", "from"), ("to=2026-13-01", "to"), ("from=1900-01-01T00:00:00", "from"),
    ("from=2026-03-02T00:00:00&to=2026-03-01T00:00:00", "to"), ("open=maybe", "open"),
    ("page=0", "page"), ("per_page=501", "per_page"), ("before_id=5&page=2", "before_id"),
    ("plate=" + "ก" * 65, "plate"), ("before_id=-1", "before_id"),
])
def test_bad_input_is_a_400_naming_the_field(app, client, api_token, query, field):
    answer = client.get(f"/api/visits?{query}", headers=bearer(api_token))
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "validation_error" and error.get("field") == field, error


# --- the page -------------------------------------------------------------------------------------------------


def test_the_page_shows_vehicles_on_site_longest_first_and_a_days_visits(app, users):
    gates(("GATE-IN", "entry", "ประตูเข้า"), ("GATE-OUT", "exit", None))
    db.session.add(KnownGroup(name="residents", max_stay_minutes=120))
    now = utcnow()
    add_visit("กข11", now - timedelta(minutes=5), None)
    long_stay = add_visit("กข22", now - timedelta(hours=3, minutes=12), None, group="residents")
    add_visit("กข33", now - timedelta(minutes=50), None, group="residents")
    add_visit("<b>x</b>", now - timedelta(minutes=1), None)  # escaped like every plate
    db.session.commit()
    browser = PageClient(app)
    assert browser.login("viewer").status_code == 302
    html = browser.get("/visits").get_data(as_text=True)
    on_site = html.split('id="on-site"')[1].split('id="closed"')[0]
    order = [on_site.index(p) for p in ("กข22", "กข33", "กข11")]
    assert order == sorted(order)  # longest first
    assert "3 h 12 min" in on_site and "overstay (max 2 h)" in on_site
    assert f'data-visit-id="{long_stay.id}"' in on_site and on_site.count("visit-overstay") == 1
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert 'id="on-site-count">4<' in on_site

    # Closed visits by day: the day is Bangkok's; count and mean stay.
    add_visit("ขค1", datetime(2026, 3, 9, 17, 30, tzinfo=UTC), datetime(2026, 3, 9, 18, 30, tzinfo=UTC))  # 01:30
    add_visit("ขค2", datetime(2026, 3, 10, 2, 0, tzinfo=UTC), datetime(2026, 3, 10, 5, 0, tzinfo=UTC))
    add_visit("ขค3", None, datetime(2026, 3, 10, 6, 0, tzinfo=UTC))
    add_visit("ขค4", datetime(2026, 3, 10, 16, 0, tzinfo=UTC), datetime(2026, 3, 10, 17, 30, tzinfo=UTC))  # next day
    db.session.commit()
    html = browser.get("/visits?day=2026-03-10").get_data(as_text=True)
    closed = html.split('id="closed"')[1]
    assert all(p in closed for p in ("ขค1", "ขค2", "ขค3")) and "ขค4" not in closed
    assert 'data-summary="count">3<' in closed and 'data-summary="mean">2 h<' in closed
    assert "no entry read" in closed and "1 h<" in closed and "3 h<" in closed
    # A bad day: an inline message, today's page, 400.
    answer = browser.get("/visits?day=31/12/2026")
    assert answer.status_code == 400 and 'id="day-error"' in answer.get_data(as_text=True)
    assert "is not a day" in answer.get_data(as_text=True)
    assert ">Visits</a>" in html  # the navigation link


def test_the_routes_are_walked_for_every_kind_of_caller(app, users, client, make_token):
    assert client.get("/api/visits").status_code == 401
    assert client.get("/api/visits").get_json()["error"]["code"] == "unauthorized"
    for role in ("viewer", "operator", "admin"):
        for scope in ("read", "read-write"):
            assert client.get("/api/visits", headers=bearer(make_token(role, scope))).status_code == 200
    stranger = PageClient(app).get("/visits")
    assert stranger.status_code == 302 and "/login" in stranger.headers["Location"]
    with_token = PageClient(app).get("/visits", headers=bearer(make_token("admin")))
    assert with_token.status_code == 302 and "/login" in with_token.headers["Location"]  # pages take no token
    for role in ("viewer", "operator", "admin"):
        browser = PageClient(app)
        assert browser.login(role).status_code == 302
        assert browser.get("/visits").status_code == 200
        assert browser.get("/api/visits").status_code == 200


# --- overstay --------------------------------------------------------------------------------------------------


def test_check_overstays_raises_one_alert_per_visit_past_its_limit(app):
    db.session.add_all([KnownGroup(name="staff", max_stay_minutes=120), KnownGroup(name="residents")])
    db.session.add(Camera(id="GATE-IN", role="entry"))
    db.session.flush()
    record = Record(camera_id="GATE-IN", plate_number="กข 1", plate_normalized="กข1", received_at=T0,
                    captured_at=T0)
    db.session.add(record)
    db.session.flush()
    staff = add_visit("กข1", T0, None, group="staff")
    staff.entry_record_id = record.id
    add_visit("กข2", T0, None, group="residents")  # no limit
    add_visit("กข3", T0, None)  # a visitor: no group
    add_visit("กข4", T0, T0 + timedelta(hours=5), group="staff")  # left already
    add_visit("กข5", T0 + timedelta(hours=1), None, group="staff")  # not yet
    db.session.commit()
    assert check_overstays(db.session, T0 + timedelta(minutes=119)) == []
    now = T0 + timedelta(hours=2, minutes=30)
    [alert] = check_overstays(db.session, now)
    db.session.commit()
    assert (alert.trigger, alert.plate, alert.visit_id, alert.record_id, alert.camera_id) == \
        ("overstay", "กข1", staff.id, record.id, "GATE-IN")
    assert alert.detail == {"group": "staff", "max_stay_minutes": 120, "entered_at": T0.isoformat(),
                            "stay_seconds": 9000}
    assert db.session.get(Visit, staff.id).overstay_alerted_at == now
    assert check_overstays(db.session, now + timedelta(hours=1)) != []  # กข5 now, never กข1 again
    db.session.commit()
    plates = sorted(a.plate for a in db.session.scalars(select(Alert)))
    assert plates == ["กข1", "กข5"]


@pytest.fixture
def overstay_daemon(base_env, webapp, tmp_path):
    """A daemon of this test's own that checks for overstays twice a second and relays to `webapp`."""
    env = {**base_env, "ASYNC_MODE": "gevent", "OVERSTAY_CHECK_SECONDS": "0.5",
           "LIVE_RELAY_URL": f"{webapp.url}/internal/live"}
    proc = Daemon(env, tmp_path / "overstay-daemon.log").start()
    yield proc
    proc.stop()


def test_the_daemon_raises_the_overstay_alert_and_every_page_shows_it(webapp: WebApp, overstay_daemon, app, users,
                                                                     browser_page):
    gates(("GATE-IN", "entry", "ประตูเข้า"), ("GATE-OUT", "exit", None))
    db.session.add(KnownGroup(name="staff", max_stay_minutes=120))
    db.session.add(KnownPlate(plate="กข 1234", plate_normalized="กข1234", group_name="staff", name="Somchai"))
    db.session.commit()
    http = web_session(webapp, "operator")
    listener = browser_socket(webapp, http)
    inbox = Inbox(listener, "alert")
    page = browser_page
    sign_in(page, webapp, "operator")
    try:
        with camera(overstay_daemon) as sio:
            entry = read(sio, "GATE-IN", "กข 1234")
        [visit] = visits_of("กข1234")
        assert visit.group_name == "staff"
        # Three hours and twelve minutes ago, as far as the check can tell.
        visit.entered_at = utcnow() - timedelta(hours=3, minutes=12)
        db.session.commit()
        alert = wait_until(lambda: fresh().scalar(select(Alert).where(Alert.trigger == "overstay")), 10)
        assert alert is not None and alert.visit_id == visit.id and alert.record_id == entry
        # The daemon relays it after its commit; a machine busy with the other suite took over 10 s once.
        _, event, _ = inbox.wait_for(lambda e, d: d["id"] == alert.id, timeout=30)
        assert event["trigger"] == "overstay" and event["record"]["id"] == entry
        assert event["detail"]["max_stay_minutes"] == 120
        time.sleep(1.2)  # more checks: still one alert
        assert len(fresh().scalars(select(Alert)).all()) == 1
        card = page.locator('.lpr-alert[data-trigger="overstay"]')
        card.wait_for(timeout=10_000)
        assert card.locator(".alert-match").text_content() == "อยู่เกินเวลา: 3 ชม. 12 นาที (สูงสุด 2 ชม.)"
        assert card.locator(".alert-head-label").text_content() == "อยู่เกินเวลา"
        assert card.locator('[data-field="category"]').text_content() == "staff"
        page.goto(f"{webapp.url}/visits")
        page.locator('.lpr-alert[data-trigger="overstay"]').wait_for(timeout=10_000)  # replayed on a new page
        screenshot(page, "visits-overstay-alert")
        page.locator('.lpr-alert[data-trigger="overstay"] .btn-ack').click()
        page.locator('.lpr-alert[data-trigger="overstay"].acknowledged').wait_for(timeout=10_000)
        acked = wait_until(lambda: fresh().get(Alert, alert.id).acknowledged_at, 5)
        assert acked is not None
    finally:
        close_client(listener)
        http.close()


# --- screenshots ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "width", "height"), [("desktop", 1366, 900), ("phone", 390, 844)])
def test_screenshots_of_the_visits_page(webapp, app, users, browser_page, name, width, height):
    gates(("GATE-IN", "entry", "ประตูหน้า หอพัก"), ("GATE-OUT", "exit", "ประตูหลัง"))
    db.session.add_all([KnownGroup(name="residents", max_stay_minutes=240), KnownGroup(name="staff")])
    now = utcnow()
    for i, (plate, minutes, group) in enumerate([("กข1234", 312, "residents"), ("1กท5678", 95, "staff"),
                                                 ("ฮฮ99", 42, None), ("ABC123", 7, "residents")]):
        add_visit(plate, now - timedelta(minutes=minutes), None, group=group).province_code = \
            "TH-10" if i % 2 == 0 else None
    for i in range(6):
        end = now - timedelta(minutes=20 * i + 1)
        add_visit(f"ขค{100 + i}", end - timedelta(minutes=15 + 25 * i), end, group="residents" if i % 2 else None)
    add_visit("ขค999", None, now - timedelta(minutes=2))
    db.session.commit()
    page = browser_page
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, webapp, "viewer")
    page.goto(f"{webapp.url}/visits")
    page.locator("#on-site tbody tr").nth(3).wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
    screenshot(page, f"visits-{name}")
