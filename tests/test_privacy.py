"""A plate's data on request (SPEC §15): the export zip and the erase, by the API and the plate's page,
admins only and within their sites."""

import csv
import io
import json
import zipfile
from datetime import timedelta
from urllib.parse import quote

import pytest
from flask import current_app
from sqlalchemy import func, select

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.image_store import ensure_thumbnail, image_store_for
from lprserver.models import (
    Alert,
    AnalyticsPlateDay,
    AuditEntry,
    BlacklistDetection,
    Camera,
    KnownGroup,
    KnownPlate,
    Record,
    User,
    Visit,
    utcnow,
)
from lprserver.users import save_user

from .conftest import bearer
from .imagegen import data_uri, make_jpeg
from .webserver import PageClient, csrf_token

PLATE = "กข1234"
OTHER = "ขค999"
URL = "/api/plates/" + quote(PLATE)
ZIP_URL = URL + "/export.zip"
EXPECTED_FILES = {"README.txt", "reads.csv", "reads.json", "hits.csv", "hits.json", "alerts.json", "visits.csv",
                  "visits.json", "corrections.json", "lists.json"}


def send(client, plate: str, camera_id: str = "CAM-A", image: bool = True, seed: int = 1) -> int:
    body = {"camera_id": camera_id, "plate_number": plate, "confidence": 90}
    if image:
        body["image_data"] = data_uri(make_jpeg(160, 120, seed=seed))
    answer = client.post("/api/records", json=body)
    assert answer.status_code == 201, answer.get_json()
    record_id = answer.get_json()["record_id"]
    if image:  # viewed once: its thumbnail is made then (issue 24), and must go with the read
        record = db.session.get(Record, record_id)
        ensure_thumbnail(image_store_for(current_app), record.image_path, record.thumbnail_path)
    return record_id


@pytest.fixture
def plates(app, client):
    """The plate read 3 times at site A and twice at site B (one a blacklist hit), and another plate."""
    db.session.add_all([Camera(id="CAM-A", name="ประตู A", site="A"), Camera(id="CAM-B", name="Gate B", site="B")])
    db.session.add(KnownGroup(name="staff"))
    db.session.add(KnownPlate(plate="กข 1234", plate_normalized=PLATE, name="สมชาย", group_name="staff"))
    add_entry(db.session, "กข 1234", reason="stolen car", category="stolen", added_by="tests")
    db.session.commit()
    ids = {"A": [send(client, "กข 1234", "CAM-A", seed=i) for i in range(3)],
           "B": [send(client, "กข-1234", "CAM-B", seed=10 + i) for i in range(2)]}
    ids["other"] = [send(client, "ขค 999", "CAM-A", seed=20)]
    db.session.add(Visit(plate_normalized=PLATE, entered_at=utcnow(), entry_camera_id="CAM-A",
                         entry_record_id=ids["A"][0]))
    db.session.add(Visit(plate_normalized=OTHER, entered_at=utcnow(), entry_camera_id="CAM-A",
                         entry_record_id=ids["other"][0]))
    db.session.commit()
    return ids


def admin_token(make_token, sites=None, scope="read-write", name=None) -> str:
    token = make_token("admin", scope, username=name)
    if sites is not None:
        user = db.session.scalar(select(User).order_by(User.id.desc()).limit(1))
        user.sites = sites
        db.session.commit()
    return token


def status(answer) -> int:
    answer.close()
    return answer.status_code


def unzip(answer) -> zipfile.ZipFile:
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    assert answer.mimetype == "application/zip"
    assert "attachment" in answer.headers["Content-Disposition"]
    data = answer.get_data()
    answer.close()  # closes the zip's temporary file, as the server does once it is sent
    return zipfile.ZipFile(io.BytesIO(data))


def test_the_zip_holds_every_file_and_they_parse(client, make_token, plates, image_root):
    token = admin_token(make_token, name="dpo")
    zf = unzip(client.get(ZIP_URL, headers=bearer(token)))
    names = set(zf.namelist())
    every = plates["A"] + plates["B"]
    assert names == EXPECTED_FILES | {f"images/{rid}.jpg" for rid in every}
    reads = json.loads(zf.read("reads.json"))
    assert [r["id"] for r in reads] == every and {r["plate_normalized"] for r in reads} == {PLATE}
    assert reads[0]["camera_name"] == "ประตู A" and reads[0]["image_file"] == f"images/{every[0]}.jpg"
    rows = list(csv.DictReader(io.StringIO(zf.read("reads.csv").decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == every and rows[0]["plate_normalized"] == PLATE
    for rid in every:  # the full images, byte for byte as stored
        stored = db.session.get(Record, rid)
        assert zf.read(f"images/{rid}.jpg") == (image_root / stored.image_path).read_bytes()
    hits = json.loads(zf.read("hits.json"))
    assert {h["record_id"] for h in hits} == set(every) and hits[0]["license_plate_text"] == "กข 1234"
    assert len(list(csv.DictReader(io.StringIO(zf.read("hits.csv").decode("utf-8-sig"))))) == len(every)
    visits = json.loads(zf.read("visits.json"))
    assert [v["plate"] for v in visits] == [PLATE]
    assert list(csv.DictReader(io.StringIO(zf.read("visits.csv").decode("utf-8-sig"))))[0]["plate"] == PLATE
    lists = json.loads(zf.read("lists.json"))
    assert [e["reason"] for e in lists["blacklist"]] == ["stolen car"]
    assert [k["name"] for k in lists["known"]] == ["สมชาย"]
    assert json.loads(zf.read("corrections.json")) == {"corrected_reads": [], "audit_entries": []}
    alerts = json.loads(zf.read("alerts.json"))  # a repeated hit at one camera is one alert (SPEC §11)
    assert sorted((a["camera_id"], a["repeat_count"]) for a in alerts) == [("CAM-A", 3), ("CAM-B", 2)]
    readme = zf.read("README.txt").decode("utf-8")
    assert "ข้อมูลที่เก็บเกี่ยวกับป้ายทะเบียน" in readme and "Data held about the plate" in readme
    assert "ทำโดย: dpo" in readme and "Made by: dpo" in readme and "Made at:" in readme
    for name in ("README.txt", "reads.csv", "reads.json", "images/", "hits.csv", "visits.json", "corrections.json",
                 "lists.json"):
        assert readme.count(f"\n  {name}") == 2  # listed in Thai and in English
    # The export is audited.
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "plate.export"))
    assert entry.username == "dpo" and entry.target == f"plate:{PLATE}" and entry.detail["reads"] == 5


def test_corrections_are_in_the_zip_with_their_audit_entries(client, make_token, plates):
    token = admin_token(make_token)
    moved = send(client, "กข 1284", "CAM-A", image=False)
    answer = client.patch(f"/api/records/{moved}", json={"plate_corrected": "กข 1234"}, headers=bearer(token))
    assert answer.status_code == 200, answer.get_json()
    away = plates["A"][1]
    assert client.patch(f"/api/records/{away}", json={"plate_corrected": "กข 9999"},
                        headers=bearer(token)).status_code == 200
    zf = unzip(client.get(ZIP_URL, headers=bearer(token)))
    corrections = json.loads(zf.read("corrections.json"))
    assert [c["record_id"] for c in corrections["corrected_reads"]] == [moved]
    assert {(e["record_id"], e["record_is_this_plate"]) for e in corrections["audit_entries"]} == \
        {(moved, True), (away, False)}
    assert all(e["action"] == "record.correct" for e in corrections["audit_entries"])
    reads = json.loads(zf.read("reads.json"))
    assert moved in [r["id"] for r in reads] and away not in [r["id"] for r in reads]
    assert "images/" + str(moved) + ".jpg" not in zf.namelist()  # sent without an image


def test_the_path_is_normalised_and_the_export_route_is_not_the_plate_s_history(client, make_token, plates):
    token = admin_token(make_token)
    for spelling in ("กข 1234", "กข-1234", "กข๑๒๓๔"):
        assert unzip(client.get(f"/api/plates/{quote(spelling)}/export.zip", headers=bearer(token)))
    history = client.get(URL, headers=bearer(token))
    assert history.status_code == 200 and history.get_json()["plate"] == PLATE


def test_an_unknown_plate_is_404_for_export_and_erase(client, make_token, plates):
    token = admin_token(make_token)
    for answer in (client.get("/api/plates/ZZ9999/export.zip", headers=bearer(token)),
                   client.delete("/api/plates/ZZ9999", query_string={"reason": "request 1"},
                                 headers=bearer(token))):
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"


def test_erase_removes_rows_files_and_thumbnails_and_leaves_other_plates(client, make_token, plates, image_root):
    token = admin_token(make_token, name="dpo")
    every = plates["A"] + plates["B"]
    files = [path for rid in every for path in (db.session.get(Record, rid).image_path,
                                                 db.session.get(Record, rid).thumbnail_path)]
    assert all((image_root / p).is_file() for p in files) and len(files) == 10
    other = db.session.get(Record, plates["other"][0])
    other_files = [other.image_path, other.thumbnail_path]
    assert db.session.scalar(select(func.count()).select_from(AnalyticsPlateDay)
                             .where(AnalyticsPlateDay.plate_normalized == PLATE)) == 1
    db.session.rollback()
    answer = client.delete(URL, query_string={"reason": "คำขอลบข้อมูล #12"}, headers=bearer(token))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"records": 5, "files": 10}
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Record).where(Record.plate_normalized == PLATE)) == 0
    assert not any((image_root / p).exists() for p in files)
    assert db.session.scalar(select(func.count()).select_from(BlacklistDetection)) == 0
    assert db.session.scalar(select(func.count()).select_from(Alert).where(Alert.plate == PLATE)) == 0
    assert [v.plate_normalized for v in db.session.scalars(select(Visit))] == [OTHER]
    assert db.session.scalar(select(func.count()).select_from(AnalyticsPlateDay)
                             .where(AnalyticsPlateDay.plate_normalized == PLATE)) == 0
    # The other plate, and the lists naming this one, are untouched.
    assert db.session.get(Record, plates["other"][0]) is not None
    assert all((image_root / p).is_file() for p in other_files)
    assert db.session.scalar(select(func.count()).select_from(KnownPlate)) == 1
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "plate.erase"))
    assert entry.username == "dpo" and entry.target == f"plate:{PLATE}"
    assert (entry.detail["reason"], entry.detail["records"], entry.detail["files"]) == ("คำขอลบข้อมูล #12", 5, 10)
    # Nothing is left to erase; the lists are still there to export.
    again = client.delete(URL, query_string={"reason": "again"}, headers=bearer(token))
    assert again.status_code == 404
    zf = unzip(client.get(ZIP_URL, headers=bearer(token)))
    assert json.loads(zf.read("reads.json")) == [] and len(json.loads(zf.read("lists.json"))["known"]) == 1


@pytest.mark.parametrize("query", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}])
def test_erase_needs_a_reason(client, make_token, plates, query):
    answer = client.delete(URL, query_string=query, headers=bearer(admin_token(make_token)))
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"]["code"] == "validation_error"
    assert db.session.scalar(select(func.count()).select_from(Record).where(Record.plate_normalized == PLATE)) == 5


def test_a_site_limited_admin_exports_and_erases_only_their_sites_reads(client, make_token, plates, image_root):
    token_b = admin_token(make_token, sites=["B"], name="admin-b")
    zf = unzip(client.get(ZIP_URL, headers=bearer(token_b)))
    assert [r["id"] for r in json.loads(zf.read("reads.json"))] == plates["B"]
    assert {n for n in zf.namelist() if n.startswith("images/")} == {f"images/{r}.jpg" for r in plates["B"]}
    assert json.loads(zf.read("visits.json")) == []  # the visit was at site A
    assert "B" in zf.read("README.txt").decode()
    # A site that never read the plate: its reads are not there (the lists are global, so the zip is made).
    token_c = admin_token(make_token, sites=["C"], name="admin-c")
    zf = unzip(client.get(ZIP_URL, headers=bearer(token_c)))
    assert json.loads(zf.read("reads.json")) == [] and json.loads(zf.read("hits.json")) == []
    assert client.delete(URL, query_string={"reason": "r"}, headers=bearer(token_c)).status_code == 404
    assert client.get("/api/plates/" + quote(OTHER) + "/export.zip", headers=bearer(token_b)).status_code == 404
    # Site B's admin erases site B's reads only.
    answer = client.delete(URL, query_string={"reason": "request at site B"}, headers=bearer(token_b))
    assert answer.get_json() == {"records": 2, "files": 4}
    db.session.expire_all()
    left = db.session.scalars(select(Record.id).where(Record.plate_normalized == PLATE).order_by(Record.id)).all()
    assert left == plates["A"]
    assert all((image_root / db.session.get(Record, rid).image_path).is_file() for rid in plates["A"])
    assert db.session.scalar(select(func.count()).select_from(Visit).where(Visit.plate_normalized == PLATE)) == 1
    # Site A still reads the plate today: its day in the analytics stays.
    assert db.session.scalar(select(func.count()).select_from(AnalyticsPlateDay)
                             .where(AnalyticsPlateDay.plate_normalized == PLATE)) == 1
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "plate.erase"))
    assert entry.detail["sites"] == ["B"] and entry.detail["records"] == 2


def test_every_kind_of_caller(client, make_token, plates):
    callers = {"stranger": {}, "viewer": bearer(make_token("viewer")), "operator": bearer(make_token("operator")),
               "read-only admin": bearer(make_token("admin", "read")),
               "admin": bearer(make_token("admin"))}
    exported = {who: status(client.get(ZIP_URL, headers=h)) for who, h in callers.items()}
    assert exported == {"stranger": 401, "viewer": 403, "operator": 403, "read-only admin": 200, "admin": 200}
    erased = {who: client.delete(URL, query_string={"reason": "r"}, headers=h).status_code
              for who, h in callers.items()}
    assert erased == {"stranger": 401, "viewer": 403, "operator": 403, "read-only admin": 403, "admin": 200}
    assert client.get(ZIP_URL, headers=callers["viewer"]).get_json()["error"]["code"] == "forbidden"


def test_the_api_with_the_session_cookie_needs_the_csrf_header(app, users, plates):
    browser = PageClient(app)
    assert browser.login("admin").status_code == 302
    assert unzip(browser.get(ZIP_URL))
    assert browser.open("DELETE", URL + "?reason=r").status_code == 400
    answer = browser.open("DELETE", URL + "?reason=r", headers={"X-CSRFToken": browser.token("/")})
    assert answer.status_code == 200 and answer.get_json()["records"] == 5


def test_the_plate_page_offers_export_and_erase_to_admins_only(app, users, plates, image_root):
    save_user(db.session, "guard-b", "admin", "guard-password-123")
    db.session.commit()
    viewer = PageClient(app)
    assert viewer.login("viewer").status_code == 302
    page = viewer.get("/plates/" + quote(PLATE)).get_data(as_text=True)
    assert 'id="plate-export"' not in page and 'id="plate-erase-form"' not in page
    assert viewer.post("/plates/" + quote(PLATE) + "/erase",
                       data={"reason": "x", "csrf_token": csrf_token(page)}).status_code == 403
    admin = PageClient(app)
    assert admin.login("admin").status_code == 302
    page = admin.get("/plates/" + quote(PLATE)).get_data(as_text=True)
    assert f'href="/api/plates/{quote(PLATE)}/export.zip"' in page and 'id="plate-erase-form"' in page
    assert "Export (zip)" in page and 'name="reason"' in page
    target = "/plates/" + quote(PLATE) + "/erase"
    assert admin.post(target, data={"reason": "x"}).status_code == 400  # no CSRF token
    answer = admin.post(target, data={"reason": " ", "csrf_token": csrf_token(page)})
    assert answer.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Record).where(Record.plate_normalized == PLATE)) == 5
    answer = admin.post(target, data={"reason": "request #7", "csrf_token": csrf_token(page)})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/plates/" + quote(PLATE))
    page = admin.get("/plates/" + quote(PLATE)).get_data(as_text=True)
    assert "Erased กข1234: 5 reads and 10 image files." in page
    assert db.session.scalar(select(func.count()).select_from(Record).where(Record.plate_normalized == PLATE)) == 0
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "plate.erase"))
    assert entry.username == "admin" and entry.detail["reason"] == "request #7"


def test_a_big_plate_streams_through_chunks(client, make_token, app, monkeypatch):
    """More reads than a chunk: the zip and the erase page through them."""
    from lprserver import privacy

    monkeypatch.setattr(privacy, "CHUNK", 3)
    db.session.add(Camera(id="CAM-A", site="A"))
    db.session.commit()
    ids = [send(client, "กข 1234", image=i % 2 == 0, seed=i) for i in range(8)]
    token = admin_token(make_token)
    zf = unzip(client.get(ZIP_URL, headers=bearer(token)))
    assert [r["id"] for r in json.loads(zf.read("reads.json"))] == ids
    assert len([n for n in zf.namelist() if n.startswith("images/")]) == 4
    answer = client.delete(URL, query_string={"reason": "r"}, headers=bearer(token))
    assert answer.get_json() == {"records": 8, "files": 8}
    assert utcnow() - timedelta(minutes=5) < db.session.scalar(select(func.max(AuditEntry.at)))
