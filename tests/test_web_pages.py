"""The pages: records filters and export, record detail, blacklist changes and CSV, cameras, users."""

import csv
import io
from datetime import timedelta

from sqlalchemy import select

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.models import AuditEntry, BlacklistDetection, BlacklistEntry, Camera, Record, User, utcnow
from lprserver.records import RecordFilter, count_records, page_records

from .webserver import PageClient

XSS = "<img src=x onerror=alert(1)>"


def add_record(plate, camera="CAM001", minutes_ago=0, **fields):
    if db.session.get(Camera, camera) is None:
        db.session.add(Camera(id=camera, name=fields.pop("camera_name", None)))
        db.session.flush()
    fields.pop("camera_name", None)
    now = utcnow() - timedelta(minutes=minutes_ago)
    from lprserver.plates import normalize_plate

    record = Record(camera_id=camera, plate_number=plate, plate_normalized=normalize_plate(plate),
                    captured_at=now, received_at=now, **fields)
    db.session.add(record)
    db.session.flush()
    return record


def signed_in(app, role="operator"):
    browser = PageClient(app)
    assert browser.login(role).status_code == 302
    return browser


def audit_actions():
    db.session.rollback()
    return [a.action for a in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


# --- the records service -------------------------------------------------------------------


def test_plate_filters_exact_prefix_contains_in_thai_and_latin(app):
    for plate in ("กข1234", "กข 5678", "ขก1234", "ABC123", "XABC9"):
        add_record(plate)
    db.session.commit()

    def plates(plate, mode):
        f = RecordFilter.from_args({"plate": plate, "plate_mode": mode}, "Asia/Bangkok")
        return sorted(r.plate_number for r in page_records(db.session, f).records)

    assert plates("กข", "prefix") == ["กข 5678", "กข1234"]
    assert plates("กข-๑๒๓๔", "exact") == ["กข1234"]
    assert plates("1234", "contains") == ["กข1234", "ขก1234"]
    assert plates("abc", "prefix") == ["ABC123"]
    assert plates("abc", "contains") == ["ABC123", "XABC9"]
    assert plates("%", "contains") == []


def test_keyset_pages_walk_every_record_once_newest_first(app):
    ids = [add_record(f"กข{n}").id for n in range(12)]
    db.session.commit()
    f, seen, before = RecordFilter(), [], None
    while True:
        page = page_records(db.session, f, per_page=5, before=before)
        seen += [r.id for r in page.records]
        if page.older is None:
            break
        before = page.older
    assert seen == sorted(ids, reverse=True)
    back = page_records(db.session, f, per_page=5, after=seen[9])
    assert [r.id for r in back.records] == seen[4:9]


def test_camera_time_confidence_and_blacklist_filters(app):
    add_record("AA1", camera="CAM001", confidence=95, minutes_ago=300)
    add_record("AA2", camera="CAM002", confidence=50)
    add_record("AA3", camera="CAM001", confidence=80, blacklisted=True)
    db.session.commit()
    count = lambda **args: count_records(db.session, RecordFilter.from_args(args, "Asia/Bangkok")).value  # noqa: E731
    assert count(camera_id="CAM001") == 2
    assert count(min_confidence="80") == 2
    assert count(blacklisted="1") == 1
    since = (utcnow() - timedelta(hours=1)).astimezone().strftime("%Y-%m-%dT%H:%M%z")
    assert count(since=since) == 2


def test_records_page_shows_filtered_rows_and_audits_the_search(app, users):
    add_record("กข1234", location="ประตูหน้า")
    add_record("ขค999")
    db.session.commit()
    browser = signed_in(app)
    html = browser.get("/records?plate=กข&plate_mode=prefix").get_data(as_text=True)
    assert "กข1234" in html and "ขค999" not in html
    assert "records.search" in audit_actions()
    assert "not a number" in browser.get("/records?min_confidence=abc").get_data(as_text=True)


def test_csv_export_streams_the_current_filter(app, users):
    add_record("กข1234", confidence=90.5)
    add_record("=HYPERLINK(1)")
    add_record("ขค999")
    db.session.commit()
    answer = signed_in(app).get("/records/export.csv?plate=กข&plate_mode=prefix")
    assert answer.is_streamed and answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True).lstrip("\ufeff"))))
    assert [r["plate_number"] for r in rows] == ["กข1234"] and rows[0]["confidence"] == "90.5"
    everything = signed_in(app).get("/records/export.csv").get_data(as_text=True)
    assert "'=HYPERLINK(1)" in everything
    assert "records.export" in audit_actions()


def test_record_page_shows_every_field_and_metadata(app, users):
    record = add_record("กข1234", province="กรุงเทพมหานคร", vehicle_color="แดง", event_id="edge-1",
                        extra={"lux": 250, "exposure_time": 0.033})
    db.session.commit()
    html = signed_in(app, "viewer").get(f"/records/{record.id}").get_data(as_text=True)
    for text in ("กข1234", "กรุงเทพมหานคร", "แดง", "edge-1", "lux", "250", "exposure_time"):
        assert text in html
    assert signed_in(app, "viewer").get("/records/999999").status_code == 404


def test_markup_in_plate_location_and_camera_name_is_escaped_on_every_page(app, users):
    record = add_record(XSS, camera="CAMX", camera_name=XSS, location=XSS, blacklisted=True)
    entry = add_entry(db.session, XSS, reason=XSS)
    db.session.add(BlacklistDetection(record_id=record.id, entry_id=entry.id, match_type="exact"))
    db.session.get(Camera, "CAMX").location = XSS
    db.session.commit()
    browser = signed_in(app, "admin")
    for path in ("/", "/dashboard", "/records", f"/records/{record.id}", "/blacklist", "/cameras", "/users"):
        html = browser.get(path).get_data(as_text=True)
        assert XSS not in html, path
    assert "&lt;img src=x onerror=alert(1)&gt;" in browser.get("/records").get_data(as_text=True)


# --- blacklist -----------------------------------------------------------------------------


def test_operator_adds_edits_expires_and_deletes_an_entry_with_an_audit_trail(app, users):
    browser = signed_in(app)
    token = browser.token("/blacklist")
    answer = browser.post("/blacklist", data={"license_plate_text": "กข 1234", "reason": "รถหาย",
                                               "category": "stolen", "csrf_token": token})
    assert answer.status_code == 302
    entry = db.session.scalar(select(BlacklistEntry))
    assert (entry.plate_normalized, entry.added_by, entry.category) == ("กข1234", "operator", "stolen")
    answer = browser.post(f"/blacklist/{entry.id}/edit", data={
        "license_plate_text": "กข 1235", "reason": "found", "category": "watch",
        "expires_at": "2030-01-01T08:00", "active": "on", "csrf_token": token})
    assert answer.status_code == 302
    db.session.rollback()
    entry = db.session.get(BlacklistEntry, entry.id)
    assert entry.plate_normalized == "กข1235" and entry.expires_at.isoformat() == "2030-01-01T01:00:00+00:00"
    assert browser.post(f"/blacklist/{entry.id}/expire", data={"csrf_token": token}).status_code == 302
    db.session.rollback()
    assert db.session.get(BlacklistEntry, entry.id).expires_at <= utcnow()
    assert browser.post(f"/blacklist/{entry.id}/delete", data={"csrf_token": token}).status_code == 302
    assert db.session.scalar(select(BlacklistEntry)) is None
    assert [a for a in audit_actions() if a.startswith("blacklist.")] == [
        "blacklist.add", "blacklist.update", "blacklist.expire", "blacklist.delete"]


def test_a_bad_entry_is_refused_with_a_reason(app, users):
    browser = signed_in(app)
    answer = browser.post("/blacklist", data={"license_plate_text": "  ", "category": "stolen",
                                               "csrf_token": browser.token("/blacklist")})
    assert answer.status_code == 400 and "plate is empty" in answer.get_data(as_text=True)
    answer = browser.post("/blacklist", data={"license_plate_text": "AB1", "category": "nope",
                                               "csrf_token": browser.token("/blacklist")})
    assert answer.status_code == 400 and "category must be one of" in answer.get_data(as_text=True)


def test_csv_import_reports_each_rejected_row_and_export_round_trips(app, users):
    add_entry(db.session, "ZZ999", reason="already")
    db.session.commit()
    text = ("plate,reason,category,expires_at\n"
            "กข1234,รถหาย,stolen,\n"
            ",no plate,other,\n"
            "AB 12,bad category,pirate,\n"
            "zz-999,duplicate,watch,\n"
            "CD34,bad date,watch,someday\n"
            "EF56,ok,vip,2030-01-01\n")
    browser = signed_in(app)
    answer = browser.post("/blacklist/import", content_type="multipart/form-data", data={
        "csrf_token": browser.token("/blacklist"),
        "file": (io.BytesIO(text.encode("utf-8-sig")), "list.csv")})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Imported 2 entries" in html and "rejected 4" in html
    for line, why in ((3, "the plate is empty"), (4, "category must be one of"),
                      (5, "already on the blacklist"), (6, "expires_at is not a date")):
        assert f"<td>{line}</td>" in html and why in html
    exported = browser.get("/blacklist/export.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["license_plate_text"] for r in rows] == ["ZZ999", "กข1234", "EF56"]
    assert rows[2]["expires_at"].startswith("2030-01-01T00:00:00+07:00")
    assert {"blacklist.import", "blacklist.export"} <= set(audit_actions())


# --- cameras and users ---------------------------------------------------------------------


def test_admin_creates_a_camera_and_sees_its_token_once(app, users):
    browser = signed_in(app, "admin")
    answer = browser.post("/cameras", data={"camera_id": "GATE1", "name": "ประตู 1",
                                            "csrf_token": browser.token("/cameras")})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "cam_" in html
    token = html.split("<code>")[1].split("</code>")[0]
    from lprserver.tokens import token_matches

    assert token_matches(token, db.session.get(Camera, "GATE1").token_hash)
    assert token not in browser.get("/cameras").get_data(as_text=True)
    operator = signed_in(app, "operator")
    assert operator.post("/cameras", data={"camera_id": "X1", "csrf_token": operator.token("/cameras")}).status_code == 403


def test_cameras_page_shows_state_reads_today_and_health(app, users):
    add_record("กข1")
    add_record("กข2")
    camera = db.session.get(Camera, "CAM001")
    camera.online, camera.health_status, camera.health_message = True, "WARN", "disk 91% full"
    db.session.commit()
    html = signed_in(app, "viewer").get("/cameras").get_data(as_text=True)
    row = html.split('data-camera-id="CAM001"')[1].split("</tr>")[0]
    assert "online" in row and "WARN" in row and "disk 91% full" in row and '">2</td>' in row


def test_admin_manages_users_and_cannot_lock_themselves_out(app, users):
    browser = signed_in(app, "admin")
    token = browser.token("/users")
    answer = browser.post("/users", data={"username": "somchai", "role": "viewer", "csrf_token": token})
    assert answer.status_code == 200 and 'id="new-password"' in answer.get_data(as_text=True)
    somchai = db.session.scalar(select(User).where(User.username == "somchai"))
    assert browser.post(f"/users/{somchai.id}", data={"action": "role", "role": "operator",
                                                      "csrf_token": token}).status_code == 302
    assert browser.post(f"/users/{somchai.id}", data={"action": "deactivate", "csrf_token": token}).status_code == 302
    db.session.rollback()
    somchai = db.session.get(User, somchai.id)
    assert (somchai.role, somchai.active) == ("operator", False)
    admin = db.session.scalar(select(User).where(User.username == "admin"))
    assert browser.post(f"/users/{admin.id}", data={"action": "deactivate", "csrf_token": token}).status_code == 400
    assert {"user.create", "user.role", "user.deactivate"} <= set(audit_actions())


def test_acknowledging_a_hit_records_who_and_when(app, users):
    record = add_record("กข1234", blacklisted=True)
    entry = add_entry(db.session, "กข1234", reason="รถหาย")
    detection = BlacklistDetection(record_id=record.id, entry_id=entry.id, match_type="exact")
    db.session.add(detection)
    db.session.commit()
    browser = signed_in(app, "operator")
    missed = browser.get("/live/missed?after=0").get_json()
    assert [a["detection_id"] for a in missed["alerts"]] == [detection.id]
    assert [r["plate_number"] for r in missed["records"]] == ["กข1234"]
    token = browser.token("/")
    answer = browser.post("/alerts/acknowledge", headers={"X-CSRFToken": token},
                          json={"detection_ids": [detection.id]})
    assert answer.status_code == 200 and answer.get_json()["acknowledged"][0]["by"] == "operator"
    db.session.rollback()
    detection = db.session.get(BlacklistDetection, detection.id)
    operator = db.session.scalar(select(User).where(User.username == "operator"))
    assert detection.acknowledged_by == operator.id and detection.acknowledged_at is not None
    assert "blacklist.acknowledge" in audit_actions()
    assert browser.get("/live/missed").get_json()["alerts"] == []


def test_blacklist_export_keeps_spreadsheets_from_running_formulas(app, users):
    add_entry(db.session, "กข1", reason="=HYPERLINK(\"http://evil\")")
    db.session.commit()
    exported = signed_in(app, "viewer").get("/blacklist/export.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in exported


def test_the_records_page_says_it_orders_by_the_time_received_and_shows_a_different_capture_time(app, users):
    from datetime import timedelta

    record = add_record("กข1234")
    record.captured_at = record.received_at - timedelta(minutes=30)  # a camera whose clock is behind
    add_record("กข5678")
    db.session.commit()
    html = signed_in(app, "viewer").get("/records").get_data(as_text=True)
    assert "Received ↓</th>" in html and "Captured</th>" not in html
    assert html.count('capture time">captured ') == 1


def test_the_site_has_a_favicon(client):
    with client.get("/favicon.ico") as answer:
        assert answer.status_code == 200 and answer.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
        assert answer.data[:4] == b"\x00\x00\x01\x00"


def test_acknowledging_alerts_is_walked_for_every_kind_of_caller(app, users, make_token):
    # POST /alerts/acknowledge: operators and admins only; a viewer 403; a stranger and any API token
    # (pages never take one) go to sign-in.
    record = add_record("กข1234", blacklisted=True)
    entry = add_entry(db.session, "กข1234", reason="รถหาย")
    detections = [BlacklistDetection(record_id=record.id, entry_id=entry.id, match_type="exact") for _ in range(4)]
    db.session.add_all(detections)
    db.session.commit()
    ids = [d.id for d in detections]
    stranger = PageClient(app)
    token = stranger.token("/login")
    assert stranger.post("/alerts/acknowledge", headers={"X-CSRFToken": token},
                         json={"detection_ids": ids[:1]}).status_code == 302
    for scope in ("read", "read-write"):
        answer = PageClient(app).post("/alerts/acknowledge", json={"detection_ids": ids[:1]},
                                      headers={"Authorization": f"Bearer {make_token('admin', scope)}"})
        assert answer.status_code in (302, 400), (scope, answer.status_code)  # no CSRF token: refused first
    viewer = signed_in(app, "viewer")
    assert viewer.post("/alerts/acknowledge", headers={"X-CSRFToken": viewer.token("/")},
                       json={"detection_ids": ids[:1]}).status_code == 403
    for role, chosen in (("operator", ids[:2]), ("admin", ids[2:])):
        browser = signed_in(app, role)
        answer = browser.post("/alerts/acknowledge", headers={"X-CSRFToken": browser.token("/")},
                              json={"detection_ids": chosen})
        assert answer.status_code == 200 and [a["by"] for a in answer.get_json()["acknowledged"]] == [role] * 2
    operator = signed_in(app, "operator")
    for body in ({"detection_ids": []}, {"detection_ids": ["1"]}, {"detection_ids": [True]}, {}, [1]):
        assert operator.post("/alerts/acknowledge", headers={"X-CSRFToken": operator.token("/")},
                             json=body).status_code == 400, body
    db.session.rollback()
    assert all(d.acknowledged_at is not None for d in db.session.scalars(select(BlacklistDetection)))
