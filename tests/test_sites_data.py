"""Sites (SPEC §15 "Sites") on the data routes: records (list, CSV, one, image, thumbnail), a plate's
history, cameras, the review queue and its count, corrections (and their zip), visits and the signed alert
images, walked as an unlimited admin, a viewer limited to site A, an operator limited to A and B and an
admin limited to B, next to a camera of site A, one of site B and one with no site. Setting a camera's site
(PATCH, the cameras page), a user's limit (the users page, `flask lpr create-user --sites`), and the audit
of full-image views and of filtered API listings."""

import csv
import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from lprserver.alert_images import image_links
from lprserver.extensions import db
from lprserver.models import ApiToken, AuditEntry, Camera, Record, User, Visit, utcnow
from lprserver.passwords import hash_password
from lprserver.records import RecordFilter, count_records, page_statement
from lprserver.sites import EVERYWHERE, Scope
from lprserver.tokens import generate_token, hash_token

from .conftest import bearer
from .webserver import PageClient

PASSWORD = "sites-password-123"
JPEG = b"\xff\xd8\xff\xe0" + b"0" * 64 + b"\xff\xd9"
# who sees which camera: CA is of site A, CB of site B, CN of none
USERS = {"boss": ("admin", None), "guard": ("viewer", ["A"]), "op": ("operator", ["A", "B"]),
         "badmin": ("admin", ["B"])}
SEES = {"boss": {"CA", "CB", "CN"}, "guard": {"CA"}, "op": {"CA", "CB"}, "badmin": {"CB"}}
MISSING = 987_654_321


class World:
    """Three cameras and their reads, visits and users; `ids[camera]` the ids of each camera's reads."""

    def __init__(self, app):
        now = utcnow()
        root = Path(app.config["IMAGE_STORAGE_PATH"])
        db.session.add_all([Camera(id="CA", name="Gate A", site="A"), Camera(id="CB", name="Gate B", site="B"),
                            Camera(id="CN", name="Gate N")])
        db.session.flush()
        self.ids: dict[str, list[int]] = {"CA": [], "CB": [], "CN": []}
        self.by_plate: dict[str, list[int]] = {}
        for n, (camera, plate) in enumerate([("CA", "กข1111"), ("CB", "กข2222"), ("CN", "กข3333"),
                                             ("CA", "SH9999"), ("CB", "SH9999"), ("CN", "SH9999")]):
            at = now - timedelta(minutes=10 - n)
            image = f"test/{camera}/{n}.jpg"
            (root / image).parent.mkdir(parents=True, exist_ok=True)
            (root / image).write_bytes(JPEG)
            record = Record(camera_id=camera, plate_number=plate, plate_normalized=plate, captured_at=at,
                            received_at=at, confidence=40.0, image_path=image, thumbnail_path=image,
                            review_state="pending" if n < 3 else None)
            if n < 3:  # the first read of each camera was corrected (onto its own plate)
                record.plate_corrected, record.corrected_by, record.corrected_at = plate, "someone", at
            db.session.add(record)
            db.session.flush()
            self.ids[camera].append(record.id)
            self.by_plate.setdefault(plate, []).append(record.id)
        self.visits = {}
        for camera in ("CA", "CB", "CN"):
            here = Visit(plate_normalized=f"V{camera}", entered_at=now - timedelta(minutes=5),
                         entry_camera_id=camera)
            left = Visit(plate_normalized=f"W{camera}", entered_at=now - timedelta(minutes=4),
                         entry_camera_id=camera, exited_at=now - timedelta(minutes=1), exit_camera_id=camera)
            db.session.add_all([here, left])
            db.session.flush()
            self.visits[camera] = {here.id, left.id}
        self.tokens, self.read_tokens = {}, {}
        for name, (role, sites) in USERS.items():
            user = User(username=name, role=role, password_hash=hash_password(PASSWORD, rounds=4), sites=sites)
            db.session.add(user)
            db.session.flush()
            for kind, store in (("read-write", self.tokens), ("read", self.read_tokens)):
                token = generate_token("lpr")
                db.session.add(ApiToken(user_id=user.id, name=kind, token_hash=hash_token(token), scope=kind))
                store[name] = token
        db.session.commit()

    def seen(self, user: str) -> set[int]:
        return {rid for camera in SEES[user] for rid in self.ids[camera]}

    def all(self) -> set[int]:
        return {rid for ids in self.ids.values() for rid in ids}


@pytest.fixture
def world(app):
    return World(app)


def browser(app, user: str) -> PageClient:
    page = PageClient(app)
    assert page.login(user, PASSWORD).status_code == 302
    return page


def audits(action: str) -> list[AuditEntry]:
    db.session.rollback()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                   .order_by(AuditEntry.id)))


def closed(answer):
    """The answer read whole and closed (an image's file is not left open)."""
    answer.get_data()
    answer.close()
    return answer


def csv_ids(text: str) -> set[int]:
    return {int(row["id"]) for row in csv.DictReader(io.StringIO(text.lstrip("\ufeff")))}


# --- the API, walked as each user ---------------------------------------------------------------------


def test_the_api_shows_each_user_only_their_sites(client, world):
    missing_record = client.get(f"/api/records/{MISSING}", headers=bearer(world.tokens["boss"]))
    missing_camera = client.get("/api/cameras/NOPE", headers=bearer(world.tokens["boss"]))
    assert missing_record.status_code == 404 and missing_camera.status_code == 404
    for user in USERS:
        head, seen = bearer(world.tokens[user]), world.seen(user)

        def get(path, head=head):
            return closed(client.get(path, headers=head))

        listed = get("/api/records?per_page=100").get_json()
        assert {r["id"] for r in listed["records"]} == seen and listed["total"] == len(seen), user
        found = get("/api/records?plate=SH9999&plate_match=exact").get_json()
        assert {r["id"] for r in found["records"]} == seen & set(world.by_plate["SH9999"])
        assert found["total"] == len(seen & set(world.by_plate["SH9999"]))
        exported = get("/api/records/export.csv")
        assert exported.status_code == 200 and csv_ids(exported.get_data(as_text=True)) == seen, user
        for rid in world.all():
            for path in (f"/api/records/{rid}", f"/api/records/{rid}/image", f"/api/records/{rid}/thumbnail"):
                answer = get(path)
                if rid in seen:
                    assert answer.status_code == 200, (user, path)
                else:  # the same answer as a record that does not exist
                    assert answer.status_code == 404, (user, path)
                    assert answer.get_json() == get(path.replace(str(rid), str(MISSING))).get_json()
        # a plate's history: only the visible cameras' reads; one read only elsewhere is "never read"
        shared = get("/api/plates/SH9999").get_json()
        assert shared["reads"] == len(seen & set(world.by_plate["SH9999"]))
        assert {c["camera_id"] for c in shared["cameras"]} == SEES[user]
        assert {s["record_id"] for s in shared["sightings"]} == seen & set(world.by_plate["SH9999"])
        assert {s["camera_id"] for s in shared["route"]} == SEES[user]
        only_b = get("/api/plates/กข2222")
        if "CB" in SEES[user]:
            assert only_b.status_code == 200 and only_b.get_json()["reads"] == 1
            assert [c["record_id"] for c in only_b.get_json()["corrections"]] == world.by_plate["กข2222"]
        else:
            assert only_b.status_code == 404
            assert only_b.get_json() == {"error": {"code": "not_found", "message": "no reads of กข2222"}}
        cameras = get("/api/cameras").get_json()
        assert {c["id"] for c in cameras["cameras"]} == SEES[user] and cameras["total"] == len(SEES[user])
        assert {c["id"]: c["site"] for c in cameras["cameras"]} == \
            {c: {"CA": "A", "CB": "B", "CN": None}[c] for c in SEES[user]}
        for camera in ("CA", "CB", "CN"):
            answer = get(f"/api/cameras/{camera}")
            assert answer.status_code == (200 if camera in SEES[user] else 404), (user, camera)
            if camera not in SEES[user]:
                assert answer.get_json() == missing_camera.get_json()
        review = get("/api/review").get_json()
        waiting = {rid for c in SEES[user] for rid in world.ids[c][:1]}
        assert {i["record"]["id"] for i in review["items"]} == waiting and review["total"] == len(waiting)
        visits = get("/api/visits").get_json()
        expected = set().union(*(world.visits[c] for c in SEES[user]))
        assert {v["id"] for v in visits["visits"]} == expected and visits["total"] == len(expected)
        assert {v["id"] for v in get("/api/visits?open=true").get_json()["visits"]} == \
            {min(world.visits[c]) for c in SEES[user]}
        if USERS[user][0] != "viewer":
            archive = zipfile.ZipFile(io.BytesIO(get("/api/corrections/export.zip").get_data()))
            labels = list(csv.DictReader(io.StringIO(archive.read("labels.csv").decode())))
            assert {row["camera_id"] for row in labels} == SEES[user], user
            assert {n for n in archive.namelist() if n.startswith("images/")} == \
                {f"images/{world.ids[c][0]}.jpg" for c in SEES[user]}


def test_writes_to_another_sites_reads_answer_as_for_missing_ones(client, world):
    op, badmin = bearer(world.tokens["op"]), bearer(world.tokens["badmin"])
    hidden = world.ids["CN"][0]  # no site: only the unlimited see it
    for head in (op, badmin):
        for path, call, kwargs in ((f"/api/review/{hidden}/confirm", client.post, {}),
                                   (f"/api/records/{hidden}", client.patch, {"json": {"plate_corrected": "กข9999"}})):
            answer = call(path, headers=head, **kwargs)
            assert answer.status_code == 404, path
            assert answer.get_json() == call(path.replace(str(hidden), str(MISSING)), headers=head,
                                             **kwargs).get_json()
    db.session.rollback()
    stored = db.session.get(Record, hidden)
    assert stored.review_state == "pending" and stored.plate_corrected == "กข3333"
    mine = world.ids["CB"][0]
    assert client.post(f"/api/review/{mine}/confirm", headers=badmin).status_code == 200
    assert client.patch(f"/api/records/{world.ids['CA'][0]}", headers=op,
                        json={"plate_corrected": "กข1112"}).status_code == 200


def test_full_image_views_and_filtered_api_listings_are_audited(client, world):
    head = bearer(world.tokens["guard"])
    rid = world.ids["CA"][0]
    assert closed(client.get(f"/api/records/{rid}/thumbnail", headers=head)).status_code == 200
    assert audits("record.image") == []
    assert closed(client.get(f"/api/records/{rid}/image", headers=head)).status_code == 200
    [seen] = audits("record.image")
    assert (seen.target, seen.username, seen.ip) == (f"record:{rid}", "guard", "127.0.0.1")
    assert client.get("/api/records", headers=head).status_code == 200
    assert client.get("/api/records?since_id=0", headers=head).status_code == 200  # polling, unfiltered
    assert audits("records.search") == []
    assert client.get("/api/records?plate=SH9999&camera_id=CA", headers=head).status_code == 200
    [search] = audits("records.search")
    assert search.username == "guard" and search.detail["plate"] == "SH9999" and search.detail["camera_id"] == "CA"


def test_signed_alert_images_follow_the_signed_in_users_sites(app, client, world):
    rid = world.ids["CB"][0]
    full, preview = (link.removeprefix("https://lpr.example.org")
                     for link in image_links("https://lpr.example.org", app.config["SECRET_KEY"], rid, utcnow(), 1))
    missing, _ = (link.removeprefix("https://lpr.example.org")
                  for link in image_links("https://lpr.example.org", app.config["SECRET_KEY"], MISSING,
                                          utcnow(), 1))
    assert closed(client.get(preview)).status_code == 200 and audits("record.image") == []
    assert closed(client.get(full)).status_code == 200  # LINE's fetch: the signature is the permission
    [entry] = audits("record.image")
    assert entry.target == f"record:{rid}" and entry.username is None
    guard = browser(app, "guard")
    for link in (full, preview):
        answer = closed(guard.get(link))
        assert answer.status_code == 404 and answer.get_data() == guard.get(missing).get_data()
    assert closed(browser(app, "op").get(full)).status_code == 200
    assert [e.username for e in audits("record.image")] == [None, "op"]


# --- the pages, walked as each user -------------------------------------------------------------------


def test_the_pages_show_each_user_only_their_sites(app, world):
    for user in USERS:
        page, seen = browser(app, user), world.seen(user)
        html = page.get("/records").get_data(as_text=True)
        assert {rid for rid in world.all() if f'data-record-id="{rid}"' in html} == seen, user
        assert f'id="record-total" data-kind="exact">{len(seen)}<' in html
        for camera in ("CA", "CB", "CN"):  # the camera filter's choices
            assert (f'<option value="{camera}"' in html) == (camera in SEES[user])
        assert csv_ids(page.get("/records/export.csv").get_data(as_text=True)) == seen
        missing = page.get(f"/records/{MISSING}")
        for rid in world.all():
            answer = page.get(f"/records/{rid}")
            assert answer.status_code == (200 if rid in seen else 404), (user, rid)
            if rid not in seen:
                assert answer.get_data() == missing.get_data()
        plate = page.get("/plates/กข2222")
        assert plate.status_code == (200 if "CB" in SEES[user] else 404)
        cameras = page.get("/cameras").get_data(as_text=True)
        assert {c for c in ("CA", "CB", "CN") if f'data-camera-id="{c}"' in cameras} == SEES[user]
        visits = page.get("/visits").get_data(as_text=True)
        expected = set().union(*(world.visits[c] for c in SEES[user]))
        every = set().union(*world.visits.values())
        assert {v for v in every if f'data-visit-id="{v}"' in visits} == expected, user
        if USERS[user][0] == "viewer":
            assert page.get("/review").status_code == 403
            continue
        review = page.get("/review").get_data(as_text=True)
        assert f'id="review-count">{len(SEES[user])}<' in review
        assert f'id="nav-review-count">{len(SEES[user])}<' in review
        hidden = world.ids["CN"][0]
        if "CN" not in SEES[user]:
            answer = page.post(f"/records/{hidden}/correct", data={"plate_corrected": "กข9999",
                                                                   "csrf_token": page.token("/records")})
            assert answer.status_code == 404


def test_an_unlimited_users_record_queries_are_what_they_were_before_sites(app, world):
    def sql(statement, dialect):
        return str(statement.compile(dialect=dialect))

    for dialect in (postgresql.dialect(), sqlite.dialect()):
        first_page = page_statement(RecordFilter(), 51)
        assert sql(page_statement(RecordFilter(), 51, scope=EVERYWHERE), dialect) == sql(first_page, dialect)
        assert "WHERE" not in sql(first_page, dialect) and "site" not in sql(first_page, dialect)
        limited = sql(page_statement(RecordFilter(), 51, scope=Scope(frozenset({"A"}))), dialect)
        assert "lpr_records.camera_id IN (SELECT cameras.id" in limited or "camera_id IN" in limited
    assert count_records(db.session, RecordFilter()).value == 6
    assert count_records(db.session, RecordFilter(), scope=Scope(frozenset({"A"}))).value == 2


# --- setting sites -------------------------------------------------------------------------------------


def test_patch_sets_and_clears_a_cameras_site_admins_only(client, world):
    boss = bearer(world.tokens["boss"])
    answer = client.patch("/api/cameras/CN", headers=boss, json={"site": "  A  "})
    assert answer.status_code == 200 and answer.get_json()["site"] == "A"
    [entry] = audits("camera.update")
    assert entry.target == "camera:CN" and entry.detail == {"site": [None, "A"]}
    assert client.get("/api/cameras/CN", headers=bearer(world.tokens["guard"])).status_code == 200
    assert client.patch("/api/cameras/CN", headers=boss, json={"site": ""}).get_json()["site"] is None
    assert client.patch("/api/cameras/CN", headers=boss, json={"site": "A"}).get_json()["site"] == "A"
    assert client.patch("/api/cameras/CN", headers=boss, json={"site": None}).get_json()["site"] is None
    for bad in ("x" * 65, "A,B", 7, ["A"], "A\tB"):
        answer = client.patch("/api/cameras/CA", headers=boss, json={"site": bad})
        assert answer.status_code == 400, bad
        error = answer.get_json()["error"]
        assert error["code"] == "validation_error" and error.get("field") == "site", error
    assert client.patch("/api/cameras/CA", headers=boss, json={"site": "x" * 64}).status_code == 200
    # who may: a stranger, a viewer, an operator, a read-only token, a limited admin outside their sites
    assert client.patch("/api/cameras/CB", json={"site": "A"}).status_code == 401
    assert client.patch("/api/cameras/CB", headers=bearer(world.tokens["guard"]), json={"site": "A"}
                        ).status_code in (403, 404)
    op = client.patch("/api/cameras/CB", headers=bearer(world.tokens["op"]), json={"site": "A"})
    assert op.status_code == 403 and op.get_json()["error"]["code"] == "forbidden"
    assert client.patch("/api/cameras/CB", headers=bearer(world.tokens["op"]), json={"role": "entry"}
                        ).status_code == 200  # operators still set the gate
    assert client.patch("/api/cameras/CB", headers=bearer(world.read_tokens["boss"]), json={"site": "A"}
                        ).status_code == 403
    badmin = bearer(world.tokens["badmin"])
    assert client.patch("/api/cameras/CB", headers=badmin, json={"site": "A"}).status_code == 400
    assert client.patch("/api/cameras/CB", headers=badmin, json={"site": None}).status_code == 400
    assert client.patch("/api/cameras/CN", headers=badmin, json={"site": "B"}).status_code == 404
    db.session.rollback()
    assert db.session.get(Camera, "CB").site == "B"
    spec = client.get("/api/openapi.json").get_json()
    patch_schema = spec["paths"]["/api/cameras/{camera_id}"]["patch"]["requestBody"]["content"]
    assert "site" in str(patch_schema) or "site" in spec["components"]["schemas"]["CameraPatch"]["properties"]


def test_the_cameras_page_sets_a_site_with_csrf_admins_only(app, world):
    boss = browser(app, "boss")
    html = boss.get("/cameras").get_data(as_text=True)
    assert 'action="/cameras/CN/site"' in html and "site-names" in html
    assert boss.post("/cameras/CN/site", data={"site": "B"}).status_code == 400  # no CSRF token
    token = boss.token("/cameras")
    answer = boss.post("/cameras/CN/site", data={"site": "B", "csrf_token": token})
    assert answer.status_code == 302
    db.session.rollback()
    assert db.session.get(Camera, "CN").site == "B"
    bad = boss.post("/cameras/CN/site", data={"site": "B,C", "csrf_token": token})
    assert bad.status_code == 400 and 'id="site-error"' in bad.get_data(as_text=True)
    assert boss.post("/cameras/CN/site", data={"site": "", "csrf_token": token}).status_code == 302
    db.session.rollback()
    assert db.session.get(Camera, "CN").site is None
    for user, status in (("op", 403), ("guard", 403)):
        page = browser(app, user)
        assert 'action="/cameras/CA/site"' not in page.get("/cameras").get_data(as_text=True)
        assert page.post("/cameras/CA/site", data={"site": "B", "csrf_token": page.token("/cameras")}
                         ).status_code == status
    badmin = browser(app, "badmin")
    assert badmin.post("/cameras/CB/site", data={"site": "A", "csrf_token": badmin.token("/cameras")}
                       ).status_code == 400
    assert badmin.post("/cameras/CA/site", data={"site": "B", "csrf_token": badmin.token("/cameras")}
                       ).status_code == 404
    stranger = PageClient(app)
    assert stranger.post("/cameras/CA/site", data={"site": "B"}).status_code in (302, 400)
    db.session.rollback()
    assert (db.session.get(Camera, "CA").site, db.session.get(Camera, "CB").site) == ("A", "B")


def test_the_users_page_sets_a_site_limit(app, world):
    boss = browser(app, "boss")
    html = boss.get("/users").get_data(as_text=True)
    assert 'name="sites"' in html and ">A</span>" in html
    db.session.rollback()
    guard = db.session.scalar(select(User).where(User.username == "guard"))
    path = f"/users/{guard.id}"
    assert boss.post(path, data={"action": "sites", "sites": "B"}).status_code == 400  # no CSRF token
    token = boss.token("/users")
    assert boss.post(path, data={"action": "sites", "sites": "B, A,B", "csrf_token": token}).status_code == 302
    db.session.rollback()
    assert db.session.get(User, guard.id).sites == ["A", "B"]
    assert audits("user.sites")[-1].detail == {"sites": ["A", "B"]}
    assert boss.post(path, data={"action": "sites", "sites": "x" * 65, "csrf_token": token}).status_code == 400
    assert boss.post(path, data={"action": "sites", "sites": "", "csrf_token": token}).status_code == 302
    db.session.rollback()
    assert db.session.get(User, guard.id).sites is None
    me = db.session.scalar(select(User.id).where(User.username == "boss"))
    assert boss.post(f"/users/{me}", data={"action": "sites", "sites": "A", "csrf_token": token}
                     ).status_code == 400
    created = boss.post("/users", data={"username": "newguard", "role": "viewer", "sites": "A",
                                        "csrf_token": token})
    assert created.status_code == 200
    db.session.rollback()
    assert db.session.scalar(select(User.sites).where(User.username == "newguard")) == ["A"]
    # a limited admin gives only their own sites, and their own when none is typed
    badmin = browser(app, "badmin")
    token = badmin.token("/users")
    assert badmin.post(path, data={"action": "sites", "sites": "A", "csrf_token": token}).status_code == 400
    assert badmin.post("/users", data={"username": "bguard", "role": "viewer", "sites": "",
                                       "csrf_token": token}).status_code == 200
    db.session.rollback()
    assert db.session.scalar(select(User.sites).where(User.username == "bguard")) == ["B"]
    # who may: a stranger goes to sign in, a viewer and an operator are refused
    assert PageClient(app).get("/users").status_code == 302
    for user in ("guard", "op"):
        page = browser(app, user)
        assert page.get("/users").status_code == 403
        assert page.post(path, data={"action": "sites", "sites": "A", "csrf_token": page.token("/records")}
                         ).status_code == 403


def test_create_user_with_sites_on_the_command_line(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["lpr", "create-user", "somchai", "--role", "operator", "--sites", "B, A",
                                 "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert "sites A, B" in result.output
    db.session.rollback()
    assert db.session.scalar(select(User.sites).where(User.username == "somchai")) == ["A", "B"]
    # without --sites an existing user's limit stays; an empty one clears it; a bad one is refused
    assert runner.invoke(args=["lpr", "create-user", "somchai", "--password", PASSWORD]).exit_code == 0
    db.session.rollback()
    assert db.session.scalar(select(User.sites).where(User.username == "somchai")) == ["A", "B"]
    bad = runner.invoke(args=["lpr", "create-user", "somchai", "--sites", "x" * 65])
    assert bad.exit_code != 0 and "--sites" in bad.output
    assert runner.invoke(args=["lpr", "create-user", "somchai", "--sites", ""]).exit_code == 0
    db.session.rollback()
    assert db.session.scalar(select(User.sites).where(User.username == "somchai")) is None
