"""Known plates and groups (SPEC §10): the services, /api/known-plates, /api/known-groups and /known, with
bad input, CSV import and export, the known name shown on records, and who may do what."""

import csv
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from lprserver import known_plates
from lprserver.extensions import db
from lprserver.known_plates import MAX_IMPORT_ROWS
from lprserver.models import AuditEntry, Camera, KnownGroup, KnownPlate, Record, utcnow

from .conftest import bearer
from .webserver import PageClient


def count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(KnownPlate))


def audits(action: str) -> list[AuditEntry]:
    db.session.rollback()
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


# --- the API ------------------------------------------------------------------------------------------


def test_crud_through_the_api_keeps_the_plate_as_typed_and_audits_each_change(client, api_token):
    h = bearer(api_token)
    answer = client.post("/api/known-plates", headers=h, json={
        "plate": "กข 1234 กรุงเทพมหานคร", "name": "สมชาย", "notes": "ห้อง 301", "group": "residents",
        "valid_from": "2026-01-01T08:00", "valid_until": "2027-01-01T00:00:00+00:00"})
    assert answer.status_code == 201, answer.get_json()
    plate = answer.get_json()
    assert (plate["plate"], plate["plate_normalized"], plate["province_code"], plate["group"]) == (
        "กข 1234 กรุงเทพมหานคร", "กข1234", "TH-10", "residents")
    assert plate["valid_from"] == "2026-01-01T01:00:00+00:00"  # read in Asia/Bangkok
    assert plate["added_by"] == "admin" and plate["current"] is True
    assert db.session.get(KnownGroup, "residents") is not None  # the new group was made
    assert client.get(f"/api/known-plates/{plate['id']}", headers=h).get_json()["name"] == "สมชาย"
    other = client.post("/api/known-plates", headers=h, json={"plate": "ขค 5678", "group": "staff",
                                                              "province_code": "th-50"}).get_json()
    assert other["province_code"] == "TH-50"
    listed = client.get("/api/known-plates", headers=h).get_json()
    assert [p["id"] for p in listed["plates"]] == [other["id"], plate["id"]] and listed["total"] == 2
    assert [p["id"] for p in client.get("/api/known-plates?group=staff", headers=h).get_json()["plates"]] == [
        other["id"]]
    assert client.get("/api/known-plates?plate=1234", headers=h).get_json()["total"] == 1
    assert client.get("/api/known-plates?per_page=1&page=2", headers=h).get_json()["plates"][0]["id"] == plate["id"]
    changed = client.patch(f"/api/known-plates/{plate['id']}", headers=h,
                           json={"name": "สมศักดิ์", "group": "staff", "valid_until": None})
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert (body["name"], body["group"], body["valid_until"], body["province_code"]) == (
        "สมศักดิ์", "staff", None, "TH-10")
    [update] = audits("known.update")
    assert update.detail["name"] == ["สมชาย", "สมศักดิ์"] and update.detail["group"] == ["residents", "staff"]
    assert client.delete(f"/api/known-plates/{plate['id']}", headers=h).status_code == 204
    assert client.get(f"/api/known-plates/{plate['id']}", headers=h).status_code == 404
    assert len(audits("known.add")) == 2 and audits("known.delete")[0].detail["plate"] == "กข 1234 กรุงเทพมหานคร"


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"plate": "กข1234", "group": "g", "valid_from": "yesterday"}, "valid_from", "Not a valid datetime"),
    ({"plate": "กข1234", "group": "g", "valid_until": "2026-13-01"}, "valid_until", "Not a valid datetime"),
    ({"plate": "กข1234", "group": "g", "valid_from": "2026-02-01", "valid_until": "2026-01-01"}, "valid_until",
     "must be after valid_from"),
    ({"plate": "กข1234", "group": "g", "valid_from": "2026-02-01T00:00", "valid_until": "2026-02-01T00:00"},
     "valid_until", "must be after valid_from"),
    ({"plate": "กข1234", "group": "g", "valid_from": "1900-01-01T00:00"}, "valid_from", "1970-2100"),
    ({"plate": "กข1234", "group": ""}, "group", "Length must be between 1 and 64"),
    ({"plate": "กข1234", "group": "   "}, "group", "group is empty"),
    ({"plate": "กข1234", "group": "g" * 65}, "group", "Length must be between 1 and 64"),
    ({"plate": "กข1234", "group": "a/b"}, "group", "may not hold /"),
    ({"plate": "กข1234"}, "group", "Missing data"),
    ({"group": "g"}, "plate", "Missing data"),
    ({"plate": "  ", "group": "g"}, "plate", "plate is empty"),
    ({"plate": "กข12*", "group": "g"}, "plate", "* and ? are not allowed"),
    ({"plate": "กข1234", "group": "g", "province_code": "TH-99"}, "province_code", "is not a Thai province"),
    ({"plate": "กข1234", "group": "g", "name": "x" * 129}, "name", "Longer than maximum"),
    ({"plate": "กข1234", "group": "g", "notes": "a\x00b"}, "notes", "NUL"),
])
def test_bad_input_is_refused_naming_the_field_and_stores_nothing(client, api_token, body, field, message):
    answer = client.post("/api/known-plates", headers=bearer(api_token), json=body)
    error = answer.get_json()["error"]
    assert answer.status_code == 400 and error["code"] == "validation_error", error
    assert error["field"] == field and message in error["message"], error
    assert count() == 0 and db.session.scalar(select(func.count()).select_from(KnownGroup)) == 0


def test_the_same_plate_twice_in_a_group_is_a_conflict_and_another_group_is_fine(client, api_token):
    h = bearer(api_token)
    first = client.post("/api/known-plates", headers=h, json={"plate": "กข1234", "group": "residents"}).get_json()
    again = client.post("/api/known-plates", headers=h, json={"plate": "กข-๑๒๓๔", "group": "residents"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    assert "กข1234 is a known plate of group residents already" in again.get_json()["error"]["message"]
    staff = client.post("/api/known-plates", headers=h, json={"plate": "กข1234", "group": "staff"}).get_json()
    moved = client.patch(f"/api/known-plates/{staff['id']}", headers=h, json={"group": "residents"})
    assert moved.status_code == 409
    assert client.get(f"/api/known-plates/{staff['id']}", headers=h).get_json()["group"] == "staff"
    bad = client.patch(f"/api/known-plates/{first['id']}", headers=h,
                       json={"valid_from": "2026-05-01", "valid_until": "2026-04-01"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "valid_until"
    assert client.get(f"/api/known-plates/{first['id']}", headers=h).get_json()["valid_from"] is None


def test_unknown_ids_answer_404_json(client, api_token):
    h = bearer(api_token)
    for method in ("get", "patch", "delete"):
        answer = getattr(client, method)("/api/known-plates/424242", headers=h, json={"name": "x"})
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found", method
    assert client.get("/api/known-plates/99999999999999999999", headers=h).status_code == 404


def test_groups_list_and_take_a_max_stay(client, api_token):
    h = bearer(api_token)
    client.post("/api/known-plates", headers=h, json={"plate": "กข1234", "group": "residents"})
    answer = client.put("/api/known-groups/residents", headers=h, json={"max_stay_minutes": 120})
    assert answer.get_json() == {"name": "residents", "max_stay_minutes": 120, "plates": 1}
    assert client.put("/api/known-groups/visitors", headers=h, json={"max_stay_minutes": 30}).status_code == 200
    assert client.put("/api/known-groups/residents", headers=h, json={"max_stay_minutes": None}).get_json()[
        "max_stay_minutes"] is None
    assert client.get("/api/known-groups", headers=h).get_json() == {"groups": [
        {"name": "residents", "max_stay_minutes": None, "plates": 1},
        {"name": "visitors", "max_stay_minutes": 30, "plates": 0}]}
    for body in ({"max_stay_minutes": 0}, {"max_stay_minutes": 100_001}, {"max_stay_minutes": "ten"},
                 {"max_stay_minutes": 1.5}, {}):
        answer = client.put("/api/known-groups/residents", headers=h, json=body)
        assert answer.status_code == 400 and answer.get_json()["error"]["field"] == "max_stay_minutes", body
    answer = client.put(f"/api/known-groups/{'g' * 65}", headers=h, json={"max_stay_minutes": 5})
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] == "group"
    [first, *_] = audits("known_group.update")
    assert first.detail == {"max_stay_minutes": [None, 120]}


CSV_TEXT = ("plate,name,notes,group,valid_from,valid_until\n"
            "กข 1234,สมชาย,ห้อง 301,residents,2026-01-01,2027-01-01\n"      # 2 added
            "ขค 5678 เชียงใหม่,Somsak,,staff,,\n"                           # 3 added, TH-50
            "AB1,bad date,,staff,tomorrow,\n"                               # 4
            "AB2,backwards,,staff,2026-05-01,2026-04-01\n"                  # 5
            "AB3,no group,,,,\n"                                            # 6
            "AB4,long group,," + "g" * 65 + ",,\n"                          # 7
            "กข-1234,twice,,residents,,\n"                                  # 8 a repeat of line 2
            ",no plate,,staff,,\n"                                          # 9
            "\n"                                                            # a blank line: skipped
            "ฮฮ9,=HYPERLINK(\"x\"),-note,visitors,2026-03-01T08:30,\n")     # 11 added


def test_csv_import_through_the_api_rejects_bad_rows_with_line_and_reason(client, api_token):
    h = bearer(api_token)
    answer = client.post("/api/known-plates/import", headers={**h, "Content-Type": "text/csv"},
                         data=CSV_TEXT.encode())
    body = answer.get_json()
    assert answer.status_code == 200 and body["added"] == 3, body
    reasons = {row["line"]: row["reason"] for row in body["rejected"]}
    assert sorted(reasons) == [4, 5, 6, 7, 8, 9]
    assert "valid_from is not a date" in reasons[4] and "must be after valid_from" in reasons[5]
    assert "group is empty" in reasons[6] and "over 64 characters" in reasons[7]
    assert "already" in reasons[8] and "plate is empty" in reasons[9]
    assert count() == 3 and sorted(db.session.scalars(select(KnownGroup.name))) == ["residents", "staff",
                                                                                    "visitors"]
    exported = client.get("/api/known-plates/export.csv", headers=h)
    assert exported.mimetype == "text/csv"
    text = exported.get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["plate", "name", "notes", "group", "valid_from", "valid_until", "province_code"]
    assert [(r["plate"], r["group"]) for r in rows] == [("กข 1234", "residents"), ("ขค 5678 เชียงใหม่", "staff"),
                                                        ("ฮฮ9", "visitors")]
    assert rows[0]["valid_from"] == "2026-01-01T00:00:00+07:00" and rows[2]["name"].startswith("'=")
    db.session.execute(KnownPlate.__table__.delete())
    db.session.commit()
    again = client.post("/api/known-plates/import", headers=h, content_type="multipart/form-data",
                        data={"file": (io.BytesIO(text.encode()), "known.csv")}).get_json()
    assert again["added"] == 3 and again["rejected"] == []  # the export imports back whole
    db.session.rollback()
    back = db.session.scalars(select(KnownPlate).order_by(KnownPlate.id)).all()
    assert [(p.plate, p.name, p.notes, p.province_code) for p in back] == [
        ("กข 1234", "สมชาย", "ห้อง 301", None), ("ขค 5678 เชียงใหม่", "Somsak", None, "TH-50"),
        ("ฮฮ9", '=HYPERLINK("x")', "-note", None)]
    assert back[2].valid_from == datetime(2026, 3, 1, 1, 30, tzinfo=UTC)


def test_an_oversized_or_unreadable_import_is_refused_and_stores_nothing(client, api_token):
    h = {**bearer(api_token), "Content-Type": "text/csv"}
    big = "plate,group\n" + "".join(f"P{i},g\n" for i in range(MAX_IMPORT_ROWS + 1))
    answer = client.post("/api/known-plates/import", headers=h, data=big.encode())
    error = answer.get_json()["error"]
    assert answer.status_code == 400 and error["field"] == "file" and "at most 10,000" in error["message"]
    assert count() == 0
    huge = client.post("/api/known-plates/import", headers=h, data=b"plate,group\n" + b"x" * (3 * 1024 * 1024))
    assert huge.status_code == 413 and huge.get_json()["error"]["code"] == "payload_too_large"
    for data, message in ((b"", "send a CSV file"), (b"\xff\xfe\x00bad", "not UTF-8")):
        answer = client.post("/api/known-plates/import", headers=h, data=data)
        assert answer.status_code == 400 and message in answer.get_json()["error"]["message"]
    for data, message in ((b"name,notes\nx,y\n", "no plate or group column"), (b"{}", "no plate or group"),
                          (b'plate,group\n"' + b"x" * 200_000, "not CSV")):
        answer = client.post("/api/known-plates/import", headers=h, data=data)
        assert answer.status_code == 400 and message in answer.get_json()["error"]["message"], data
    answer = client.post("/api/known-plates/import", headers={**h, "Content-Type": "application/json"}, json=[])
    assert answer.status_code == 415
    assert count() == 0


def test_every_new_path_is_in_the_openapi_document(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path, methods in {"/api/known-plates": {"get", "post"},
                          "/api/known-plates/{plate_id}": {"get", "patch", "delete"},
                          "/api/known-plates/export.csv": {"get"}, "/api/known-plates/import": {"post"},
                          "/api/known-groups": {"get"}, "/api/known-groups/{group}": {"put"}}.items():
        assert methods <= set(paths[path]), path
    assert "text/csv" in paths["/api/known-plates/import"]["post"]["requestBody"]["content"]


# --- the known name on records -----------------------------------------------------------------------


def test_records_show_the_known_name_and_group_in_the_api_and_on_the_pages(app, client, api_token, users):
    h = bearer(api_token)
    client.post("/api/known-plates", headers=h, json={"plate": "กข1234", "group": "residents", "name": "<b>สมชาย</b>"})
    client.post("/api/known-plates", headers=h, json={"plate": "ขค1", "group": "staff",
                                                      "valid_until": "2020-01-01T00:00"})  # not valid now
    now = utcnow()
    db.session.add(Camera(id="CAM1", name="Gate", created_at=now))
    db.session.flush()
    for plate in ("กข1234", "ขค1", "จฉ2"):
        db.session.add(Record(camera_id="CAM1", plate_number=plate, plate_normalized=plate, captured_at=now,
                              received_at=now))
    db.session.commit()
    listed = client.get("/api/records", headers=h).get_json()["records"]
    known = {r["plate_number"]: r["known"] for r in listed}
    assert known["ขค1"] is None and known["จฉ2"] is None
    assert known["กข1234"]["name"] == "<b>สมชาย</b>" and known["กข1234"]["group"] == "residents"
    record_id = next(r["id"] for r in listed if r["plate_number"] == "กข1234")
    assert client.get(f"/api/records/{record_id}", headers=h).get_json()["known"] == known["กข1234"]
    browser = PageClient(app)
    assert browser.login("viewer").status_code == 302
    page = browser.get("/records").get_data(as_text=True)
    assert page.count("known-badge") == 1 and "&lt;b&gt;สมชาย&lt;/b&gt; · residents" in page
    one = browser.get(f"/records/{record_id}").get_data(as_text=True)
    assert 'id="record-known"' in one and "&lt;b&gt;สมชาย&lt;/b&gt; · residents" in one


# --- the page -----------------------------------------------------------------------------------------


def _operator(app) -> tuple[PageClient, str]:
    browser = PageClient(app)
    assert browser.login("operator").status_code == 302
    return browser, browser.token("/known")


def test_the_page_adds_edits_filters_and_deletes(app, users):
    browser, token = _operator(app)
    answer = browser.post("/known", data={"plate": "กข 1234", "group": "residents", "name": "สมชาย",
                                          "valid_from": "2026-01-01T08:00", "province_code": "", "csrf_token": token})
    assert answer.status_code == 302
    browser.post("/known", data={"plate": "ขค 5678", "group": "staff", "csrf_token": token})
    row = db.session.scalar(select(KnownPlate).where(KnownPlate.plate == "กข 1234"))
    assert row.valid_from == datetime(2026, 1, 1, 1, 0, tzinfo=UTC) and row.added_by == "operator"
    page = browser.get("/known").get_data(as_text=True)
    assert 'data-known-id="' in page and "สมชาย" in page and 'data-group="residents"' in page
    filtered = browser.get("/known?group=staff").get_data(as_text=True).split('id="known-table"')[1]
    assert "ขค 5678" in filtered and "กข 1234" not in filtered
    filtered = browser.get("/known?plate=1234").get_data(as_text=True).split('id="known-table"')[1]
    assert "กข 1234" in filtered and "ขค 5678" not in filtered
    edit = browser.get(f"/known/{row.id}/edit").get_data(as_text=True)
    assert 'value="2026-01-01T08:00"' in edit and f'/known/{row.id}/edit' in edit
    answer = browser.post(f"/known/{row.id}/edit", data={
        "plate": "กข 1234", "group": "visitors", "name": "สมศักดิ์", "valid_from": "2026-01-01T08:00",
        "valid_until": "2026-12-31T18:00", "notes": "", "province_code": "TH-10", "csrf_token": token})
    assert answer.status_code == 302
    db.session.rollback()
    row = db.session.get(KnownPlate, row.id)
    assert (row.group_name, row.name, row.province_code) == ("visitors", "สมศักดิ์", "TH-10")
    assert browser.post("/known/groups", data={"group": "visitors", "max_stay_minutes": "45",
                                               "csrf_token": token}).status_code == 302
    assert db.session.get(KnownGroup, "visitors").max_stay_minutes == 45
    assert browser.post(f"/known/{row.id}/delete", data={"csrf_token": token}).status_code == 302
    assert count() == 1


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"plate": "กข1234", "group": "g", "valid_from": "soon"}, "valid_from", "valid_from is not a date"),
    ({"plate": "กข1234", "group": "g", "valid_from": "2026-02-01T00:00", "valid_until": "2026-01-01T00:00"},
     "valid_until", "must be after valid_from"),
    ({"plate": "กข1234", "group": ""}, "group", "group is empty"),
    ({"plate": "กข1234", "group": "g" * 65}, "group", "over 64 characters"),
    ({"plate": "", "group": "g"}, "plate", "plate is empty"),
])
def test_the_form_shows_the_error_by_its_field_and_stores_nothing(app, users, form, field, message):
    browser, token = _operator(app)
    answer = browser.post("/known", data={**form, "name": "ทดสอบ", "csrf_token": token})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert message in html.split(f'id="kp-error-{field}"')[1].split("</div>")[0]
    assert html.count("is-invalid") == 1 and 'value="ทดสอบ"' in html
    assert count() == 0


def test_the_page_refuses_a_twin_and_a_bad_max_stay(app, users):
    browser, token = _operator(app)
    browser.post("/known", data={"plate": "กข1234", "group": "g", "csrf_token": token})
    twin = browser.post("/known", data={"plate": "กข 1234", "group": "g", "csrf_token": token})
    assert twin.status_code == 400 and "is a known plate of group g already" in twin.get_data(as_text=True)
    for minutes in ("0", "abc", "100001"):
        answer = browser.post("/known/groups", data={"group": "g", "max_stay_minutes": minutes, "csrf_token": token})
        assert answer.status_code == 400 and 'id="group-error"' in answer.get_data(as_text=True), minutes
    assert db.session.get(KnownGroup, "g").max_stay_minutes is None and count() == 1


def test_csv_import_and_export_on_the_page(app, users, monkeypatch):
    browser, token = _operator(app)
    answer = browser.post("/known/import", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO(CSV_TEXT.encode()), "known.csv")})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Imported 3 plates" in html and "rejected 6" in html
    assert "must be after valid_from" in html.split("<td>5</td>")[1].split("</tr>")[0]
    monkeypatch.setattr(known_plates, "MAX_IMPORT_BYTES", 1000)  # werkzeug's test client leaks big bodies' files
    too_big = browser.post("/known/import", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO(b"plate,group\n" + b"x" * 1000), "big.csv")})
    assert too_big.status_code == 400 and "at most 2 MB" in too_big.get_data(as_text=True)
    exported = browser.get("/known/export.csv")
    assert exported.headers["Content-Disposition"].endswith("lpr-known-plates.csv")
    assert len(list(csv.DictReader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))) == 3
    assert audits("known.export") and count() == 3


# --- who may do what ----------------------------------------------------------------------------------


def test_the_api_paths_are_walked_for_every_kind_of_caller(app, client, make_token):
    db.session.add(KnownGroup(name="g"))
    db.session.add(KnownPlate(plate="กข1", plate_normalized="กข1", group_name="g"))
    db.session.commit()
    plate_id = db.session.scalar(select(KnownPlate.id))
    reads = ["/api/known-plates", f"/api/known-plates/{plate_id}", "/api/known-plates/export.csv",
             "/api/known-groups"]
    writes = [("post", "/api/known-plates", {"plate": "ขค2", "group": "g"}),
              ("patch", f"/api/known-plates/{plate_id}", {"name": "x"}),
              ("put", "/api/known-groups/g", {"max_stay_minutes": 10}),
              ("post", "/api/known-plates/import", None),
              ("delete", f"/api/known-plates/{plate_id}", None)]

    def write(method, path, body, headers):
        if path.endswith("/import"):
            return client.post(path, headers={**headers, "Content-Type": "text/csv"},
                               data="plate,group\nฮ1,g\n".encode())
        return getattr(client, method)(path, headers=headers, json=body)

    for path in reads:
        assert client.get(path).status_code == 401, path
    for method, path, body in writes:
        assert write(method, path, body, {}).status_code == 401, path
    tokens = {who: make_token(role, scope) for who, role, scope in (
        ("viewer", "viewer", "read-write"), ("read-only", "admin", "read"),
        ("operator", "operator", "read-write"), ("admin", "admin", "read-write"))}
    for who, token in tokens.items():
        for path in reads:
            assert client.get(path, headers=bearer(token)).status_code == 200, (who, path)
    for who in ("viewer", "read-only"):
        for method, path, body in writes:
            answer = write(method, path, body, bearer(tokens[who]))
            assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "forbidden", (who, path)
    assert count() == 1
    for who in ("operator", "admin"):
        for method, path, body in writes[:4]:
            answer = write(method, path, body, bearer(tokens[who]))
            assert answer.status_code in (200, 201, 409), (who, path, answer.get_json())
    assert write(*writes[4], bearer(tokens["admin"])).status_code == 204


def test_the_page_and_its_forms_are_walked_for_every_kind_of_caller(app, users, make_token):
    db.session.add(KnownGroup(name="g"))
    db.session.add(KnownPlate(plate="กข1", plate_normalized="กข1", group_name="g"))
    db.session.commit()
    plate_id = db.session.scalar(select(KnownPlate.id))
    forms = [("/known", {"plate": "ขค2", "group": "g"}), (f"/known/{plate_id}/edit", {"plate": "กข1", "group": "g"}),
             ("/known/groups", {"group": "g", "max_stay_minutes": "5"}), (f"/known/{plate_id}/delete", {})]
    stranger = PageClient(app)
    for path in ("/known", "/known/export.csv", f"/known/{plate_id}/edit"):
        answer = stranger.get(path)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], path
        for scope in ("read", "read-write"):  # pages never take a Bearer token
            assert PageClient(app).get(path, headers=bearer(make_token("admin", scope))).status_code == 302
    token = stranger.token("/login")
    for path, form in forms:
        answer = stranger.post(path, data={**form, "csrf_token": token})
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], path
    viewer = PageClient(app)
    assert viewer.login("viewer").status_code == 302
    page = viewer.get("/known")
    assert page.status_code == 200 and 'id="known-form"' not in page.get_data(as_text=True)
    assert viewer.get("/known/export.csv").status_code == 200
    assert viewer.get(f"/known/{plate_id}/edit").status_code == 403
    for path, form in forms:
        assert viewer.post(path, data={**form, "csrf_token": viewer.token("/known")}).status_code == 403, path
    operator, token = _operator(app)
    assert operator.post("/known", data={"plate": "ขค2", "group": "g"}).status_code == 400  # no CSRF token
    assert count() == 1
    for role in ("operator", "admin"):
        browser = PageClient(app)
        assert browser.login(role).status_code == 302
        token = browser.token("/known")
        assert 'id="known-form"' in browser.get("/known").get_data(as_text=True)
        for path, form in forms[:3]:
            form = {**form, "plate": f"{role}1"} if path == "/known" else form
            assert browser.post(path, data={**form, "csrf_token": token}).status_code == 302, (role, path)
    admin = PageClient(app)
    assert admin.login("admin").status_code == 302
    assert admin.post(forms[3][0], data={"csrf_token": admin.token("/known")}).status_code == 302
    assert count() == 2


# --- in a real browser --------------------------------------------------------------------------------

SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


@pytest.mark.parametrize("size", SIZES)
def test_the_known_and_cameras_pages_work_and_fit_in_a_browser(webapp, app, users, browser, size):
    from .test_browser import open_page
    from .webserver import screenshot, sign_in

    now = utcnow()
    db.session.add_all([Camera(id="GATE1", name="ประตูหน้า หอพัก", location="หน้าหอพัก", role="entry", created_at=now,
                               online=True, last_seen=now),
                        Camera(id="GATE2", name="ประตูหลัง", role="exit", created_at=now)])
    db.session.commit()
    context = browser.new_context(viewport=SIZES[size], locale="th-TH")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, webapp, "operator")
        open_page(page, webapp, "/known")
        for plate, group, name in (("กข 1234 กรุงเทพมหานคร", "residents", "สมชาย ใจดี"), ("ขค 5678", "staff", "Somsak"),
                                   ("1กค 99", "residents", "ห้อง 204")):
            page.fill("#kp-plate", plate)
            page.fill("#kp-group", group)
            page.fill("#kp-name", name)
            page.click("#known-form button[type=submit]")
            page.wait_for_url(f"{webapp.url}/known")
        page.fill("#kp-plate", "ฮฮ1")
        page.fill("#kp-group", "staff")
        page.fill("#kp-from", "2026-02-01T08:00")
        page.fill("#kp-until", "2026-01-01T08:00")
        page.click("#known-form button[type=submit]")
        assert "ต้องอยู่หลังเวลาเริ่ม" in page.inner_text("#kp-error-valid_until")  # the browser asks for Thai
        open_page(page, webapp, "/known")
        page.locator('tr[data-group="residents"] input[name=max_stay_minutes]').fill("120")
        page.locator('tr[data-group="residents"] button[type=submit]').click()
        page.wait_for_url(f"{webapp.url}/known")
        assert page.locator("#known-table tbody tr").count() == 3
        assert page.input_value('tr[data-group="residents"] input[name=max_stay_minutes]') == "120"
        assert not page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
        screenshot(page, f"known-{size}")
        open_page(page, webapp, "/cameras")
        row = page.locator('tr[data-camera-id="GATE1"]')
        row.locator("select[name=allow_group]").select_option("residents")
        # The gate's form (the row also holds the coordinates' form).
        row.locator("form", has=page.locator("select[name=allow_group]")).locator("button[type=submit]").click()
        page.wait_for_url(f"{webapp.url}/cameras")
        assert page.locator('tr[data-camera-id="GATE1"] select[name=allow_group]').input_value() == "residents"
        assert not page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
        screenshot(page, f"cameras-gates-{size}")
    finally:
        context.close()
    assert errors == []
    db.session.rollback()
    assert db.session.get(Camera, "GATE1").allow_group == "residents"
