"""Silent cameras and repeated alerts on screen (SPEC §11), in a real headless Chromium: the camera_offline
card, the /cameras badge and the dashboard's count follow the live events, and the camera's next read
resolves them; a repeated alert's card shows ×N."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lprserver.camera_offline import check_silent_cameras
from lprserver.extensions import db
from lprserver.live import LiveRelay
from lprserver.models import Alert, Camera, utcnow

from .test_alerts_api import gate_with_list
from .test_ingest import camera, fresh, wait_until
from .webserver import screenshot, sign_in

ONE_DAEMON = pytest.mark.parametrize("live_daemon", ["gevent"], indirect=True)
SHOTS = Path("/work/notes/shots")
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def relay(webapp, base_env):
    """Live events from this process to the web app, signed as the daemon signs them."""
    return LiveRelay(f"{webapp.url}/internal/live", base_env["SECRET_KEY"]).start()


def quiet_cameras() -> None:
    """A camera last heard from an hour ago, and one heard from just now."""
    now = utcnow()
    db.session.add(Camera(id="BACK-GATE", name="ประตูหลัง", location="ลานจอดรถ", last_seen=now - timedelta(hours=1)))
    db.session.add(Camera(id="FRONT", name="ประตูหน้า", last_seen=now))
    db.session.commit()


def go_silent(relay: LiveRelay) -> Alert:
    """The silence check the daemon runs (CAMERA_OFFLINE_MINUTES=10), its events relayed live."""
    events = check_silent_cameras(db.session, utcnow(), 10, "Asia/Bangkok")
    db.session.commit()
    assert [event for event, _ in events] == ["alert", "camera_status"]
    for event, data in events:
        relay.publish(event, data)
    return db.session.get(Alert, events[0][1]["id"])


def shot(page, name: str) -> None:
    page.wait_for_timeout(300)  # the charts redraw after a change of viewport: not half-drawn
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    screenshot(page, name)


def read_from(daemon, camera_id: str) -> dict:
    with camera(daemon) as sio:
        return sio.call("lpr_data", {"camera_id": camera_id, "plate_number": "กข1234"}, timeout=10)


@ONE_DAEMON
def test_a_silent_camera_shows_live_on_cameras_and_its_next_read_resolves_it(webapp, live_daemon, app, users,
                                                                            browser_page, relay):
    quiet_cameras()
    page = browser_page
    sign_in(page, webapp, "operator")
    page.goto(f"{webapp.url}/cameras")
    page.wait_for_selector("#live-state.online", state="attached", timeout=10_000)
    badge = page.locator('tr[data-camera-id="BACK-GATE"] .camera-silent')
    assert badge.is_hidden()
    alert = go_silent(relay)
    card = page.locator('.lpr-alert[data-trigger="camera_offline"]')
    card.wait_for(timeout=10_000)
    badge.wait_for(state="visible", timeout=10_000)
    assert badge.text_content() == "เงียบ"
    assert page.locator('tr[data-camera-id="FRONT"] .camera-silent').is_hidden()
    assert card.locator(".alert-head-label").text_content() == "กล้องออฟไลน์"
    assert card.locator(".alert-plate").text_content() == "ประตูหลัง"
    assert card.locator('[data-field="camera"]').text_content() == "ประตูหลัง (BACK-GATE)"
    silent_since = card.locator(".alert-match").text_content()
    assert silent_since.startswith("เงียบตั้งแต่ 20") and len(silent_since) > 30
    assert card.locator('[data-field="link"]').get_attribute("href") == "/cameras"
    assert card.locator(".alert-image").is_hidden() and card.locator('[data-field="location"]').is_hidden()
    shot(page, "cameras_offline")
    # A page opened now shows both from the database: the badge from the camera, the card as missed.
    page.reload()
    page.wait_for_selector("#live-state.online", state="attached", timeout=10_000)
    card.wait_for(timeout=10_000)
    assert badge.is_visible()
    page.set_viewport_size(PHONE)
    shot(page, "cameras_offline_phone")
    page.set_viewport_size({"width": 1440, "height": 1000})
    # The camera reads again: the daemon resolves the alert, and the page follows.
    assert read_from(live_daemon, "BACK-GATE")["status"] == "success"
    page.locator('.lpr-alert[data-trigger="camera_offline"].resolved').wait_for(timeout=10_000)
    badge.wait_for(state="hidden", timeout=10_000)
    assert card.locator(".alert-head-label").text_content() == "กล้องกลับมาแล้ว"
    assert card.locator('[data-field="acked"]').text_content().startswith("✔ คลี่คลายแล้ว ")
    shot(page, "cameras_offline_resolved")
    stored = fresh().get(Alert, alert.id)
    assert stored.resolved_at is not None and fresh().get(Camera, "BACK-GATE").offline_alert_id is None
    # The operator acknowledges it: the card goes.
    card.locator(".btn-ack").click()
    page.locator('.lpr-alert[data-trigger="camera_offline"].acknowledged').wait_for(timeout=10_000)
    assert wait_until(lambda: fresh().get(Alert, alert.id).acknowledged_at is not None)


@ONE_DAEMON
def test_the_dashboard_counts_silent_cameras_live(webapp, live_daemon, app, users, browser_page, relay):
    quiet_cameras()
    page = browser_page
    sign_in(page, webapp, "viewer")
    page.goto(f"{webapp.url}/dashboard")
    page.wait_for_selector("#live-state.online", state="attached", timeout=10_000)
    count = page.locator('#cameras-silent [data-counter="cameras_silent"]')
    assert count.text_content() == "0"
    go_silent(relay)
    expect(count).to_have_text("1", timeout=10_000)
    expect(page.locator("#cameras-silent")).to_have_class(re.compile(r"\btext-danger\b"))
    page.locator('.lpr-alert[data-trigger="camera_offline"]').wait_for(timeout=10_000)
    assert page.locator(".lpr-alert .btn-ack").count() == 0  # a viewer cannot acknowledge
    shot(page, "dashboard_offline")
    page.set_viewport_size(PHONE)
    # Once the charts have followed the new width, nothing is wider than the phone.
    page.wait_for_function("(width) => document.documentElement.scrollWidth <= width", arg=PHONE["width"],
                           timeout=5_000)
    shot(page, "dashboard_offline_phone")
    page.set_viewport_size({"width": 1440, "height": 1000})
    assert read_from(live_daemon, "BACK-GATE")["status"] == "success"
    expect(count).to_have_text("0", timeout=10_000)
    expect(page.locator("#cameras-silent")).to_have_class(re.compile(r"\btext-secondary\b"))


@ONE_DAEMON
def test_a_repeated_alert_shows_how_many_times_it_came(webapp, live_daemon, app, users, browser_page):
    gate_with_list()
    page = browser_page
    sign_in(page, webapp, "operator")
    with camera(live_daemon) as sio:
        for _ in range(3):  # the same plate at the same gate within ALERT_REPEAT_SECONDS: one alert
            assert sio.call("lpr_data", {"camera_id": "DORM", "plate_number": "ขค 555"}, timeout=10)["status"] == "success"
    card = page.locator('.lpr-alert[data-trigger="not_on_list"]')
    card.wait_for(timeout=10_000)
    expect(card.locator(".alert-count")).to_have_text("×3", timeout=10_000)
    assert page.locator('.lpr-alert[data-trigger="not_on_list"]').count() == 1
    alert = fresh().scalar(select(Alert).where(Alert.trigger == "not_on_list"))
    assert alert.repeat_count == 3
    # A page opened later has one event of the alert, with its repeat count.
    page.goto(f"{webapp.url}/records")
    expect(card.locator(".alert-count")).to_have_text("×3", timeout=10_000)
    shot(page, "alert_repeat_count")
