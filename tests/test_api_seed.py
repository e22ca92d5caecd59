"""The seed README's curl examples, run with an API token, answer as documented."""

from sqlalchemy import select

from lprserver.extensions import db
from lprserver.models import AuditEntry, BlacklistEntry

from .conftest import bearer


def test_seed_blacklist_add_answers_the_new_entry(client, api_token):
    # curl -X POST http://localhost:5000/api/blacklist -H "Content-Type: application/json"
    #   -d '{"license_plate_text": "กข1234", "reason": "ทดสอบระบบ", "added_by": "admin"}'
    answer = client.post("/api/blacklist", headers=bearer(api_token),
                         json={"license_plate_text": "กข1234", "reason": "ทดสอบระบบ", "added_by": "admin"})
    assert answer.status_code == 201
    entry = answer.get_json()
    assert entry["license_plate_text"] == "กข1234"
    assert entry["plate_normalized"] == "กข1234"
    assert entry["reason"] == "ทดสอบระบบ"
    assert entry["added_by"] == "admin"
    assert entry["category"] == "other"
    assert entry["active"] is True
    row = db.session.get(BlacklistEntry, entry["id"])
    assert row.license_plate_text == "กข1234"
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "blacklist.add")).one()
    assert audit.target == f"blacklist:{entry['id']}" and audit.username == "admin"


def test_seed_blacklist_list_shows_what_was_added(client, api_token):
    # curl http://localhost:5000/api/blacklist
    client.post("/api/blacklist", headers=bearer(api_token),
                json={"license_plate_text": "กข1234", "reason": "ทดสอบระบบ", "added_by": "admin"})
    answer = client.get("/api/blacklist", headers=bearer(api_token))
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["total"] == 1 and body["page"] == 1
    assert [e["license_plate_text"] for e in body["entries"]] == ["กข1234"]


def test_seed_record_create_stores_the_read_and_answers_its_id(client, api_token):
    # curl -X POST http://localhost:5000/api/records -H "Content-Type: application/json"
    #   -d '{"camera_id": "CAM001", "plate_number": "กข1234", "confidence": 0.95, "location": "หน้าหอพัก"}'
    answer = client.post("/api/records", headers=bearer(api_token), json={
        "camera_id": "CAM001", "plate_number": "กข1234", "confidence": 0.95, "location": "หน้าหอพัก"})
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["status"] == "success" and body["duplicate"] is False and body["blacklisted"] is False
    record = client.get(f"/api/records/{body['record_id']}", headers=bearer(api_token)).get_json()
    assert record["plate_number"] == "กข1234"
    assert record["confidence"] == 95.0
    assert record["location"] == "หน้าหอพัก"


def test_seed_record_of_a_blacklisted_plate_is_a_hit(client, api_token):
    client.post("/api/blacklist", headers=bearer(api_token),
                json={"license_plate_text": "กข 1234", "reason": "รถหาย", "added_by": "admin",
                      "category": "stolen"})
    answer = client.post("/api/records", json={"camera_id": "CAM001", "plate_number": "กข1234"})
    assert answer.get_json()["blacklisted"] is True
    hits = client.get("/api/blacklist/detections", headers=bearer(api_token)).get_json()
    assert hits["total"] == 1
    assert hits["detections"][0]["plate_number"] == "กข1234"
    assert hits["detections"][0]["match_type"] == "normalized"


def test_seed_statistics_count_records_cameras_and_hits(client, api_token):
    # curl http://localhost:5000/api/statistics
    client.post("/api/blacklist", headers=bearer(api_token), json={"license_plate_text": "ABC1234"})
    for plate, camera in (("ABC1234", "CAM001"), ("XYZ9", "CAM001"), ("กข1234", "CAM002")):
        client.post("/api/records", json={"camera_id": camera, "plate_number": plate})
    stats = client.get("/api/statistics", headers=bearer(api_token)).get_json()
    assert stats["total_records"] == 3
    assert stats["records_today"] == 3
    assert stats["blacklist_hits"] == 1
    assert stats["cameras_total"] == 2
    assert {c["camera_id"]: c["records_today"] for c in stats["per_camera"]} == {"CAM001": 2, "CAM002": 1}
    assert len(stats["per_hour"]) == 24
    assert stats["per_hour"][-1]["records"] == 3 and stats["per_hour"][-1]["blacklist_hits"] == 1


def test_seed_blacklist_statistics_count_entries_and_hits(client, api_token):
    # curl http://localhost:5000/api/blacklist/statistics
    client.post("/api/blacklist", headers=bearer(api_token),
                json={"license_plate_text": "ABC1234", "category": "stolen"})
    client.post("/api/blacklist", headers=bearer(api_token),
                json={"license_plate_text": "กข1234", "category": "wanted"})
    client.post("/api/records", json={"camera_id": "CAM001", "plate_number": "ABC-1234"})
    client.post("/api/records", json={"camera_id": "CAM001", "plate_number": "ABC1234"})
    stats = client.get("/api/blacklist/statistics", headers=bearer(api_token)).get_json()
    assert stats["total_entries"] == 2 and stats["active_entries"] == 2
    assert stats["by_category"] == {"stolen": 1, "wanted": 1}
    assert stats["total_detections"] == 2 and stats["detections_today"] == 2
    assert stats["unacknowledged_detections"] == 2
    assert stats["top_plates"][0]["license_plate_text"] == "ABC1234"
    assert stats["top_plates"][0]["detections"] == 2
