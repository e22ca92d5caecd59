"""The map (SPEC §12 "Map"): /map and /map?plate=, the cameras' coordinates on /cameras and the API, who
may do what, MAP_TILE_URL checked at start and named in the CSP only when set; in headless Chromium the
cameras as dots coloured by state that follow the live events, a plate's route, and no request to any
other site without tiles. Screenshots at desktop and phone sizes."""

import http.server
import json
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import select

import config
from lprserver import create_app
from lprserver.extensions import db
from lprserver.live import LiveRelay
from lprserver.models import Alert, AuditEntry, Camera, Record, utcnow
from lprserver.plates import normalize_plate
from lprserver.wire import camera_status

from .conftest import bearer
from .imagegen import make_jpeg
from .processes import WebApp
from .webserver import PageClient, sign_in

SHOTS = Path("/work/notes/shots")
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
PLATE = "กข1234"
TILES = "https://{s}.tiles.example.org/osm/{z}/{x}/{y}.png"


def fresh():
    db.session.rollback()
    return db.session


def audits() -> list[AuditEntry]:
    return list(fresh().scalars(select(AuditEntry).where(AuditEntry.action == "camera.update")
                                .order_by(AuditEntry.id)))


def add_cameras() -> None:
    """Four cameras: online, offline and silent ones with coordinates, and one without."""
    now = utcnow()
    silence = Alert(trigger="camera_offline", camera_id="LOT-E", created_at=now - timedelta(minutes=20))
    db.session.add(silence)
    db.session.flush()
    db.session.add_all([
        Camera(id="GATE-N", name="ประตูเหนือ", location="หน้าหอพัก", latitude=13.7563, longitude=100.5018,
               online=True, last_seen=now),
        Camera(id="GATE-S", name="ประตูใต้", latitude=13.7400, longitude=100.5100, online=False,
               last_seen=now - timedelta(hours=2)),
        Camera(id="LOT-E", name="ลานจอดตะวันออก", latitude=13.7480, longitude=100.5300, online=False,
               last_seen=now - timedelta(minutes=30), offline_alert_id=silence.id),
        Camera(id="BACK", name="ประตูหลัง", online=True, last_seen=now),
    ])
    db.session.commit()


def add_route() -> list[str]:
    """PLATE read at GATE-N, GATE-S, LOT-E, then GATE-N again (twice), an hour apart; returns the stops."""
    start = utcnow() - timedelta(hours=5)
    stops = ["GATE-N", "GATE-S", "LOT-E", "GATE-N", "GATE-N"]
    for n, camera_id in enumerate(stops):
        at = start + timedelta(hours=n)
        db.session.add(Record(camera_id=camera_id, plate_number=PLATE, plate_normalized=normalize_plate(PLATE),
                              captured_at=at, received_at=at, confidence=90.0))
    db.session.commit()
    return stops[:4]


def signed_in(app, role: str) -> PageClient:
    browser = PageClient(app)
    assert browser.login(role).status_code == 302
    return browser


# --- the API carries what the map draws ---------------------------------------------------------------


def test_api_cameras_carry_coordinates_state_reads_today_and_silence(client, api_token):
    add_cameras()
    db.session.add(Record(camera_id="GATE-N", plate_number="ขค99", plate_normalized="ขค99",
                          captured_at=utcnow(), received_at=utcnow()))
    db.session.commit()
    listed = {c["id"]: c for c in client.get("/api/cameras", headers=bearer(api_token)).get_json()["cameras"]}
    north, silent, back = listed["GATE-N"], listed["LOT-E"], listed["BACK"]
    assert (north["latitude"], north["longitude"], north["online"], north["reads_today"]) == (
        13.7563, 100.5018, True, 1)
    assert north["offline_alert_id"] is None and silent["offline_alert_id"] is not None
    assert (back["latitude"], back["longitude"], back["reads_today"]) == (None, None, 0)


# --- who may do what ---------------------------------------------------------------------------------


def test_every_api_route_is_walked_for_every_kind_of_caller(client, make_token):
    add_cameras()
    callers = {"stranger": {}, "viewer": bearer(make_token("viewer")), "operator": bearer(make_token("operator")),
               "admin": bearer(make_token("admin")), "read-only admin": bearer(make_token("admin", "read"))}

    def walk(call) -> dict:
        return {who: call(headers).status_code for who, headers in callers.items()}

    readers = {"stranger": 401, "viewer": 200, "operator": 200, "admin": 200, "read-only admin": 200}
    assert walk(lambda h: client.get("/api/cameras", headers=h)) == readers
    assert walk(lambda h: client.get(f"/api/plates/{quote(PLATE)}", headers=h)) == {**readers, **dict.fromkeys(
        ("viewer", "operator", "admin", "read-only admin"), 404)}  # never read: a 404 past the sign-in
    place = {"latitude": 13.70, "longitude": 100.40}
    assert walk(lambda h: client.patch("/api/cameras/BACK", json=place, headers=h)) == {
        "stranger": 401, "viewer": 403, "operator": 200, "admin": 200, "read-only admin": 403}
    assert (fresh().get(Camera, "BACK").latitude, fresh().get(Camera, "BACK").longitude) == (13.70, 100.40)


def test_every_page_route_is_walked_for_every_kind_of_caller(app, users, make_token):
    add_cameras()
    stranger = PageClient(app)
    for path in ("/map", f"/map?plate={quote(PLATE)}"):
        answer = stranger.get(path)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], path
    form = {"latitude": "13.7", "longitude": "100.6"}
    answer = stranger.post("/cameras/BACK/place", data={**form, "csrf_token": stranger.token("/login")})
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    for scope in ("read", "read-write"):  # pages never take a token
        headers = bearer(make_token("admin", scope))
        answer = PageClient(app).get("/map", headers=headers)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], scope
        assert PageClient(app).post("/cameras/BACK/place", data=form, headers=headers).status_code in (302, 400)
    assert fresh().get(Camera, "BACK").latitude is None
    seen = {}
    for role in ("viewer", "operator", "admin"):
        browser = signed_in(app, role)
        page = browser.get("/map")
        cameras = browser.get("/cameras").get_data(as_text=True)
        seen[role] = (page.status_code, browser.get(f"/map?plate={quote(PLATE)}").status_code,
                      'class="small camera-place-edit"' in cameras,
                      browser.post("/cameras/BACK/place", data={**form, "csrf_token": browser.token("/cameras")})
                      .status_code)
    assert seen == {"viewer": (200, 200, False, 403), "operator": (200, 200, True, 302),
                    "admin": (200, 200, True, 302)}
    assert (fresh().get(Camera, "BACK").latitude, fresh().get(Camera, "BACK").longitude) == (13.7, 100.6)
    admin = signed_in(app, "admin")
    assert admin.post("/cameras/BACK/place", data={"latitude": "1", "longitude": "2"}).status_code == 400  # no CSRF
    assert admin.get("/map?plate=%00").status_code == 404


# --- coordinates on /cameras and the API --------------------------------------------------------------


def test_an_operator_sets_and_clears_a_cameras_coordinates_on_cameras_audited(app, users):
    add_cameras()
    operator = signed_in(app, "operator")
    answer = operator.post("/cameras/BACK/place", data={"latitude": " 13.7501 ", "longitude": "100.4932",
                                                        "csrf_token": operator.token("/cameras")})
    assert answer.status_code == 302
    page = operator.get("/cameras").get_data(as_text=True)
    assert "Coordinates of camera ประตูหลัง saved: 13.7501, 100.4932" in page
    assert operator.post("/cameras/BACK/place", data={"latitude": "", "longitude": "",
                                                      "csrf_token": operator.token("/cameras")}).status_code == 302
    camera = fresh().get(Camera, "BACK")
    assert (camera.latitude, camera.longitude) == (None, None)
    first, second = audits()
    assert first.detail == {"latitude": [None, 13.7501], "longitude": [None, 100.4932]}
    assert second.detail == {"latitude": [13.7501, None], "longitude": [100.4932, None]}
    assert first.target == "camera:BACK" and first.user_id is not None


@pytest.mark.parametrize(("latitude", "longitude", "words"), [
    ("91", "100.5", "latitude must lie between -90 and 90"),
    ("-90.01", "100.5", "latitude must lie between -90 and 90"),
    ("13.7", "180.5", "longitude must lie between -180 and 180"),
    ("13.7", "", "give both latitude and longitude, or neither"),
    ("", "100.5", "give both latitude and longitude, or neither"),
    ("13,7", "100.5", "latitude is not a number"),
    ("north", "100.5", "latitude is not a number"),
    ("nan", "100.5", "latitude must lie between"),
    ("13.7", "inf", "longitude must lie between"),
])
def test_bad_coordinates_on_cameras_are_refused_clearly_and_change_nothing(app, users, latitude, longitude,
                                                                          words):
    add_cameras()
    operator = signed_in(app, "operator")
    answer = operator.post("/cameras/GATE-N/place", data={"latitude": latitude, "longitude": longitude,
                                                          "csrf_token": operator.token("/cameras")})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and 'id="place-error"' in html and words in html, html[-3000:]
    camera = fresh().get(Camera, "GATE-N")
    assert (camera.latitude, camera.longitude) == (13.7563, 100.5018)
    assert audits() == []


def test_the_api_keeps_a_camera_at_both_coordinates_or_neither(client, api_token):
    add_cameras()
    h = bearer(api_token)
    answer = client.patch("/api/cameras/BACK", json={"latitude": 13.7}, headers=h)
    error = answer.get_json()["error"]
    assert answer.status_code == 400 and error["field"] == "longitude" and "both" in error["message"]
    assert client.patch("/api/cameras/GATE-N", json={"latitude": None}, headers=h).status_code == 400
    assert client.patch("/api/cameras/GATE-N", json={"latitude": 13.76}, headers=h).status_code == 200  # moved
    cleared = client.patch("/api/cameras/GATE-N", json={"latitude": None, "longitude": None}, headers=h)
    assert cleared.status_code == 200 and (cleared.get_json()["latitude"], cleared.get_json()["longitude"]) == (
        None, None)
    assert fresh().get(Camera, "BACK").latitude is None
    assert [a.detail for a in audits()] == [{"latitude": [13.7563, 13.76]},
                                            {"latitude": [13.76, None], "longitude": [100.5018, None]}]


# --- MAP_TILE_URL: checked at start, in the CSP only when set ----------------------------------------


@pytest.mark.parametrize(("url", "words"), [
    ("ftp://tiles.example.org/{z}/{x}/{y}.png", "https:// or http://"),
    ("tiles.example.org/{z}/{x}/{y}.png", "https:// or http://"),
    ("https://tiles.example.org/{z}/{x}.png", "{y}"),
    ("https://tiles.example.org/tile.png", "{z}, {x}, {y}"),
    ("https://tiles.example.org; script-src */{z}/{x}/{y}.png", "plainly"),
    ("https://user@tiles.example.org/{z}/{x}/{y}.png", "plainly"),
    ("https://{z}.example.org/{z}/{x}/{y}.png", "plainly"),
])
def test_a_bad_map_tile_url_stops_the_start(base_env, url, words):
    with pytest.raises(ValueError, match="MAP_TILE_URL") as refused:
        config.TestingConfig({**base_env, "MAP_TILE_URL": url})
    assert words in str(refused.value)


def csp_of(app, path="/login") -> str:
    return app.test_client().get(path).headers["Content-Security-Policy"]


def map_config(html: str) -> dict:
    return json.loads(html.split('<script type="application/json" id="map-config">')[1].split("</script>")[0])


def img_src(policy: str) -> str:
    return next(part.strip() for part in policy.split(";") if part.strip().startswith("img-src"))


def test_tiles_are_allowed_in_the_csp_only_when_map_tile_url_is_set(app, base_env, users):
    assert img_src(csp_of(app)) == "img-src 'self' data: blob:"
    assert "script-src 'self';" in csp_of(app)
    tiled = create_app(config.TestingConfig({**base_env, "MAP_TILE_URL": TILES, "MAP_TILE_ATTRIBUTION": "© OSM"}))
    with tiled.app_context():
        assert img_src(csp_of(tiled)) == "img-src 'self' data: blob: https://*.tiles.example.org"
        page = signed_in(tiled, "viewer").get("/map").get_data(as_text=True)
        assert (map_config(page)["tile_url"], map_config(page)["tile_attribution"]) == (TILES, "© OSM")
    plain = create_app(config.TestingConfig({**base_env, "MAP_TILE_URL": "http://10.0.0.5:8080/{z}/{x}/{y}.png"}))
    with plain.app_context():
        assert img_src(csp_of(plain)) == "img-src 'self' data: blob: http://10.0.0.5:8080"
    assert map_config(signed_in(app, "viewer").get("/map").get_data(as_text=True))["tile_url"] == ""


def test_the_plate_page_links_to_the_map_only_with_a_placed_route(app, users):
    add_cameras()
    add_route()
    db.session.add(Record(camera_id="BACK", plate_number="ขค99", plate_normalized="ขค99",
                          captured_at=utcnow(), received_at=utcnow()))
    db.session.commit()
    viewer = signed_in(app, "viewer")
    html = viewer.get(f"/plates/{quote(PLATE)}").get_data(as_text=True)
    assert f'id="plate-map-link" href="/map?plate={quote(PLATE)}"' in html
    assert 'id="plate-map-link"' not in viewer.get(f"/plates/{quote('ขค99')}").get_data(as_text=True)


# --- in the browser ----------------------------------------------------------------------------------


def same_origin(webapp, urls: list[str]) -> list[str]:
    """The URLs that went to another origin than the web app's."""
    home = urlsplit(webapp.url)
    return [u for u in urls if not u.startswith(("data:", "blob:"))
            and (urlsplit(u).scheme.replace("ws", "http"), urlsplit(u).netloc) != (home.scheme, home.netloc)]


def open_map(page, webapp, path="/map") -> None:
    page.goto(f"{webapp.url}{path}")
    page.wait_for_selector("#live-state.online", state="attached", timeout=10_000)
    page.wait_for_selector('#map[data-ready="1"]', state="attached", timeout=10_000)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # Leaflet's fitBounds animation
    page.screenshot(path=str(SHOTS / f"map_{name}.png"), full_page=True)


def hide_popups(page) -> None:
    """Put the silent camera's live alert card aside so the screenshot shows the map."""
    page.locator("#alert-stack .lpr-alert").first.wait_for(state="attached", timeout=10_000)
    page.evaluate("() => { document.getElementById('alert-stack').hidden = true; }")


def marker_classes(page) -> dict[str, str]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('path.camera-marker')]
        .map((p) => [p.dataset.cameraId, p.getAttribute('class')]))""")


@pytest.fixture
def relay(webapp, base_env):
    """Live events from this process to the web app, signed as the daemon signs them."""
    return LiveRelay(f"{webapp.url}/internal/live", base_env["SECRET_KEY"]).start()


def test_the_map_shows_each_placed_camera_by_state_live_and_nothing_leaves_the_site(webapp, app, users, browser,
                                                                                   relay):
    add_cameras()
    context = browser.new_context(viewport=DESKTOP, locale="th-TH")
    page = context.new_page()
    errors: list[str] = []
    requests_made: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests_made.append(request.url))
    page.on("websocket", lambda socket: requests_made.append(socket.url))
    try:
        sign_in(page, webapp, "admin")
        page.click("#nav-cameras")
        page.click("#nav-map")
        page.wait_for_selector('#map[data-ready="1"]', state="attached", timeout=10_000)
        assert page.locator("#nav-cameras.active").count() == 1
        # The admin's navigation bar stays on one line at 1366 px.
        middles = page.evaluate("""() => [...document.querySelectorAll('#mainnav > ul > li, #live-state, #nav-account')]
            .map((el) => { const box = el.getBoundingClientRect(); return Math.round(box.top + box.height / 2); })""")
        assert max(middles) - min(middles) <= 4, middles

        classes = marker_classes(page)
        assert set(classes) == {"GATE-N", "GATE-S", "LOT-E"}
        assert "camera-online" in classes["GATE-N"] and "camera-offline" in classes["GATE-S"]
        assert "camera-silent" in classes["LOT-E"]
        assert page.locator("#map-unplaced-list .unplaced-camera").all_inner_texts() == ["ประตูหลัง"]
        assert page.locator(".leaflet-tile, .leaflet-tile-pane img").count() == 0
        assert page.locator(".leaflet-control-scale").count() == 1
        # Inside the map, the three dots (fitted to them); a click shows the camera.
        box = page.locator("#map").bounding_box()
        for dot in page.locator("path.camera-marker").all():
            d = dot.bounding_box()
            assert box["x"] <= d["x"] and d["x"] + d["width"] <= box["x"] + box["width"]
            assert box["y"] <= d["y"] and d["y"] + d["height"] <= box["y"] + box["height"]
        page.locator('path.camera-marker[data-camera-id="GATE-N"]').click()
        popup = page.locator(".leaflet-popup .map-popup")
        popup.wait_for()
        assert "ประตูเหนือ" in popup.inner_text() and "GATE-N" in popup.inner_text()
        assert "หน้าหอพัก" in popup.inner_text() and "ออนไลน์" in popup.inner_text()
        assert popup.locator('[data-field="records"]').get_attribute("href") == "/records?camera_id=GATE-N"
        hide_popups(page)
        shot(page, "desktop")

        # Live: the offline camera comes back, the silent one is heard from again, GATE-N reads.
        relay.publish("camera_status", camera_status("GATE-S", online=True))
        relay.publish("camera_status", camera_status("LOT-E", offline_alert_id=None))
        relay.publish("new_record", {"id": 10**6, "camera_id": "GATE-N", "received_at": utcnow().isoformat()})
        page.wait_for_function(
            """() => ['GATE-S', 'LOT-E'].every((id) => document.querySelector(
                `path.camera-marker[data-camera-id="${id}"]`).getAttribute('class').includes(
                id === 'GATE-S' ? 'camera-online' : 'camera-offline'))""", timeout=10_000)
        assert "อ่านวันนี้: 1" in popup.inner_text()

        page.set_viewport_size(PHONE)
        page.reload()
        page.wait_for_selector('#map[data-ready="1"]', state="attached", timeout=10_000)
        assert page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        hide_popups(page)
        shot(page, "phone")
    finally:
        context.close()
    assert errors == []
    assert requests_made and same_origin(webapp, requests_made) == [], same_origin(webapp, requests_made)


def test_a_plates_route_draws_numbered_stops_from_its_page(webapp, app, users, browser_page):
    add_cameras()
    stops = add_route()
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sign_in(page, webapp, "viewer")
    page.goto(f"{webapp.url}/plates/{quote(PLATE)}")
    page.click("#plate-map-link")
    page.wait_for_selector('#map[data-ready="1"]', state="attached", timeout=10_000)
    assert "plate=" in page.url
    assert page.locator("path.map-route-line").count() == 1
    # Four stops at three places: GATE-N holds the first and the last (×2).
    icons = page.locator(".map-stop-icon")
    assert sorted(icons.all_inner_texts()) == ["1, 4", "2", "3"]
    assert page.locator(".map-stop-icon.map-stop-last").inner_text() == "1, 4"
    listed = page.locator("#map-route-stops .route-stop")
    assert [li.get_attribute("data-camera-id") for li in listed.all()] == stops
    assert "×2" in listed.nth(3).inner_text()
    assert page.locator("#map-route-count").inner_text() == "4 จุด"
    page.locator(".map-stop-icon", has_text="3").click()
    assert "ลานจอดตะวันออก" in page.locator(".leaflet-popup .route-popup").inner_text()
    hide_popups(page)
    shot(page, "route_desktop")
    page.set_viewport_size(PHONE)
    open_map(page, webapp, f"/map?plate={quote(PLATE)}")
    hide_popups(page)
    shot(page, "route_phone")
    open_map(page, webapp, f"/map?plate={quote('ขค99')}")
    assert page.locator("#map-route-state").inner_text() == "ไม่พบทะเบียนนี้"


def test_markup_in_a_cameras_name_shows_as_text_on_the_map(webapp, app, users, browser_page):
    xss = "<img src=x onerror=alert(1)>"
    db.session.add(Camera(id="CAMX", name=xss, location=xss, latitude=13.75, longitude=100.5))
    db.session.add(Camera(id="CAMY", name=xss))
    db.session.commit()
    page = browser_page
    sign_in(page, webapp, "viewer")
    open_map(page, webapp)
    assert page.locator(".leaflet-tooltip.map-label").inner_text() == xss
    page.locator('path.camera-marker[data-camera-id="CAMX"]').click()
    assert page.locator(".leaflet-popup .map-popup").inner_text().count(xss) == 2
    assert page.locator("#map-unplaced-list").inner_text() == xss
    page.wait_for_timeout(300)
    assert page.query_selector("img[src='x']") is None
    # browser_page fails the test if an alert() opened or a script threw.


class _Tiles(http.server.BaseHTTPRequestHandler):
    """A tile server: the same JPEG for every tile, the paths asked for kept."""

    asked: list[str] = []
    tile = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.asked.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.tile)))
        self.end_headers()
        self.wfile.write(self.tile)

    def log_message(self, *args):
        pass


def test_with_map_tile_url_the_tiles_come_from_that_server_past_the_csp(base_env, app, users, browser,
                                                                        tmp_path):
    _Tiles.tile, _Tiles.asked = make_jpeg(256, 256, seed=3), []
    tiles = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tiles)
    threading.Thread(target=tiles.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{tiles.server_port}/{{z}}/{{x}}/{{y}}.jpg"
    web = WebApp({**base_env, "ASYNC_MODE": "gevent", "MAP_TILE_URL": url,
                  "MAP_TILE_ATTRIBUTION": "© test tiles <b>bold</b>"}, tmp_path / "web.log").start()
    add_cameras()
    context = browser.new_context(viewport=DESKTOP, locale="th-TH")
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)
    try:
        sign_in(page, web, "viewer")
        open_map(page, web)
        page.wait_for_function("() => document.querySelectorAll('img.leaflet-tile-loaded').length >= 4",
                               timeout=10_000)
        assert len(_Tiles.asked) >= 4 and all(path.endswith(".jpg") for path in _Tiles.asked)
        assert "© test tiles <b>bold</b>" in page.inner_text(".leaflet-control-attribution")
        assert page.locator(".leaflet-control-attribution b").count() == 0
        assert refused == []
        hide_popups(page)
        shot(page, "tiles_desktop")
    finally:
        context.close()
        web.stop()
        tiles.shutdown()


def test_an_operator_places_a_camera_on_cameras_and_it_joins_the_map(webapp, app, users, browser_page):
    add_cameras()
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sign_in(page, webapp, "operator")
    page.goto(f"{webapp.url}/cameras")
    row = page.locator('tr[data-camera-id="BACK"]')
    row.locator(".camera-place-edit summary").click()
    row.locator('input[name="latitude"]').fill("13.7700")
    row.locator('input[name="longitude"]').fill("200")
    row.locator(".camera-place-edit button[type=submit]").click()
    page.wait_for_selector("#place-error")
    assert "ลองจิจูดต้องอยู่ระหว่าง -180 ถึง 180" in page.inner_text("#place-error")  # the browser asks for Thai
    assert page.locator('tr[data-camera-id="BACK"] input[name="longitude"]').input_value() == "200"
    shot(page, "cameras_place_error")
    page.locator('tr[data-camera-id="BACK"] input[name="longitude"]').fill("100.52")
    page.locator('tr[data-camera-id="BACK"] .camera-place-edit button[type=submit]').click()
    page.wait_for_selector(".alert-success")
    assert "13.77, 100.52" in page.inner_text('tr[data-camera-id="BACK"] .camera-coords')
    open_map(page, webapp)
    assert set(marker_classes(page)) == {"GATE-N", "GATE-S", "LOT-E", "BACK"}
    assert page.locator("#map-unplaced-count").inner_text() == "0"
