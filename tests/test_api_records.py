"""Records over the API: filters like the records page, paging, polling, CSV export, one error shape."""

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.models import AuditEntry, Camera, Record
from lprserver.records import RecordFilter, page_records

from .conftest import bearer

READS = [
    ("CAM001", "กข1234", 95.0, "2026-01-01T08:00:00+07:00"),
    ("CAM001", "กข 1235", 60.0, "2026-01-01T09:00:00+07:00"),
    ("CAM002", "ABC-1234", 80.0, "2026-01-02T08:00:00+07:00"),
    ("CAM002", "XABC1234", 99.0, "2026-01-03T08:00:00+07:00"),
    ("CAM003", "=HYPERLINK(1)", 50.0, "2026-01-04T08:00:00+07:00"),
]


@pytest.fixture
def reads(client):
    ids = []
    for camera, plate, confidence, when in READS:
        answer = client.post("/api/records", json={
            "camera_id": camera, "plate_number": plate, "confidence": confidence, "timestamp": when})
        ids.append(answer.get_json()["record_id"])
    return ids


def plates(client, token, **query):
    answer = client.get("/api/records", query_string=query, headers=bearer(token))
    assert answer.status_code == 200, answer.get_json()
    return [r["plate_number"] for r in answer.get_json()["records"]]


@pytest.mark.parametrize(("query", "expected"), [
    ({"plate": "กข๑๒๓๔", "plate_match": "exact"}, ["กข1234"]),
    ({"plate": "กข 12", "plate_match": "prefix"}, ["กข 1235", "กข1234"]),
    ({"plate": "abc1234"}, ["XABC1234", "ABC-1234"]),
    ({"plate": "abc1234", "plate_match": "prefix"}, ["ABC-1234"]),
    ({"plate": "%"}, []),
    ({"camera_id": "CAM001"}, ["กข 1235", "กข1234"]),
    ({"min_confidence": 90}, ["XABC1234", "กข1234"]),
])
def test_records_filter_like_the_records_page(client, api_token, reads, query, expected):
    assert plates(client, api_token, **query) == expected


def test_the_api_and_the_page_filter_time_alike_on_when_the_server_received_the_read(client, api_token):
    """A camera that was offline uploads its backlog late: captured 08:15, received 09:30 (Bangkok).
    Both doors take the time range on the server's receive time, and find the same records."""
    db.session.add(Camera(id="CAM009"))
    bangkok = ZoneInfo("Asia/Bangkok")
    for plate, captured, received in (("LATE1", "08:15", "09:30"), ("ONTIME1", "08:20", "08:20"),
                                      ("ONTIME2", "09:40", "09:40")):
        db.session.add(Record(camera_id="CAM009", plate_number=plate, plate_normalized=plate,
                              captured_at=datetime.fromisoformat(f"2026-01-05T{captured}").replace(tzinfo=bangkok),
                              received_at=datetime.fromisoformat(f"2026-01-05T{received}").replace(tzinfo=bangkok)))
    db.session.commit()
    for since, until, expected in (("08:00", "09:00", ["ONTIME1"]), ("09:00", "10:00", ["ONTIME2", "LATE1"]),
                                   ("09:35", "", ["ONTIME2"])):
        query = {"from": f"2026-01-05T{since}:00", "camera_id": "CAM009"}
        page_args = {"since": f"2026-01-05T{since}", "camera_id": "CAM009"}
        if until:
            query["to"], page_args["until"] = f"2026-01-05T{until}:00", f"2026-01-05T{until}"
        assert plates(client, api_token, **query) == expected
        page = page_records(db.session, RecordFilter.from_args(page_args, "Asia/Bangkok"))
        assert [r.plate_number for r in page.records] == expected
        csv_text = client.get("/api/records/export.csv", query_string=query, headers=bearer(api_token)).get_data(
            as_text=True)
        assert [row["plate_number"] for row in csv.DictReader(io.StringIO(csv_text))] == expected


def test_records_filter_blacklisted_only(client, api_token):
    client.post("/api/blacklist", headers=bearer(api_token), json={"license_plate_text": "HIT1"})
    client.post("/api/records", json={"camera_id": "CAM001", "plate_number": "HIT1"})
    client.post("/api/records", json={"camera_id": "CAM001", "plate_number": "MISS1"})
    assert plates(client, api_token, blacklisted="true") == ["HIT1"]
    assert plates(client, api_token, blacklisted="false") == ["MISS1"]


def test_records_page_with_total(client, api_token, reads):
    body = client.get("/api/records?per_page=2&page=2", headers=bearer(api_token)).get_json()
    assert body["total"] == 5 and body["page"] == 2 and body["per_page"] == 2
    assert [r["id"] for r in body["records"]] == [reads[2], reads[1]]


def test_since_id_polls_newer_records_oldest_first(client, api_token, reads):
    body = client.get(f"/api/records?since_id={reads[1]}", headers=bearer(api_token)).get_json()
    assert [r["id"] for r in body["records"]] == reads[2:]
    assert body["total"] == 3
    assert client.get(f"/api/records?since_id={reads[-1]}", headers=bearer(api_token)).get_json()["records"] == []


def test_csv_export_streams_the_filtered_list_and_is_audited(client, api_token, reads):
    answer = client.get("/api/records/export.csv?camera_id=CAM002", headers=bearer(api_token))
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert [r["plate_number"] for r in rows] == ["XABC1234", "ABC-1234"]
    assert rows[0]["confidence"] == "99.0"
    assert db.session.query(AuditEntry).filter_by(action="records.export").count() == 1


def test_csv_export_defuses_spreadsheet_formulas(client, api_token, reads):
    text = client.get("/api/records/export.csv?camera_id=CAM003", headers=bearer(api_token)).get_data(as_text=True)
    assert "'=HYPERLINK(1)" in text


def test_unknown_record_is_a_json_404(client, api_token):
    answer = client.get("/api/records/999999", headers=bearer(api_token))
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "not_found"


def test_unknown_api_path_and_wrong_method_answer_json(client, api_token):
    assert client.get("/api/nothing-here", headers=bearer(api_token)).get_json()["error"]["code"] == "not_found"
    answer = client.put("/api/statistics", headers=bearer(api_token))
    assert answer.status_code == 405
    assert answer.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in answer.headers["Allow"]


def test_a_bug_answers_a_json_500(app, client, api_token):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(**_kwargs):
        raise RuntimeError("boom")

    app.view_functions["api.get_statistics"] = broken
    answer = client.get("/api/statistics", headers=bearer(api_token))
    assert answer.status_code == 500
    assert answer.get_json() == {"error": {"code": "internal_server_error",
                                           "message": "the server failed to answer; this is logged"}}


@pytest.mark.parametrize(("query", "field"), [
    ("per_page=0", "per_page"),
    ("page=abc", "page"),
    ("plate_match=fuzzy", "plate_match"),
    ("from=yesterday", "from"),
    ("min_confidence=101", "min_confidence"),
])
def test_bad_query_names_the_field(client, api_token, query, field):
    answer = client.get(f"/api/records?{query}", headers=bearer(api_token))
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "validation_error" and error["field"] == field


def test_bad_body_names_the_field(client, api_token):
    answer = client.post("/api/blacklist", headers=bearer(api_token),
                         json={"license_plate_text": "ABC1", "category": "parked"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "category"
    answer = client.post("/api/blacklist", headers=bearer(api_token), json={"reason": "no plate"})
    assert answer.get_json()["error"]["field"] == "license_plate_text"


def test_record_ingest_errors_take_the_api_error_shape_with_the_ingest_code(client):
    answer = client.post("/api/records", json={"camera_id": "CAM001"})
    assert answer.status_code == 400
    assert answer.get_json() == {"error": {"code": "invalid_payload", "message": "plate_number is required",
                                           "field": "plate_number"}}


def test_record_image_404_when_the_record_has_none(client, api_token, reads):
    answer = client.get(f"/api/records/{reads[0]}/image", headers=bearer(api_token))
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"


def test_cameras_list_and_one_camera(client, api_token, reads):
    body = client.get("/api/cameras", headers=bearer(api_token)).get_json()
    assert [c["id"] for c in body["cameras"]] == ["CAM001", "CAM002", "CAM003"]
    camera = client.get("/api/cameras/CAM001", headers=bearer(api_token)).get_json()
    assert camera["id"] == "CAM001" and camera["reads_today"] == 2
    assert client.get("/api/cameras/NOPE", headers=bearer(api_token)).status_code == 404


def test_blacklist_patch_changes_fields_and_is_audited(client, api_token):
    entry = client.post("/api/blacklist", headers=bearer(api_token),
                        json={"license_plate_text": "ABC1234"}).get_json()
    answer = client.patch(f"/api/blacklist/{entry['id']}", headers=bearer(api_token),
                          json={"category": "wanted", "active": False, "license_plate_text": "abc-999"})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["category"] == "wanted" and body["active"] is False and body["plate_normalized"] == "ABC999"
    audit = db.session.query(AuditEntry).filter_by(action="blacklist.update").one()
    assert audit.detail["category"] == ["other", "wanted"]


def test_blacklist_delete_removes_the_entry_and_is_audited(client, api_token):
    entry = client.post("/api/blacklist", headers=bearer(api_token),
                        json={"license_plate_text": "ABC1234"}).get_json()
    assert client.delete(f"/api/blacklist/{entry['id']}", headers=bearer(api_token)).status_code == 204
    assert client.get(f"/api/blacklist/{entry['id']}", headers=bearer(api_token)).status_code == 404
    assert db.session.query(AuditEntry).filter_by(action="blacklist.delete").one().detail["license_plate_text"] == "ABC1234"


def test_detections_newest_first_and_acknowledged(client, api_token, make_token):
    client.post("/api/blacklist", headers=bearer(api_token), json={"license_plate_text": "HIT1"})
    first = client.post("/api/records", json={"camera_id": "CAM001", "plate_number": "HIT1"}).get_json()
    second = client.post("/api/records", json={"camera_id": "CAM002", "plate_number": "HIT1"}).get_json()
    hits = client.get("/api/blacklist/detections", headers=bearer(api_token)).get_json()["detections"]
    assert [h["record_id"] for h in hits] == [second["record_id"], first["record_id"]]
    operator = make_token("operator")
    answer = client.post(f"/api/blacklist/detections/{hits[0]['id']}/acknowledge", headers=bearer(operator))
    assert answer.status_code == 200 and answer.get_json()["acknowledged_at"]
    left = client.get("/api/blacklist/detections?acknowledged=false", headers=bearer(api_token)).get_json()
    assert [h["id"] for h in left["detections"]] == [hits[1]["id"]]


@pytest.mark.parametrize(("role", "blacklist_write", "webhooks"), [
    ("admin", 201, 200), ("operator", 201, 403), ("viewer", 403, 403), (None, 401, 401)])
def test_role_rules(client, make_token, role, blacklist_write, webhooks):
    headers = bearer(make_token(role)) if role else {}  # None: a stranger, no token
    assert client.get("/api/blacklist", headers=headers).status_code == (200 if role else 401)
    answer = client.post("/api/blacklist", headers=headers, json={"license_plate_text": "ABC1"})
    assert answer.status_code == blacklist_write
    # POST and PATCH with a match mode and a province (SPEC §9) follow the same rule, and so do bad values.
    entry = add_entry(db.session, "ABC2")
    db.session.commit()
    allowed = blacklist_write == 201
    for method, path, done in (("post", "/api/blacklist", 201), ("patch", f"/api/blacklist/{entry.id}", 200)):
        answer = getattr(client, method)(path, headers=headers, json={
            "license_plate_text": "ABC 12*", "match": "pattern", "province_code": "TH-10"})
        assert answer.status_code == (done if allowed else blacklist_write), (method, role)
        if allowed:
            assert (answer.get_json()["match"], answer.get_json()["province_code"]) == ("pattern", "TH-10")
        answer = getattr(client, method)(path, headers=headers, json={"license_plate_text": "ABC3", "match": "x"})
        assert answer.status_code == (400 if allowed else blacklist_write), (method, role)
    answer = client.get("/api/webhooks", headers=headers)
    assert answer.status_code == webhooks
    if webhooks == 403:
        assert answer.get_json()["error"]["code"] == "forbidden"


def test_health_needs_no_sign_in_and_tells_no_data(client):
    # /health lives in lprserver.monitoring (with disk and daemon checks); no daemon runs here.
    answer = client.get("/health")
    body = answer.get_json()
    assert answer.status_code in (200, 503) and set(body) == {"status", "checks"}
    assert body["checks"]["database"]["ok"] is True


def test_openapi_document_and_docs_page_are_served_locally(client):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/records", "/api/blacklist/{entry_id}", "/api/tokens", "/api/webhooks"} <= set(doc["paths"])
    page = client.get("/api/docs").get_data(as_text=True)
    assert "/api/docs/assets/swagger-ui-bundle.js" in page and "http" not in page.split("<script>")[0]
    with client.get("/api/docs/assets/swagger-ui-bundle.js") as asset:
        assert asset.status_code == 200 and b"SwaggerUIBundle" in asset.get_data()
    assert client.get("/api/docs/assets/../../../../etc/passwd").status_code == 404
