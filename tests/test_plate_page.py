"""A plate's page and GET /api/plates/<plate> (SPEC §10): counts, cameras, the lists naming it,
corrections, sightings newest first with keyset paging, the route, and links to it from every page."""

import re
import time
from datetime import timedelta
from urllib.parse import quote

import pytest

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.models import Camera, KnownGroup, KnownPlate, Record, utcnow

from .conftest import bearer
from .imagegen import data_uri, make_jpeg
from .test_browser_provinces import SIZES, overflows
from .webserver import PageClient, screenshot, sign_in

PLATE = "กข1234"
CAMERAS = {"GATE-N": ("ประตูเหนือ", 13.7563, 100.5018), "GATE-S": ("ประตูใต้", 13.7400, 100.5100),
           "LOT-E": ("ลานจอดตะวันออก", 13.7480, 100.5300)}
# The plate's reads in time order: stops GATE-N×3, GATE-S×2, LOT-E×4, GATE-N×1, GATE-S×5, LOT-E×6, GATE-N×6.
VISITS = [("GATE-N", 3), ("GATE-S", 2), ("LOT-E", 4), ("GATE-N", 1), ("GATE-S", 5), ("LOT-E", 6), ("GATE-N", 6)]
READS = sum(n for _, n in VISITS)  # 27
PLATE_URL = "/plates/" + quote(PLATE)
API_URL = "/api" + PLATE_URL


def ingest(client, camera_id, plate_text, images=False, **fields):
    body = {"camera_id": camera_id, "plate_number": plate_text, "confidence": 91.5, **fields}
    if images:
        body["image_data"] = data_uri(make_jpeg(320, 240, seed=len(plate_text)))
    answer = client.post("/api/records", json=body)
    assert answer.status_code in (200, 201), answer.get_json()
    return answer.get_json()["record_id"]


@pytest.fixture
def sightings(app, client):
    """The plate read 27 times at 3 cameras (written four ways), among reads of other plates; returns
    the plate's record ids in the order they were read."""
    for camera_id, (name, lat, lon) in CAMERAS.items():
        db.session.add(Camera(id=camera_id, name=name, latitude=lat, longitude=lon))
    db.session.commit()
    ids, spellings = [], ["กข 1234", "กข1234", "กข-1234 กรุงเทพมหานคร", "กข๑๒๓๔"]
    for camera_id, count in VISITS:
        for _ in range(count):
            ids.append(ingest(client, camera_id, spellings[len(ids) % 4], images=len(ids) >= READS - 8))
            if len(ids) % 5 == 0:
                ingest(client, camera_id, "ขค 999")
    return ids


def api(client, token, path=API_URL, **query):
    return client.get(path, query_string=query, headers=bearer(token))


def test_the_api_answers_counts_cameras_sightings_and_route(client, make_token, sightings):
    token = make_token("viewer", "read")
    answer = api(client, token)
    assert answer.status_code == 200, answer.get_json()
    h = answer.get_json()
    # The province is the newest read's (it named Bangkok).
    assert (h["plate"], h["reads"], h["province"], h["province_code"]) == (PLATE, READS, "กรุงเทพมหานคร", "TH-10")
    first = db.session.get(Record, sightings[0])
    last = db.session.get(Record, sightings[-1])
    assert (h["first_record_id"], h["last_record_id"]) == (sightings[0], sightings[-1])
    assert h["first_seen"] == first.received_at.isoformat() and h["last_seen"] == last.received_at.isoformat()
    assert {c["camera_id"]: c["reads"] for c in h["cameras"]} == {"GATE-N": 10, "GATE-S": 7, "LOT-E": 10}
    north = next(c for c in h["cameras"] if c["camera_id"] == "GATE-N")
    assert (north["name"], north["latitude"], north["longitude"]) == ("ประตูเหนือ", 13.7563, 100.5018)
    assert north["last_seen"] == last.received_at.isoformat()
    # Sightings: newest first, 50 by default (all 27 here), thumbnails for the reads that came with images.
    assert [s["record_id"] for s in h["sightings"]] == sightings[::-1] and h["next_before_id"] is None
    newest = h["sightings"][0]
    assert newest["thumbnail_url"] == f"/api/records/{sightings[-1]}/thumbnail"
    assert (newest["camera_id"], newest["camera_name"], newest["confidence"]) == ("GATE-N", "ประตูเหนือ", 91.5)
    assert h["sightings"][-1]["thumbnail_url"] is None
    image = client.get(newest["thumbnail_url"], headers=bearer(token))
    assert image.status_code == 200
    image.close()
    # The route: time order, consecutive reads at one camera as one stop, placed at the camera.
    assert [(s["camera_id"], s["reads"]) for s in h["route"]] == VISITS
    assert h["route_sightings"] == READS
    assert h["route"][0]["first_record_id"] == sightings[0] and h["route"][-1]["last_record_id"] == sightings[-1]
    assert (h["route"][2]["latitude"], h["route"][2]["longitude"]) == (13.7480, 100.5300)
    times = [(s["first_seen"], s["last_seen"]) for s in h["route"]]
    assert all(a <= b for a, b in times) and [t[0] for t in times] == sorted(t[0] for t in times)
    assert h["blacklisted"] is False and h["known"] is None
    assert h["entries"] == {"blacklist": [], "known": []} and h["corrections"] == []


def test_sightings_page_with_before_id(client, make_token, sightings):
    token = make_token("viewer", "read")
    seen, before = [], None
    for expected in (10, 10, 7):
        query = {"per_page": 10, **({"before_id": before} if before else {})}
        h = api(client, token, **query).get_json()
        assert len(h["sightings"]) == expected
        seen += [s["record_id"] for s in h["sightings"]]
        before = h["next_before_id"]
        assert h["reads"] == READS  # the summary is the same on every page
    assert before is None and seen == sightings[::-1]
    # A deep page starts below the id given; past the oldest there is nothing more.
    h = api(client, token, before_id=sightings[3], per_page=200).get_json()
    assert [s["record_id"] for s in h["sightings"]] == sightings[:3][::-1] and h["next_before_id"] is None
    assert api(client, token, before_id=sightings[0]).get_json()["sightings"] == []


@pytest.mark.parametrize("query", [{"per_page": 0}, {"per_page": 201}, {"before_id": -1}, {"before_id": "x"},
                                   {"per_page": "many"}])
def test_bad_paging_is_a_validation_error(client, make_token, sightings, query):
    answer = api(client, make_token("viewer", "read"), **query)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "validation_error"


def test_the_path_is_normalised_and_an_unknown_plate_is_404(client, users, make_token, sightings):
    token = make_token("viewer", "read")
    for spelling in ("กข 1234", "กข-1234", "กข1234 กรุงเทพมหานคร", "กข๑๒๓๔", "กข 1234 กทม"):
        answer = api(client, token, "/api/plates/" + quote(spelling))
        assert answer.status_code == 200 and answer.get_json()["plate"] == PLATE, spelling
    for path in ("/api/plates/" + quote("กข9999"), "/api/plates/---", "/api/plates/" + "A" * 33,
                 "/api/plates/" + quote("\u200b"), "/api/plates/AB/12", "/api/plates/%00"):
        answer = api(client, token, path)
        assert answer.status_code == 404, path
        assert answer.get_json()["error"]["code"] == "not_found", path
    browser = signed_in("viewer")
    page = browser.get("/plates/" + quote("กข9999"))
    assert page.status_code == 404 and "No reads of this plate" in page.get_data(as_text=True)
    assert browser.get("/plates/" + quote("กข-1234")).status_code == 200
    assert browser.get("/plates/" + "A" * 40).status_code == 404


def test_lists_naming_the_plate_and_a_correction(client, users, make_token, sightings):
    token = make_token("viewer", "read")
    now = utcnow()
    exact = add_entry(db.session, "กข 1234", reason="ขโมย", category="stolen", added_by="t")
    lookalike = add_entry(db.session, "กช1234", reason="look", category="watch", match="lookalike")
    expired = add_entry(db.session, "กข1234", reason="old", expires_at=now + timedelta(seconds=1))
    add_entry(db.session, "กข5678", reason="another plate")
    db.session.add(KnownGroup(name="residents"))
    db.session.flush()
    db.session.add(KnownPlate(plate="กข 1234", plate_normalized=PLATE, name="คุณสมชาย", group_name="residents"))
    db.session.add(KnownGroup(name="staff"))
    db.session.flush()
    db.session.add(KnownPlate(plate="กข1234", plate_normalized=PLATE, name="old staff", group_name="staff",
                              valid_until=now - timedelta(days=1)))
    db.session.commit()
    # A misread corrected onto the plate counts under it, and not under what the camera sent.
    misread_id = ingest(client, "LOT-E", "กข 1284")
    db.session.commit()
    misread = db.session.get(Record, misread_id)
    misread.plate_normalized, misread.plate_corrected = PLATE, "กข 1234"
    misread.corrected_by, misread.corrected_at = "operator", utcnow()
    expired.expires_at = now - timedelta(days=1)
    db.session.commit()
    h = api(client, token).get_json()
    assert h["reads"] == READS + 1 and h["sightings"][0]["record_id"] == misread_id
    assert h["corrections"] == [{"record_id": misread_id, "plate_number": "กข 1284", "plate_corrected": "กข 1234",
                                 "corrected_by": "operator", "corrected_at": misread.corrected_at.isoformat()}]
    assert api(client, token, "/api/plates/" + quote("กข1284")).status_code == 404
    entries = {e["id"]: e for e in h["entries"]["blacklist"]}
    assert set(entries) == {exact.id, lookalike.id, expired.id}
    assert (entries[exact.id]["match_type"], entries[exact.id]["in_force"]) == ("exact", True)
    assert (entries[lookalike.id]["match_type"], entries[lookalike.id]["in_force"]) == ("lookalike", True)
    assert entries[expired.id]["in_force"] is False
    assert h["blacklisted"] is True
    assert h["known"]["name"] == "คุณสมชาย" and h["known"]["group"] == "residents"
    assert [(k["name"], k["current"]) for k in h["entries"]["known"]] == [("คุณสมชาย", True), ("old staff", False)]
    html = signed_in("viewer").get(PLATE_URL).get_data(as_text=True)
    assert 'id="plate-blacklisted"' in html and "คุณสมชาย · residents" in html
    assert "ขโมย" in html and "look" in html and "expired 20" in html
    assert f'href="/records/{misread_id}">#{misread_id}</a>' in html and "กข 1284" in html


def test_the_page_shows_sightings_route_and_pages_older(client, users, sightings):
    browser = signed_in("viewer")
    answer = browser.get(PLATE_URL)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert re.search(r'id="plate-title">กข1234<', html)
    assert re.findall(r'data-count="reads">([^<]+)<', html) == ["27"]
    cards = re.findall(r'class="sighting card[^"]*" href="/records/(\d+)"', html)
    assert [int(i) for i in cards] == sightings[::-1]
    assert html.count('class="sighting-thumb" loading="lazy" src="/api/records/') == 8
    stops = re.findall(r'<li class="route-stop" data-camera-id="([^"]+)"', html)
    assert stops == [camera_id for camera_id, _ in VISITS]
    assert 'id="route-sketch"' in html and html.count('<g class="route-dot') == 3
    assert 'id="sightings-older"' not in html  # 27 fit on one page
    for camera_id, (name, _, _) in CAMERAS.items():
        assert name in html and f'data-camera-id="{camera_id}"' in html


def test_many_sightings_page_older_with_before_id(client, users):
    db.session.add(Camera(id="CAM1", name="ประตู"))
    now = utcnow()
    db.session.add_all([Record(camera_id="CAM1", plate_number="ABC123", plate_normalized="ABC123",
                               captured_at=now, received_at=now + timedelta(seconds=n)) for n in range(120)])
    db.session.commit()
    browser = signed_in("operator")
    html = browser.get("/plates/abc-123").get_data(as_text=True)
    assert len(re.findall(r'class="sighting card', html)) == 50
    older = re.search(r'id="sightings-older" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "before_id=" in older
    html = browser.get(older).get_data(as_text=True)
    assert len(re.findall(r'class="sighting card', html)) == 50 and 'id="sightings-newest"' in html
    assert 'No coordinates' in html  # the camera has none: the route is a list only
    assert browser.get("/plates/ABC123?before_id=junk").status_code == 200


def test_pages_link_plates_to_their_page(client, users, sightings):
    add_entry(db.session, "กข 1234", reason="wanted", category="wanted")
    db.session.commit()
    hit_id = ingest(client, "GATE-N", "กข 1234")
    browser = signed_in("operator")
    link = f'href="{PLATE_URL}"'
    for path in ("/records", f"/records/{hit_id}", "/", "/blacklist", "/dashboard"):
        html = browser.get(path).get_data(as_text=True)
        if path == "/dashboard":  # the feed and the top plates are drawn by dashboard.js
            continue
        assert link in html, path
    other = browser.get("/records?plate=ขค999&plate_mode=exact").get_data(as_text=True)
    assert 'href="/plates/' + quote("ขค999") + '"' in other


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_role_reads_the_page_and_the_api(client, users, sightings, role):
    browser = signed_in(role)
    assert browser.get(PLATE_URL).status_code == 200
    assert browser.get(API_URL).status_code == 200


def test_strangers_and_tokens(client, make_token, sightings):
    page = client.get(PLATE_URL)
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    answer = client.get(API_URL)
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "unauthorized"
    token = make_token("viewer", "read")
    assert api(client, token).status_code == 200
    page = client.get(PLATE_URL, headers=bearer(token))
    assert page.status_code == 302 and "/login" in page.headers["Location"]  # a token opens no page
    assert client.get("/api/plates/" + quote("กข9999")).status_code == 401  # no plate is revealed to strangers


def test_the_plate_path_is_in_the_openapi_document(client):
    spec = client.get("/api/openapi.json").get_json()
    item = spec["paths"]["/api/plates/{plate}"]
    path = item["get"]
    names = {p["name"] for p in path["parameters"] + item.get("parameters", [])}
    assert names >= {"plate", "before_id", "per_page"}
    assert "200" in path["responses"] and "404" in path["responses"]


def signed_in(role):
    from flask import current_app

    browser = PageClient(current_app._get_current_object())
    assert browser.login(role).status_code == 302
    return browser


@pytest.mark.parametrize("size", SIZES)
def test_the_plate_page_in_a_browser(webapp, app, client, users, browser, sightings, size):
    context = browser.new_context(viewport=SIZES[size], locale="th-TH")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, webapp, "viewer")
        page.goto(f"{webapp.url}/records?plate={quote(PLATE)}&plate_mode=exact")
        page.click("#records-body a.plate-page >> nth=0")
        page.wait_for_url(f"**{PLATE_URL}")
        assert page.inner_text("#plate-title") == PLATE
        assert page.locator(".sighting").count() == READS
        assert page.locator("#route-stops li").count() == len(VISITS)
        # The thumbnails load lazily: the newest ones show once the grid is in view.
        page.locator("#plate-sightings").scroll_into_view_if_needed()
        loaded = "[...document.querySelectorAll('img.sighting-thumb')].slice(0, 2).every(i => i.complete && " \
                 "i.naturalWidth > 0)"
        deadline = time.monotonic() + 10
        while not page.evaluate(loaded) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert page.evaluate(loaded)
        assert not overflows(page)
        screenshot(page, f"plate-page-{size}")
        page.click(f".sighting[data-record-id='{sightings[-1]}']")
        page.wait_for_url(f"**/records/{sightings[-1]}")
        page.click(".record-plate a.plate-link")
        page.wait_for_url(f"**{PLATE_URL}")
    finally:
        context.close()
    assert errors == []
