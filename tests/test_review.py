"""The review queue (SPEC §10 "Review"): which reads wait, the queue oldest first with why each waits,
confirming, who may, the page and clearing it with the keyboard in Chromium."""

import time

import requests
from sqlalchemy import select

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.models import AuditEntry, Record

from .conftest import bearer
from .imagegen import data_uri, make_jpeg
from .test_corrections import send
from .test_ingest import SEED_READ, camera, fresh
from .webserver import PageClient, screenshot, sign_in


def queue(client, token, query: str = "") -> dict:
    answer = client.get(f"/api/review{query}", headers=bearer(token))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_low_confidence_reads_and_look_alike_or_fuzzy_hits_wait_oldest_first_with_why(client, make_token):
    lookalike = add_entry(db.session, "กข 1234", reason="รถหาย", category="stolen", match="lookalike")
    add_entry(db.session, "ขค 5678", category="wanted", match="fuzzy")
    add_entry(db.session, "ฮฮ 1", category="watch")  # exact: an exact hit needs no review
    db.session.commit()
    low = send(client, "กก1111", confidence=50)
    send(client, "กก2222", confidence=95)  # sure enough
    send(client, "ฮฮ1", confidence=95)  # exact hit
    alike = send(client, "กช1234", confidence=95)
    both = send(client, "ขค567", confidence=60)  # one edit, and unsure
    send(client, "กก3333")  # no confidence at all: nothing to doubt
    token = make_token("viewer")
    page = queue(client, token)
    assert [item["record"]["id"] for item in page["items"]] == [low, alike, both]
    assert page["total"] == 3 and page["next_after_id"] is None
    reasons = {item["record"]["id"]: item["reasons"] for item in page["items"]}
    assert reasons[low] == [{"kind": "low_confidence", "confidence": 50.0, "threshold": 80.0}]
    [hit] = reasons[alike]
    assert hit["kind"] == "lookalike" and hit["entry"]["id"] == lookalike.id
    assert hit["entry"]["license_plate_text"] == "กข 1234" and hit["entry"]["reason"] == "รถหาย"
    assert [r["kind"] for r in reasons[both]] == ["low_confidence", "fuzzy"]
    assert page["items"][0]["record"]["review_state"] == "pending"
    # paging, oldest first
    first = queue(client, token, "?per_page=2")
    assert [i["record"]["id"] for i in first["items"]] == [low, alike] and first["next_after_id"] == alike
    rest = queue(client, token, f"?per_page=2&after_id={alike}")
    assert [i["record"]["id"] for i in rest["items"]] == [both] and rest["next_after_id"] is None
    bad = client.get("/api/review?per_page=0", headers=bearer(token))
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "per_page"


def test_the_daemon_s_reads_wait_too(daemon, app, client, make_token):
    with camera(daemon) as cam:
        low = cam.call("lpr_data", {**SEED_READ, "confidence": 50}, timeout=10)["record_id"]
        cam.call("lpr_data", {**SEED_READ, "plate_number": "ขข1"}, timeout=10)  # 85.5
    assert [i["record"]["id"] for i in queue(client, make_token("viewer"))["items"]] == [low]


def test_confirming_and_correcting_clear_a_read_and_a_read_not_waiting_is_409(client, make_token):
    a = send(client, "กก1111", confidence=50)
    b = send(client, "กก2222", confidence=40)
    sure = send(client, "กก3333", confidence=99)
    token = make_token("operator", username="somsri")
    answer = client.post(f"/api/review/{a}/confirm", headers=bearer(token))
    assert answer.status_code == 200
    shown = answer.get_json()
    assert shown["id"] == a and shown["review_state"] == "confirmed" and shown["plate_corrected"] is None
    stored = fresh().get(Record, a)
    assert (stored.reviewed_by, stored.plate_normalized) == ("somsri", "กก1111") and stored.reviewed_at
    [entry] = fresh().scalars(select(AuditEntry).where(AuditEntry.action == "record.confirm")).all()
    assert entry.target == f"record:{a}" and entry.username == "somsri"
    again = client.post(f"/api/review/{a}/confirm", headers=bearer(token))
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_pending"
    never = client.post(f"/api/review/{sure}/confirm", headers=bearer(token))
    assert never.status_code == 409 and "never needed review" in never.get_json()["error"]["message"]
    missing = client.post("/api/review/987654/confirm", headers=bearer(token))
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert [i["record"]["id"] for i in queue(client, token)["items"]] == [b]
    client.patch(f"/api/records/{b}", json={"plate_corrected": "กก2223"}, headers=bearer(token))
    assert queue(client, token) == {"items": [], "per_page": 50, "total": 0, "next_after_id": None}
    assert client.post(f"/api/review/{b}/confirm", headers=bearer(token)).status_code == 409


def test_every_review_route_is_walked_for_every_kind_of_caller(app, client, make_token, users):
    ids = [send(client, f"กก{i}", confidence=10) for i in range(6)]
    callers = {"stranger": {}, "viewer": bearer(make_token("viewer")), "operator": bearer(make_token("operator")),
               "admin": bearer(make_token("admin")), "read-only": bearer(make_token("admin", "read"))}
    listed = {who: client.get("/api/review", headers=h).status_code for who, h in callers.items()}
    assert listed == {"stranger": 401, "viewer": 200, "operator": 200, "admin": 200, "read-only": 200}
    confirmed = {who: client.post(f"/api/review/{ids[i]}/confirm", headers=h).status_code
                 for i, (who, h) in enumerate(callers.items())}
    assert confirmed == {"stranger": 401, "viewer": 403, "operator": 200, "admin": 200, "read-only": 403}
    # the page: operators and admins; a viewer 403; a stranger and any token go to sign-in
    stranger = PageClient(app).get("/review")
    assert stranger.status_code == 302 and "/login" in stranger.headers["Location"]
    for scope in ("read", "read-write"):
        answer = PageClient(app).get("/review", headers=bearer(make_token("admin", scope)))
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], scope
    for role, status in (("viewer", 403), ("operator", 200), ("admin", 200)):
        browser = PageClient(app)
        assert browser.login(role).status_code == 302
        assert browser.get("/review").status_code == status, role
        nav = browser.get("/records").get_data(as_text=True)
        assert ('id="nav-review"' in nav) == (role != "viewer"), role
    page = browser.get("/review").get_data(as_text=True)
    assert '<strong id="review-count">4</strong>' in page and 'id="nav-review-count">4<' in page
    # the session cookie writes with its CSRF header only
    assert browser.post(f"/api/review/{ids[5]}/confirm").status_code == 400
    headers = {"X-CSRFToken": browser.token("/review")}
    assert browser.post(f"/api/review/{ids[5]}/confirm", headers=headers).status_code == 200


def test_a_reviewer_clears_reads_with_the_keyboard_in_chromium(webapp, app, users, browser_page):
    add_entry(db.session, "กข 1234", reason="รถหาย", category="stolen", match="lookalike")
    db.session.commit()
    plates = [("กก1111", 40), ("ขข2222", 55), ("กช1234", 95), ("คค4444", 60), ("งง5555", 70)]
    ids = []
    for i, (plate, confidence) in enumerate(plates):
        answer = requests.post(f"{webapp.url}/api/records", timeout=10, json={
            "camera_id": "GATE1", "plate_number": plate, "confidence": confidence,
            "image_data": data_uri(make_jpeg(seed=10 + i))})
        ids.append(answer.json()["record_id"])
    page = browser_page
    sign_in(page, webapp, "operator")
    page.goto(f"{webapp.url}/review")
    plate = page.locator("#review-plate")

    def showing(record_id: int) -> None:
        page.locator(f'#review-card[data-record-id="{record_id}"]').wait_for(timeout=10_000)
        deadline = time.monotonic() + 5
        while page.evaluate("document.activeElement.id") != "review-plate":
            assert time.monotonic() < deadline, "the plate field is not focused"
            time.sleep(0.05)

    showing(ids[0])
    assert plate.input_value() == "กก1111" and page.locator("#review-count").inner_text() == "5"
    assert "ความมั่นใจต่ำ" in page.locator("#review-reasons").inner_text()  # the browser asks for Thai
    screenshot(page, "review-desktop")
    page.keyboard.press("Enter")  # confirm as sent
    showing(ids[1])
    page.keyboard.type("ขข2223")  # the text was selected: typing replaces it
    page.keyboard.press("Enter")  # changed: a correction
    showing(ids[2])
    assert "คล้ายกับบัญชีดำ" in page.locator("#review-reasons").inner_text()
    assert "กข 1234" in page.locator("#review-reasons").inner_text()
    page.keyboard.press("Escape")  # skip
    showing(ids[3])
    page.keyboard.press("ArrowUp")  # back to the skipped one
    showing(ids[2])
    page.keyboard.press("ArrowDown")
    showing(ids[3])
    page.keyboard.press("Enter")
    showing(ids[4])
    assert page.locator("#review-count").inner_text() == "2"
    page.keyboard.press("Enter")
    page.locator("#review-end").wait_for(timeout=10_000)
    assert page.locator("#review-skipped").inner_text() == "1"
    db.session.rollback()
    states = {r.id: (r.review_state, r.plate_normalized, r.reviewed_by)
              for r in db.session.scalars(select(Record).where(Record.id.in_(ids)))}
    assert states == {ids[0]: ("confirmed", "กก1111", "operator"), ids[1]: ("corrected", "ขข2223", "operator"),
                      ids[2]: ("pending", "กช1234", None), ids[3]: ("confirmed", "คค4444", "operator"),
                      ids[4]: ("confirmed", "งง5555", "operator")}
    assert page.url == f"{webapp.url}/review"  # no reload on the way
    page.click("#review-restart")
    showing(ids[2])
    page.set_viewport_size({"width": 390, "height": 844})
    time.sleep(0.3)
    screenshot(page, "review-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.keyboard.press("Enter")
    page.locator("#review-empty").wait_for(timeout=10_000)
