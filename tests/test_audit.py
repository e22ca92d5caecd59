"""The audit log's reading side (SPEC §15 "Audit"): GET /api/audit, its CSV export and the /audit page,
admins only; nothing edits or deletes an entry."""

import csv
import io
from datetime import timedelta

from lprserver.audit import audit
from lprserver.extensions import db
from lprserver.models import AuditEntry, utcnow

from .conftest import bearer
from .webserver import PageClient


def _entries():
    now = utcnow()
    for i, (user, action) in enumerate([("somchai", "login"), ("somchai", "records.search"),
                                        ("malee", "records.export"), ("malee", "plate.erase")]):
        entry = audit(db.session, action, username=user, target=f"t:{i}", detail={"n": i}, ip="10.0.0.1")
        entry.at = now - timedelta(hours=4 - i)
    db.session.commit()
    return now


def test_filters_paging_newest_first_and_csv(client, make_token):
    now = _entries()
    h = bearer(make_token("admin", "read"))
    body = client.get("/api/audit", headers=h).get_json()
    assert [e["action"] for e in body["entries"]] == ["plate.erase", "records.export", "records.search", "login"]
    assert set(body["entries"][0]) >= {"id", "at", "user", "action", "detail", "address"}
    assert body["entries"][0]["address"] == "10.0.0.1" and body["entries"][0]["target"] == "t:3"
    assert body["total"] == 4
    assert [e["action"] for e in client.get("/api/audit?user=somchai", headers=h).get_json()["entries"]] == \
        ["records.search", "login"]
    assert [e["action"] for e in client.get("/api/audit?action=records.*", headers=h).get_json()["entries"]] == \
        ["records.export", "records.search"]
    since = (now - timedelta(hours=2, minutes=30)).isoformat()
    answer = client.get("/api/audit", query_string={"from": since}, headers=h).get_json()
    assert [e["action"] for e in answer["entries"]] == ["plate.erase", "records.export"]
    page2 = client.get("/api/audit?per_page=3&page=2", headers=h).get_json()
    assert [e["action"] for e in page2["entries"]] == ["login"] and page2["total"] == 4
    csv_answer = client.get("/api/audit/export.csv?user=malee", headers=h)
    rows = list(csv.DictReader(io.StringIO(csv_answer.get_data(as_text=True))))
    assert [r["action"] for r in rows] == ["plate.erase", "records.export"]
    assert db.session.query(AuditEntry).filter_by(action="audit.export").count() == 1


def test_permissions_and_no_writes(client, make_token):
    _entries()
    callers = {"stranger": {}, "viewer": bearer(make_token("viewer")), "operator": bearer(make_token("operator")),
               "read-only admin": bearer(make_token("admin", "read")), "admin": bearer(make_token("admin"))}
    for path in ("/api/audit", "/api/audit/export.csv"):
        got = {who: client.get(path, headers=h).status_code for who, h in callers.items()}
        assert got == {"stranger": 401, "viewer": 403, "operator": 403, "read-only admin": 200, "admin": 200}
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        for path in ("/api/audit", "/api/audit/1"):
            assert client.open(path, method=method, headers=callers["admin"]).status_code in (404, 405)
    assert db.session.query(AuditEntry).filter(AuditEntry.action.in_(["login", "plate.erase"])).count() == 2


def test_the_audit_page_is_for_admins(app, users):
    _entries()
    viewer = PageClient(app)
    viewer.login("viewer")
    assert viewer.get("/audit").status_code == 403
    admin = PageClient(app)
    admin.login("admin")
    page = admin.get("/audit?user=malee").get_data(as_text=True)
    assert 'id="audit-table"' in page and "plate.erase" in page and "<code>records.search</code>" not in page
    assert 'id="audit-export"' in page
    assert admin.get("/audit?from=nonsense").status_code == 400
    export = admin.get("/audit/export.csv?action=plate.erase")
    assert export.status_code == 200 and "plate.erase" in export.get_data(as_text=True)
