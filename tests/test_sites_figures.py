"""Figures of a site-limited user count their sites only (SPEC §15 "Sites"): the statistics, the
dashboard's numbers, the analytics (per camera and the figures kept for all cameras together), the
alerts and the report; and deliveries that carry every site's data (webhooks, alert rules, channel
settings) are for admins without a site limit only.

Site A has camera CA with 2 reads (one a blacklist hit), site B has CB with 4 reads (one a hit); the
reads come in through the HTTP ingest door, so every count the pipeline keeps is made as in production."""

import io

import openpyxl
import pytest
from sqlalchemy import select

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.models import AlertRule, Camera, User, Webhook, utcnow
from lprserver.reports import parse_period, summary
from lprserver.sites import scope_of
from lprserver.users import save_user

from .conftest import bearer
from .imagegen import data_uri, make_jpeg
from .webserver import PASSWORDS, PageClient

READS = {"CA": ["กข1111", "กข1112"], "CB": ["ฮฮ2221", "ฮฮ2222", "ฮฮ2223", "ฮฮ2224"]}
LISTED = ("กข1111", "ฮฮ2221")


@pytest.fixture
def world(app, client, make_token):
    db.session.add_all([Camera(id="CA", name="Gate A", site="A"), Camera(id="CB", name="Gate B", site="B")])
    for plate in LISTED:
        add_entry(db.session, plate, reason="stolen", category="stolen", added_by="admin")
    db.session.commit()
    for camera_id, plates in READS.items():
        for n, plate in enumerate(plates):
            body = {"camera_id": camera_id, "plate_number": plate, "confidence": 95.0,
                    "image_data": data_uri(make_jpeg(160, 120, seed=n))}
            answer = client.post("/api/records", json=body)
            assert answer.status_code == 201, answer.get_json()
    tokens = {}
    for name, role, sites in (("boss", "admin", None), ("guard", "viewer", ["A"]), ("aadmin", "admin", ["A"])):
        tokens[name] = make_token(role, "read-write", username=name)
        db.session.scalar(select(User).where(User.username == name)).sites = sites
    db.session.commit()
    return tokens


def get(client, token, path):
    answer = client.get(path, headers=bearer(token))
    assert answer.status_code == 200, (path, answer.status_code, answer.get_data(as_text=True)[:300])
    return answer


@pytest.mark.parametrize("who", ["guard", "aadmin"])
def test_statistics_analytics_alerts_and_reports_count_only_the_users_sites(app, client, world, who):
    token = world[who]
    stats = get(client, token, "/api/statistics").get_json()
    assert (stats["total_records"], stats["records_today"], stats["blacklist_hits"]) == (2, 2, 1)
    assert stats["cameras_total"] == 1 and {c["camera_id"] for c in stats["per_camera"]} == {"CA"}
    assert sum(h["records"] for h in stats["per_hour"]) == 2

    figures = get(client, token, "/api/analytics").get_json()
    current = figures["comparison"]["current"]
    assert (current["reads"], current["unique_plates"], current["hits"]) == (2, 2, 1)
    assert sum(day["unique_plates"] for day in figures["unique_plates_per_day"]) == 2
    assert sum(p["reads"] for p in figures["top_provinces"]) == 2
    assert {c["camera_id"] for c in figures["cameras"]} == {"CA"}
    assert sum(map(sum, figures["heatmap"]["cells"])) == 2

    alerts = get(client, token, "/api/alerts").get_json()
    assert alerts["total"] == 1 and {a["camera_id"] for a in alerts["alerts"]} == {"CA"}

    user = db.session.scalar(select(User).where(User.username == who))
    period = parse_period(None, None, app.config["TIMEZONE"], utcnow())
    report = summary(db.session, period, now=utcnow(), scope=scope_of(user))
    assert {k: report["totals"][k] for k in ("reads", "unique_plates", "hits", "alerts")} == \
        {"reads": 2, "unique_plates": 2, "hits": 1, "alerts": 1}
    assert [row["camera_id"] for row in report["per_camera"]] == ["CA"]
    book = openpyxl.load_workbook(io.BytesIO(get(client, token, "/api/reports/summary.xlsx").data))
    cells = {str(c.value) for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value}
    assert "CA" in cells and "CB" not in cells and "Gate B" not in cells


def test_the_unlimited_admin_counts_every_site(client, world):
    stats = get(client, world["boss"], "/api/statistics").get_json()
    assert (stats["total_records"], stats["blacklist_hits"], stats["cameras_total"]) == (6, 2, 2)
    current = get(client, world["boss"], "/api/analytics").get_json()["comparison"]["current"]
    assert (current["reads"], current["unique_plates"]) == (6, 6)
    assert get(client, world["boss"], "/api/alerts").get_json()["total"] == 2


def test_the_dashboard_of_a_limited_user_shows_their_figures(app, world):
    page = PageClient(app)
    save_user(db.session, "north", "viewer", PASSWORDS["viewer"])[0].sites = ["A"]
    db.session.commit()
    page.login("north", PASSWORDS["viewer"])
    html = page.get("/dashboard").get_data(as_text=True)
    assert "Gate A" in html and "Gate B" not in html and "ฮฮ" not in html


def test_deliveries_carrying_every_sites_data_are_for_unlimited_admins(app, client, world):
    db.session.add(Webhook(url="http://127.0.0.1:9/hook", events=["record.created"], secret="s" * 32))
    db.session.commit()
    hook = db.session.scalar(select(Webhook.id))
    limited, boss = bearer(world["aadmin"]), bearer(world["boss"])
    rule = {"name": "all hits", "trigger": "blacklist", "channels": [{"type": "webhook", "target": str(hook)}]}
    refused = [("GET", "/api/webhooks", None), ("POST", "/api/webhooks",
                                                {"url": "http://127.0.0.1:9/x", "events": ["record.created"]}),
               ("GET", f"/api/webhooks/{hook}", None), ("PATCH", f"/api/webhooks/{hook}", {"active": False}),
               ("POST", f"/api/webhooks/{hook}/test", None), ("GET", f"/api/webhooks/{hook}/deliveries", None),
               ("DELETE", f"/api/webhooks/{hook}", None), ("POST", "/api/alert-rules", rule)]
    for method, path, body in refused:
        answer = client.open(path, method=method, json=body, headers=limited)
        assert answer.status_code == 403, (method, path, answer.status_code)
        assert "site limit" in answer.get_json()["error"]["message"]
    assert db.session.scalar(select(Webhook.active).where(Webhook.id == hook)) is True
    assert db.session.scalars(select(AlertRule)).all() == []
    assert client.get("/api/webhooks", headers=boss).status_code == 200
    assert client.get("/api/alert-rules", headers=limited).status_code == 200  # reading the rules is fine

    page = PageClient(app)
    save_user(db.session, "apage", "admin", PASSWORDS["admin"])[0].sites = ["A"]
    db.session.commit()
    page.login("apage", PASSWORDS["admin"])
    html = page.get("/alerts").get_data(as_text=True)
    assert "127.0.0.1:9/hook" not in html and 'id="channel-settings"' not in html
    answer = page.post("/alerts/settings", data={"name": "SMTP_FROM", "value": "lpr@example.org",
                                                  "csrf_token": page.token("/alerts")})
    assert answer.status_code == 403
