"""The /alerts page in headless Chromium (SPEC §11): an admin adds, changes and deletes a rule through the
form, sets a channel's token (shown masked, never in the page's source); an operator acknowledges an alert
and has no rule form; the delivery log lists attempts. Screenshots at desktop and phone sizes.
The browser asks for Thai (locale th-TH), so the page's words are checked in Thai (SPEC §13)."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from lprserver.extensions import db
from lprserver.models import (
    Alert,
    AlertAttempt,
    AlertDelivery,
    AlertRule,
    AuditEntry,
    Camera,
    ChannelSetting,
    utcnow,
)

from .test_browser import open_page
from .webserver import sign_in

SHOTS = Path("/work/notes/shots")
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SECRET = "LineChannelToken-0123456789abcdefXYZ9"


def fresh():
    db.session.rollback()
    return db.session


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"alerts_{name}.png"), full_page=True)


def hide_popups(page, card: bool = True) -> None:
    """Put the live pop-up (SPEC §5: the open camera_offline alert's card) aside so the screenshot shows
    the page; `card`: wait for the card first, which comes once the live channel is up."""
    if card:
        page.locator("#alert-stack .lpr-alert").first.wait_for(state="attached", timeout=10_000)
    page.evaluate("() => { document.getElementById('alert-stack').hidden = true; }")


def fits(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.fixture
def alerts(app, users) -> dict[str, int]:
    """Two alerts, one delivered to e-mail and one that failed, with their attempts."""
    now = utcnow()
    db.session.add(Camera(id="GATE1", name="ประตูหน้า", created_at=now))
    hit = Alert(trigger="blacklist", plate="กข1234", camera_id="GATE1", created_at=now - timedelta(minutes=3),
                repeat_count=3, last_at=now - timedelta(minutes=1), detail={"category": "stolen"})
    offline = Alert(trigger="camera_offline", camera_id="GATE1", created_at=now - timedelta(minutes=2))
    db.session.add_all([hit, offline])
    db.session.flush()
    sent = AlertDelivery(alert_id=hit.id, channel="email:ops@example.org", status="delivered", attempts=1,
                         created_at=now)
    failed = AlertDelivery(alert_id=offline.id, channel=f"line:U{'ab' * 16}", status="failed", attempts=2,
                           created_at=now)
    db.session.add_all([sent, failed])
    db.session.flush()
    db.session.add_all([
        AlertAttempt(delivery_id=sent.id, alert_id=hit.id, channel=sent.channel, at=now - timedelta(seconds=50),
                     ok=True),
        AlertAttempt(delivery_id=failed.id, alert_id=offline.id, channel=failed.channel,
                     at=now - timedelta(seconds=40), ok=False, error="LINE answered 401: the token is not valid"),
    ])
    db.session.commit()
    return {"hit": hit.id, "offline": offline.id}


def test_an_admin_manages_rules_and_channel_settings(webapp, alerts, browser):
    context = browser.new_context(viewport=DESKTOP, locale="th-TH")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        sign_in(page, webapp, "admin")
        open_page(page, webapp, "/alerts")
        assert page.locator("#nav-alerts.active").count() == 1

        # The delivery log, newest first, and the queue.
        log = page.locator("#attempts-table tbody tr")
        assert log.count() == 2
        assert "ไม่สำเร็จ" in log.nth(0).inner_text() and "token is not valid" in log.nth(0).inner_text()
        assert "email:ops@example.org" in log.nth(1).inner_text() and "ส่งแล้ว" in log.nth(1).inner_text()
        assert page.locator('[data-queue="failed"] strong').inner_text() == "1"
        row = page.locator(f'tr[data-alert-id="{alerts["hit"]}"]')
        assert "×3" in row.inner_text() and "กข1234" in row.inner_text()

        # A refused rule: each message under its field, nothing stored.
        page.select_option("#rule-trigger", "blacklist")
        page.fill("#rule-hours", "25:00-06:00")
        page.click("#rule-save")
        page.locator('[data-error-for="hours"].d-block').wait_for()
        assert "HH:MM-HH:MM" in page.inner_text('[data-error-for="hours"]')
        # The page is in Thai (the browser asks for it): its own words for the field, the API's as the tooltip.
        assert "ระบุช่องทางอย่างน้อยหนึ่งช่องทาง" in page.inner_text('[data-error-for="channels"]')
        assert "non-empty list" in page.get_attribute('[data-error-for="channels"]', "title")
        assert page.locator("#rule-channels.is-invalid").count() == 1

        # A good one: listed once the page reloads.
        page.fill("#rule-hours", "22:00-06:00")
        page.fill("#rule-cameras", "GATE1")
        page.check("#rule-cat-stolen")
        page.fill("#rule-channels", "email:ops@example.org\nmqtt")
        page.fill("#rule-escalate-after", "5")
        page.fill("#rule-escalate-to", "email:chief@example.org")
        page.fill("#rule-description", "เวรกลางคืน")
        page.click("#rule-save")
        page.locator("#rules-table tr[data-rule-id]").wait_for()
        listed = page.locator("#rules-table tr[data-rule-id]").inner_text()
        assert "22:00-06:00" in listed and "email:chief@example.org" in listed and "เวรกลางคืน" in listed

        # Edit it: the form is filled from the rule; a camera_offline rule sends no categories.
        page.click(".btn-edit-rule")
        assert page.input_value("#rule-channels") == "email:ops@example.org\nmqtt"
        assert page.is_checked("#rule-cat-stolen")
        page.select_option("#rule-trigger", "camera_offline")
        assert page.locator("#rule-categories-group").is_hidden()
        page.fill("#rule-hours", "")
        page.click("#rule-save")
        page.locator("#rules-table tr[data-rule-id]", has_text="ทั้งวัน").wait_for()
        rule = fresh().scalars(select(AlertRule)).one()
        assert (rule.trigger, rule.hours, rule.categories, rule.escalate_after_minutes) == \
            ("camera_offline", None, [], 5)

        # A channel's token: shown by its last 4 characters only, never in the page's source.
        page.fill("#setting-LINE_CHANNEL_TOKEN", SECRET)
        page.click('[data-setting="LINE_CHANNEL_TOKEN"] button[value=save]')
        page.wait_for_url(f"{webapp.url}/alerts#channel-settings")
        setting = page.locator('[data-setting="LINE_CHANNEL_TOKEN"]')
        assert "ตั้งที่นี่" in setting.inner_text() and "••••XYZ9" in setting.inner_text()
        assert page.input_value("#setting-LINE_CHANNEL_TOKEN") == ""
        assert SECRET not in page.content() and SECRET[:-4] not in page.content()
        assert fresh().get(ChannelSetting, "LINE_CHANNEL_TOKEN").value == SECRET
        assert fits(page)
        page.evaluate("() => window.scrollTo(0, 0)")
        hide_popups(page)
        shot(page, "desktop_admin")

        page.set_viewport_size(PHONE)
        page.reload()
        page.wait_for_selector("#live-state.online", state="attached", timeout=10_000)
        assert fits(page)
        hide_popups(page)
        shot(page, "phone_admin")

        # Delete the rule (the confirm is accepted).
        page.click(".btn-delete-rule")
        page.locator("#rules-table .empty-row").wait_for()
        assert fresh().scalars(select(AlertRule)).all() == []
    finally:
        context.close()
    assert errors == []
    actions = [e.action for e in fresh().scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert [a for a in actions if a.startswith(("alert_rule.", "channel_setting."))] == [
        "alert_rule.create", "alert_rule.update", "channel_setting.set", "alert_rule.delete"]


def test_an_operator_acknowledges_and_sees_no_rule_form(webapp, alerts, browser):
    db.session.add(AlertRule(trigger="blacklist", channels=["mqtt"], categories=[], cameras=[], escalate_to=[],
                             created_at=utcnow(), updated_at=utcnow()))
    db.session.commit()
    context = browser.new_context(viewport=DESKTOP, locale="th-TH")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, webapp, "operator")
        open_page(page, webapp, "/alerts")
        assert page.locator("#rule-form").count() == 0 and page.locator("#channel-settings").count() == 0
        assert page.locator(".btn-edit-rule, .btn-delete-rule").count() == 0
        assert page.locator("#rules-table tr[data-rule-id]").count() == 1  # the rules are listed
        row = page.locator(f'tr[data-alert-id="{alerts["offline"]}"]')
        assert "ยังออฟไลน์" in row.inner_text()
        row.locator(".btn-ack-alert").click()
        row.locator('[data-field="by"]').wait_for()
        assert row.locator('[data-field="by"]').inner_text() == "operator"
        assert fresh().get(Alert, alerts["offline"]).acknowledged_at is not None

        page.select_option("#filter-acknowledged", "no")
        page.click("#alert-filter button[type=submit]")
        page.wait_for_url("**acknowledged=no**")
        assert page.locator("#alerts-table tbody tr[data-alert-id]").count() == 1
        page.select_option("#filter-acknowledged", "")
        page.select_option("#filter-trigger", "camera_offline")
        page.click("#alert-filter button[type=submit]")
        page.wait_for_url("**trigger=camera_offline**")
        rows = page.locator("#alerts-table tbody tr[data-alert-id]")
        assert rows.count() == 1 and "operator" in rows.inner_text()
        hide_popups(page, card=False)
        shot(page, "desktop_operator")
        page.set_viewport_size(PHONE)
        open_page(page, webapp, "/alerts")
        assert fits(page)
        hide_popups(page, card=False)
        shot(page, "phone_operator")
    finally:
        context.close()
    assert errors == []


def test_a_viewer_reads_the_page_without_buttons(webapp, alerts, browser_page):
    page = browser_page
    sign_in(page, webapp, "viewer")
    open_page(page, webapp, "/alerts")
    assert page.locator(".btn-ack-alert").count() == 0 and page.locator("#rule-form").count() == 0
    assert page.locator("#alerts-table tbody tr[data-alert-id]").count() == 2
    assert page.locator("#attempts-table tbody tr").count() == 2
