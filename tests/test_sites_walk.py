"""Every route walked as site-limited users (SPEC §15 "Sites"): nothing of another site leaks.

Three cameras: NORTH-1 (site North), SOUTH-1 (site South) and NOSITE-1 (no site), each with reads of its
own plates (with images, blacklist hits, alerts, a read waiting for review, visits at an entry gate).
A viewer, an operator and an admin limited to North, and the admin's read-only and read-write tokens,
then open every route of the app's url_map:

- a route naming one thing (a record, a camera, a plate, an alert, a hit) of South or of no site answers
  404 with the same body as a thing that does not exist; the same route for North's thing does not;
- every answer (pages, JSON, CSV, zip and XLSX members, PDF text) is searched for South's and no-site's
  plates, camera ids and camera names, in every spelling a page could use (spaced, JSON-escaped,
  URL-quoted); none may appear (plates may, on the global blacklist and known-plate lists);
- every writing route naming South's things is refused, and nothing changes in the database.

The table of routes and results is written to test-artifacts/sites_walk.txt (the closing note quotes it).
"""

import io
import json
import re
import shutil
import subprocess
import zipfile
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from lprserver.blacklist import add_entry
from lprserver.extensions import db
from lprserver.models import (
    Alert,
    ApiToken,
    AuditEntry,
    BlacklistDetection,
    Camera,
    Record,
    User,
    Visit,
    Webhook,
    utcnow,
)
from lprserver.tokens import generate_token, hash_token
from lprserver.users import save_user

from .conftest import bearer
from .imagegen import data_uri, make_jpeg
from .webserver import ARTIFACTS, PASSWORDS, PageClient

SITES = {"NORTH-1": ("North", "North gate"), "SOUTH-1": ("South", "South gate"), "NOSITE-1": (None, "Nosite lot")}
PLATES = {"NORTH-1": ("กก1111", "กก1112"), "SOUTH-1": ("ฮฮ9999", "ฮฮ9998"), "NOSITE-1": ("ลล5555", "ลล5556")}
HIDDEN = ("SOUTH-1", "NOSITE-1")
LIMITED = {"guard": "viewer", "north-operator": "operator", "north-admin": "admin"}
# Lists that are not site data (SPEC §15: blacklist and known plates are the operators' own lists):
# their plates may show there, never a camera of another site.
GLOBAL_LISTS = ("web.blacklist", "web.blacklist_edit", "web.blacklist_export", "web.known", "web.known_edit",
                "web.known_export", "api.list_blacklist", "api.get_blacklist_entry", "api.get_blacklist_statistics",
                "api.list_known_plates", "api.get_known_plate", "api.export_known_plates",
                "api.list_known_groups")
# The audit log keeps what users typed (a search for a camera id, a plate): it is read, not searched here.
AUDIT = ("web.audit", "web.audit_export", "api.list_audit", "api.export_audit")
# A plate's export holds its (global) list entries too: a plate on the blacklist has data for everyone.
LISTS_TOO = ("api.export_plate",)
NOT_WALKED = {"static", "favicon", "monitoring.health", "monitoring.metrics", "web.relay_in",
              "auth.logout", "api_docs_assets"}


def spellings(text: str) -> set[str]:
    """How a page, a JSON answer, a CSV or a link could write `text`."""
    forms = {text}
    spaced = re.sub(r"^(\D+)(\d+)$", r"\1 \2", text)
    forms.add(spaced)
    for form in list(forms):
        forms.add(json.dumps(form)[1:-1])
        forms.add(quote(form))
        forms.add(quote(form).lower())
    return forms


def hidden_marks(include_plates: bool = True) -> set[str]:
    marks = set()
    for camera_id in HIDDEN:
        marks |= {camera_id, SITES[camera_id][1]}
        if include_plates:
            for plate in PLATES[camera_id]:
                marks |= spellings(plate)
    return marks


def ingest(client, camera_id, plate, confidence=95.0):
    body = {"camera_id": camera_id, "plate_number": plate, "confidence": confidence,
            "image_data": data_uri(make_jpeg(320, 240, seed=len(plate) + int(confidence)))}
    answer = client.post("/api/records", json=body)
    assert answer.status_code in (200, 201), answer.get_json()
    return answer.get_json()["record_id"]


@pytest.fixture
def world(app, client):
    """Cameras of two sites and one of none, their reads, hits, alerts, reviews and visits; the users."""
    for camera_id, (site, name) in SITES.items():
        db.session.add(Camera(id=camera_id, name=name, location=name, site=site, role="entry",
                              latitude=13.7, longitude=100.5, last_seen=utcnow()))
    for plates in PLATES.values():
        add_entry(db.session, plates[0], reason="stolen", category="stolen", added_by="admin")
    db.session.commit()
    ids = {}
    for camera_id, (plate, doubtful) in PLATES.items():
        ids[camera_id] = {"record": ingest(client, camera_id, plate),
                          "doubtful": ingest(client, camera_id, doubtful, confidence=30.0)}
    save_user(db.session, "admin", "admin", PASSWORDS["admin"])
    for name, role in LIMITED.items():
        user, _ = save_user(db.session, name, role, PASSWORDS[role])
        user.sites = ["North"]
    db.session.add(Webhook(url="http://127.0.0.1:9/hook", events=["record.created"], secret="s" * 32))
    db.session.commit()
    for camera_id in SITES:
        record_id = ids[camera_id]["record"]
        ids[camera_id]["alert"] = db.session.scalar(select(Alert.id).where(Alert.record_id == record_id))
        ids[camera_id]["detection"] = db.session.scalar(
            select(BlacklistDetection.id).where(BlacklistDetection.record_id == record_id))
        assert ids[camera_id]["alert"] and ids[camera_id]["detection"], camera_id
    assert db.session.scalar(select(func.count()).select_from(Visit)) >= 3
    return ids


def token_of(username: str, scope: str) -> str:
    user = db.session.scalar(select(User).where(User.username == username))
    token = generate_token("lpr")
    db.session.add(ApiToken(user_id=user.id, name=f"walk-{scope}", token_hash=hash_token(token), scope=scope))
    db.session.commit()
    return token


def values_for(ids: dict, camera_id: str) -> dict[str, str]:
    mine = ids[camera_id]
    return {"record_id": str(mine["record"]), "camera_id": camera_id, "plate": PLATES[camera_id][0],
            "alert_id": str(mine["alert"]), "detection_id": str(mine["detection"])}


SITE_BOUND = {"record_id", "camera_id", "plate", "alert_id", "detection_id"}


def other_values() -> dict[str, str]:
    """Ids of global things, the same for every site."""
    values = {}
    for name, query in (("entry_id", "SELECT id FROM blacklist_plates ORDER BY id"),
                        ("webhook_id", "SELECT id FROM webhooks"), ("user_id", "SELECT id FROM users"),
                        ("token_id", "SELECT id FROM api_tokens"), ("rule_id", "SELECT 1"),
                        ("plate_id", "SELECT 1"), ("schedule_id", "SELECT 1")):
        values[name] = str(db.session.execute(db.text(query)).scalar() or 1)
    values["group"] = "Staff"
    values["kind"] = "full"
    return values


def fill(rule, values: dict[str, str]) -> str:
    path = rule.rule
    for name in rule.arguments:
        if name in (rule.defaults or {}):
            continue
        path = re.sub(rf"<(?:\w+:)?{name}>", quote(values[name]), path)
    return path


def body_text(answer) -> str:
    """The text of an answer, whatever its kind: zip and XLSX members unpacked, a PDF's text extracted."""
    data = answer.get_data()
    kind = answer.mimetype or ""
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "\n".join(archive.read(name).decode("utf-8", "ignore") for name in archive.namelist())
    if data[:5] == b"%PDF-" and shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()
    if kind.startswith("image/"):
        return ""
    return data.decode("utf-8", "ignore")


def leaks(text: str, marks: set[str]) -> list[str]:
    return sorted(mark for mark in marks if mark in text)


def asked(values: dict[str, str]) -> set[str]:
    """What the path itself names: an answer may say it back ("no plate ฮฮ9999")."""
    return spellings(values["plate"]) | {values["camera_id"]}


def refusal(answer, values: dict[str, str]):
    """What a refusal says, with the thing it was asked about blanked out (to compare with a missing
    thing's): the status, and for JSON the error's code and message."""
    if answer.status_code < 400 or not answer.is_json:
        return answer.status_code
    error = dict((answer.get_json() or {}).get("error") or {})
    message = str(error.get("message", ""))
    for form in sorted(asked(values), key=len, reverse=True):
        message = message.replace(form, "…")
    for name in SITE_BOUND - {"plate", "camera_id"}:
        message = re.sub(rf"\b{re.escape(values[name])}\b", "…", message)
    return answer.status_code, error.get("code"), message


class Caller:
    """One way in: a signed-in browser session (pages) or a Bearer token (the API)."""

    def __init__(self, app, name: str, token: str | None = None):
        self.name = name
        self.token = token
        self.page = None if token else PageClient(app)
        if self.page:
            answer = self.page.login(name, PASSWORDS[LIMITED[name]])
            assert answer.status_code == 302, name

    def get(self, client, path: str):
        answer = self.page.get(path) if self.page else client.get(path, headers=bearer(self.token))
        return read(answer)

    def send(self, client, method: str, path: str):
        if self.page:
            token = self.page.token("/")
            return read(self.page.open(method, path, data={"csrf_token": token, "reason": "walk"},
                                       headers={"X-CSRFToken": token}))
        return read(client.open(path, method=method, json={}, headers=bearer(self.token)))


def read(answer):
    """Read a whole answer and close it (a file sent streams from an open file until then)."""
    answer.get_data()
    answer.close()
    return answer


def snapshot() -> tuple:
    """What a refused write must leave as it was."""
    db.session.expire_all()
    rows = db.session.execute(select(Record.id, Record.plate_normalized, Record.review_state,
                                     Record.plate_corrected, Record.image_path)
                              .order_by(Record.id)).all()
    hits = db.session.execute(select(BlacklistDetection.id, BlacklistDetection.acknowledged_at)
                              .order_by(BlacklistDetection.id)).all()
    alerts = db.session.execute(select(Alert.id, Alert.acknowledged_at).order_by(Alert.id)).all()
    cameras = db.session.execute(select(Camera.id, Camera.site, Camera.role, Camera.name,
                                        Camera.latitude).order_by(Camera.id)).all()
    return tuple(map(tuple, rows)), tuple(map(tuple, hits)), tuple(map(tuple, alerts)), tuple(map(tuple, cameras))


def extra_paths() -> list[tuple[str, str, set[str]]]:
    """Filtered listings: (endpoint shown, path, the marks its own query echoes back and so may show)."""
    south = quote("ฮฮ9")
    return [
        ("web.records", "/records?plate=" + south, set()),
        ("web.records", "/records?camera_id=SOUTH-1", {"SOUTH-1"}),
        ("web.export", "/records/export.csv?camera_id=SOUTH-1", {"SOUTH-1"}),
        ("api.list_records", "/api/records?plate=" + south, set()),
        ("api.list_records", "/api/records?camera_id=SOUTH-1", {"SOUTH-1"}),
        ("api.export_records", "/api/records/export.csv?camera_id=NOSITE-1", {"NOSITE-1"}),
        ("web.map_page", "/map?plate=" + quote("ฮฮ9999"), spellings("ฮฮ9999")),
        ("web.visits", "/visits?camera_id=SOUTH-1", {"SOUTH-1"}),
        ("web.reports", "/reports?preview=1", set()),
        ("web.report_download", "/reports/download?format=xlsx", set()),
        ("web.report_download", "/reports/download?format=pdf", set()),
        ("web.report_download", "/reports/download?format=xlsx&camera_id=SOUTH-1", {"SOUTH-1"}),
        ("api.summary_xlsx", "/api/reports/summary.xlsx", set()),
        ("api.summary_pdf", "/api/reports/summary.pdf", set()),
        ("api.analytics", "/api/analytics?days=7", set()),
        ("web.missed", "/live/missed", set()),
    ]


def test_every_route_as_a_site_limited_user_shows_nothing_of_another_site(app, client, world):
    ids = world
    north, south, nosite = values_for(ids, "NORTH-1"), values_for(ids, "SOUTH-1"), values_for(ids, "NOSITE-1")
    shared = other_values()
    callers = [Caller(app, name) for name in LIMITED]
    callers += [Caller(app, "north-admin", token_of("north-admin", scope)) for scope in ("read", "read-write")]
    callers[-2].name, callers[-1].name = "north-admin read token", "north-admin read-write token"
    missing = {"record_id": "987654", "camera_id": "NO-SUCH-CAMERA", "plate": "ฬฬ0000", "alert_id": "987654",
               "detection_id": "987654"}
    table, problems = [], []
    rules = sorted((r for r in app.url_map.iter_rules() if r.endpoint not in NOT_WALKED), key=lambda r: r.rule)
    get_rules = [r for r in rules if "GET" in r.methods]
    walked = 0
    for rule in get_rules:
        api = rule.rule.startswith("/api/")
        bound = SITE_BOUND & set(rule.arguments)
        marks = set() if rule.endpoint in AUDIT else hidden_marks(include_plates=rule.endpoint not in GLOBAL_LISTS)
        for caller in callers:
            if api != bool(caller.token):
                continue  # pages take the session only, the API is walked with the tokens (and pages' JS)
            cases = [("north", north)]
            if bound:
                cases += [("south", south), ("no site", nosite), ("missing", missing)]
            results = {}
            for label, site_values in cases:
                path = fill(rule, {**shared, **site_values})
                answer = caller.get(client, path)
                walked += 1
                results[label] = answer
                if answer.status_code >= 500:
                    problems.append(f"{caller.name} GET {path}: {answer.status_code}")
                found = leaks(body_text(answer), marks - asked(site_values))
                if found:
                    problems.append(f"{caller.name} GET {path}: shows {found[:4]}")
            if bound and rule.endpoint not in LISTS_TOO:
                for label in ("south", "no site"):
                    got, gone = results[label], results["missing"]
                    values = south if label == "south" else nosite
                    if refusal(got, values) != refusal(gone, missing):
                        problems.append(f"{caller.name} GET {rule.rule} for {label}: {got.status_code} "
                                        f"but {gone.status_code} for a missing one")
            table.append(f"{caller.name:30} GET {rule.rule:55} " + " ".join(
                f"{label}={answer.status_code}" for label, answer in results.items()))
    for _endpoint, path, echoed in extra_paths():
        for caller in callers:
            if path.startswith("/api/") != bool(caller.token):
                continue
            answer = caller.get(client, path)
            walked += 1
            found = leaks(body_text(answer), hidden_marks() - echoed)
            if answer.status_code >= 500 or found:
                problems.append(f"{caller.name} GET {path}: {answer.status_code} {found[:4]}")
            table.append(f"{caller.name:30} GET {path:55} {answer.status_code}")

    # Writes naming South's or no-site's things: refused, and nothing changes.
    before = snapshot()
    for rule in rules:
        methods = sorted(rule.methods - {"GET", "HEAD", "OPTIONS"})
        if not methods or not (SITE_BOUND & set(rule.arguments)):
            continue
        for method in methods:
            for caller in callers:
                if rule.rule.startswith("/api/") != bool(caller.token):
                    continue
                for label, site_values in (("south", south), ("no site", nosite)):
                    path = fill(rule, {**shared, **site_values})
                    answer = caller.send(client, method, path)
                    walked += 1
                    if answer.status_code not in (400, 401, 403, 404, 405):
                        problems.append(f"{caller.name} {method} {path}: {answer.status_code}")
                    table.append(f"{caller.name:30} {method:4} {rule.rule:55} {label}={answer.status_code}")
    assert snapshot() == before, "a refused write changed the database"
    # The visible half is really there (else the walk would prove nothing).
    guard = callers[0]
    listing = guard.page.get("/records").get_data(as_text=True)
    assert any(form in listing for form in spellings("กก1111")), "North's read is missing from /records"
    read_token = next(c for c in callers if c.name.endswith("read token"))
    answer = client.get("/api/records", headers=bearer(read_token.token)).get_json()
    assert answer["total"] == 2 and {r["camera_id"] for r in answer["records"]} == {"NORTH-1"}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "sites_walk.txt").write_text(
        f"{walked} requests over {len(get_rules)} GET routes (+ writes) as {len(callers)} callers; "
        f"problems: {len(problems)}\n" + "\n".join(table) + "\n", encoding="utf-8")
    assert not problems, "\n".join(problems)
    # Searches by the limited users were audited like any other.
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "records.search")) > 0


def test_an_unlimited_user_sees_every_site_and_cameras_without_one(app, client, world, make_token):
    token = make_token("viewer", "read")
    answer = client.get("/api/records", headers=bearer(token)).get_json()
    assert answer["total"] == 6
    cameras = client.get("/api/cameras", headers=bearer(token)).get_json()
    listed = cameras["cameras"] if isinstance(cameras, dict) else cameras
    assert {c["id"] if "id" in c else c["camera_id"] for c in listed} == set(SITES)
    since = (utcnow() - timedelta(days=1)).isoformat()
    assert client.get(f"/api/records?from={quote(since)}", headers=bearer(token)).get_json()["total"] == 6
