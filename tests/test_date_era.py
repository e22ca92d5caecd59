"""DATE_ERA (SPEC §12 "Dates"): `be` shows Buddhist-era years (2569 for 2026) wherever people read a
time — pages, the live pages' scripts, alert messages — while the API keeps ISO 8601 (common era)."""

import json
import re
from datetime import UTC, date, datetime

import pytest

from config import config_from_env
from lprserver.channels import AlertMessage
from lprserver.channels.render import render
from lprserver.extensions import db
from lprserver.times import show_local

from .conftest import bearer
from .test_web_pages import add_record, signed_in

MOMENT = datetime(2026, 12, 3, 7, 5, 9, tzinfo=UTC)


def test_show_local_puts_the_year_in_the_era():
    assert show_local(MOMENT, "Asia/Bangkok") == "2026-12-03 14:05:09"
    assert show_local(MOMENT, "Asia/Bangkok", "be") == "2569-12-03 14:05:09"
    # New Year's Eve in UTC is already the next year in Bangkok, in either era.
    assert show_local(datetime(2026, 12, 31, 20, 0, tzinfo=UTC), "Asia/Bangkok", "be", "%Y-%m-%d") == \
        "2570-01-01"


def test_an_alert_message_shows_the_era_of_the_setting():
    message = AlertMessage(alert_id=1, trigger="blacklist", at=MOMENT, plate="กข 1234", camera_id="GATE")
    assert "2569-12-03 14:05:09 +07" in render(message, "th", "Asia/Bangkok", era="be").text
    assert "2026-12-03 14:05:09 +07" in render(message, "en", "Asia/Bangkok").text


@pytest.mark.parametrize("era", ["ad", "BE", "buddhist"])
def test_an_unknown_era_is_refused_at_start(era):
    with pytest.raises(ValueError, match="DATE_ERA must be ce or be"):
        config_from_env(environ={"DATE_ERA": era})


def test_pages_show_buddhist_years_and_the_api_keeps_iso(app, users, make_token):
    app.config["DATE_ERA"] = "be"
    try:
        record = add_record("กข 1234")
        record.received_at = record.captured_at = MOMENT
        db.session.commit()
        browser = signed_in(app, "viewer")
        page = browser.get(f"/records/{record.id}").get_data(as_text=True)
        assert "2569-12-03 14:05:09" in page and "2026-12-03 14:05:09" not in page
        live = json.loads(re.search(r'<script type="application/json" id="live-config">(.*?)</script>',
                                    page).group(1))
        assert live["date_era"] == "be"  # live.js and page.js add 543 to the years they show
        listing = browser.get("/records").get_data(as_text=True)
        assert "2569-12-03 14:05:09" in listing
        visits = browser.get("/visits?day=2026-12-03").get_data(as_text=True)
        assert "2569-12-03" in visits
        shown = app.test_client().get(f"/api/records/{record.id}",
                                      headers=bearer(make_token("viewer", "read"))).get_json()
        assert shown["received_at"].startswith("2026-12-03T07:05:09")
    finally:
        app.config["DATE_ERA"] = "ce"


def test_the_common_era_is_the_default(app, users):
    assert config_from_env(environ={}).DATE_ERA == "ce"
    record = add_record("กข 1234")
    record.received_at = record.captured_at = MOMENT
    db.session.commit()
    page = signed_in(app, "viewer").get(f"/records/{record.id}").get_data(as_text=True)
    assert "2026-12-03 14:05:09" in page
    assert date(2026, 12, 3).isoformat() in page
