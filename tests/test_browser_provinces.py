"""Provinces and the similar search in a real headless Chromium: the records page's filters and the
record page at desktop and phone sizes, the dashboard's live feed and live rows on a filtered records page."""

import time

import pytest

from lprserver.extensions import db
from lprserver.models import Camera, Record, utcnow
from lprserver.plates import parse_plate

from .test_browser import ONE_DAEMON, open_page
from .test_ingest import camera
from .webserver import screenshot, sign_in

SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


def add_record(plate, province=None, camera_id="CAM001"):
    if db.session.get(Camera, camera_id) is None:
        db.session.add(Camera(id=camera_id, name="ประตูหน้า"))
        db.session.flush()
    parsed = parse_plate(plate, province)
    now = utcnow()
    record = Record(camera_id=camera_id, plate_number=plate, plate_normalized=parsed.normalized,
                    province=parsed.province, province_code=parsed.province_code, plate_format=parsed.format,
                    captured_at=now, received_at=now, location="ลานจอด")
    db.session.add(record)
    db.session.flush()
    return record


def overflows(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")


@pytest.mark.parametrize("size", SIZES)
def test_records_and_record_page_show_province_and_code_and_fit(webapp, app, users, browser, size):
    for plate, province in (("กข 1234 กรุงเทพมหานคร", None), ("กช1234", "BANGKOK"), ("กข1284", "TH-10"),
                            ("กข1234", "เชียงใหม่"), ("ขก1234", "กรุงเทพมหานคร"), ("กข1235", "ไม่ทราบ")):
        add_record(plate, province)
    db.session.commit()
    context = browser.new_context(viewport=SIZES[size], locale="th-TH")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, webapp, "viewer")
        open_page(page, webapp, "/records")
        page.fill("#plate", "กข 1234")
        page.select_option("select[name=plate_mode]", "similar")
        page.select_option("#province_code", "TH-10")
        page.click("#record-filter button[type=submit]")
        page.wait_for_url("**province_code=TH-10**")
        plates = sorted(page.locator("#records-body a.plate").all_inner_texts())
        assert plates == ["กข 1234 กรุงเทพมหานคร", "กข1284", "กช1234"]
        assert set(page.locator("#records-body td.province").all_inner_texts()) == {"กรุงเทพมหานคร · TH-10"}
        assert page.input_value("#province_code") == "TH-10" and page.input_value("select[name=plate_mode]") == "similar"
        assert not overflows(page)
        screenshot(page, f"records-similar-province-{size}")
        page.goto(f"{webapp.url}/records?province_code=TH-99")
        assert "TH-99" in page.inner_text(".filter-form .alert-warning")
        page.goto(f"{webapp.url}/records?plate=กข1235&plate_mode=exact")
        assert page.inner_text("#records-body td.province") == "ไม่ทราบ"
        page.click("#records-body a.plate")
        page.wait_for_url("**/records/*")
        assert page.inner_text("#record-province") == "ไม่ทราบ"
        page.goto(f"{webapp.url}/records?plate=กช1234&plate_mode=exact")
        page.click("#records-body a.plate")
        page.wait_for_url("**/records/*")
        assert page.inner_text("#record-province") == "กรุงเทพมหานคร · TH-10"
        assert "th_car" in page.inner_text(".record-fields")
        assert not overflows(page)
        screenshot(page, f"record-province-{size}")
    finally:
        context.close()
    assert errors == []


@ONE_DAEMON
def test_live_reads_show_their_province_and_follow_the_province_filter(webapp, live_daemon, users, browser_page):
    page = browser_page
    sign_in(page, webapp, "viewer")
    open_page(page, webapp, "/dashboard")
    records = page.context.new_page()
    open_page(records, webapp, "/records?plate=กช1234&plate_mode=similar&province_code=TH-50")
    sent = {}
    with camera(live_daemon) as cam:
        cam.call("camera_register", {"camera_id": "GATE7", "name": "ประตูข้าง"}, timeout=10)
        for plate, province in (("กข 1234 เชียงใหม่", None), ("กข1234", "กรุงเทพมหานคร"), ("กข1299", "CHIANG MAI"),
                                ("กข1236", "ไม่ทราบ"), ("1กข1234", "TH-50")):
            payload = {"camera_id": "GATE7", "plate_number": plate, "confidence": 90}
            if province:
                payload["province"] = province
            sent[plate] = cam.call("lpr_data", payload, timeout=10)["record_id"]
            time.sleep(0.05)
    for plate, shown in (("กข 1234 เชียงใหม่", "เชียงใหม่ · TH-50"), ("กข1234", "กรุงเทพมหานคร · TH-10"),
                         ("กข1236", "ไม่ทราบ")):
        item = page.wait_for_selector(f"#live-feed li[data-record-id='{sent[plate]}']", timeout=5000)
        assert item.query_selector(".province").inner_text() == shown
    records.wait_for_selector(f"#records-body tr[data-record-id='{sent['1กข1234']}']", timeout=5000)
    live = records.locator("#records-body tr").evaluate_all("rows => rows.map(r => Number(r.dataset.recordId))")
    assert sorted(live) == sorted([sent["กข 1234 เชียงใหม่"], sent["1กข1234"]])  # similar, and in Chiang Mai
    assert set(records.locator("#records-body td.province").all_inner_texts()) == {"เชียงใหม่ · TH-50"}
    screenshot(records, "records-live-province-filter")
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        for _ in range(50):  # the charts redraw at the new size when Chart.js's resize observer fires
            page.wait_for_timeout(100)
            if not overflows(page):
                break
        feed = page.locator("#live-feed")
        assert feed.evaluate("f => f.scrollWidth <= f.clientWidth"), size
        assert not overflows(page), (size, page.evaluate("""[...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 12)"""))
        screenshot(page, f"dashboard-live-provinces-{size}")
