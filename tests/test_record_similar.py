"""Searching by look-alike plates and by province (SPEC §9 "Search"), on the records service, the records
page, `GET /api/records` and the CSV exports; the province shown with its code on the pages; on
PostgreSQL, the plans that keep the searches on their indexes."""

import csv
import io
import json
import random
import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, text

from lprserver.api.export import CSV_COLUMNS as API_CSV_COLUMNS
from lprserver.extensions import db
from lprserver.models import Camera, Record, utcnow
from lprserver.plates import PROVINCE_CODES, lookalike_key, parse_plate, within_one_edit
from lprserver.records import (
    CSV_COLUMNS,
    FilterError,
    RecordFilter,
    capped_count_statement,
    count_records,
    filtered,
    like_skeletons,
    page_records,
    page_statement,
    similar_patterns,
)

from .conftest import bearer
from .test_web_pages import signed_in

THAI = "กขฃคฅงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮ"
ALPHABET = THAI + "0123456789ABCDGILOQSZ"


def add_reads(reads, camera="CAM001"):
    """Store reads as the pipeline does: (plate text, province field) through parse_plate; newest last."""
    if db.session.get(Camera, camera) is None:
        db.session.add(Camera(id=camera))
        db.session.flush()
    now = utcnow()
    rows = []
    for n, read in enumerate(reads):
        plate, field = read if isinstance(read, tuple) else (read, None)
        parsed = parse_plate(plate, field)
        at = now - timedelta(seconds=len(reads) - n)
        rows.append({"camera_id": camera, "plate_number": plate, "plate_normalized": parsed.normalized,
                     "province": parsed.province, "province_code": parsed.province_code,
                     "plate_format": parsed.format, "captured_at": at, "received_at": at})
    db.session.execute(insert(Record), rows)
    db.session.commit()


def found(args, per_page=500):
    f = RecordFilter.from_args(args, "Asia/Bangkok")
    return sorted(r.plate_normalized for r in page_records(db.session, f, per_page).records)


def similar_by_definition(query, plate):
    """SPEC §9: look-alikes, or one character inserted, deleted or substituted (both 5+ characters)."""
    a, b = lookalike_key(query), lookalike_key(plate)
    return a == b or (len(query) >= 5 and len(plate) >= 5 and within_one_edit(a, b))


def neighbours(plate, rng, count=40):
    """Plates near `plate`: look-alike swaps, one and two edits, shuffles."""
    classes = {ch: cls for cls in ("ขฃชซ", "คฅดต", "บปษ", "ผฝ", "พฟฬ", "ถภฎฏ", "รธ", "ทฑ", "ลส",
                                   "0ODQ", "1IL", "2Z", "5S", "6G", "8B") for ch in cls}
    out = set()
    while len(out) < count:
        chars = list(plate)
        for _ in range(rng.choice((1, 1, 2))):
            i = rng.randrange(len(chars) + 1)
            kind = rng.choice(("swap", "insert", "delete", "substitute"))
            if kind == "swap" and i < len(chars) and chars[i] in classes:
                chars[i] = rng.choice(classes[chars[i]])
            elif kind == "insert":
                chars.insert(i, rng.choice(ALPHABET))
            elif kind == "delete" and i < len(chars) and len(chars) > 1:
                del chars[i]
            elif i < len(chars):
                chars[i] = rng.choice(ALPHABET)
        out.add("".join(chars))
    return sorted(out)


# --- similar ------------------------------------------------------------------------------------

QUERIES = ["กข1234", "1กข1234", "กข123", "กข12", "ขช8888", "AB1234", "8BO0", "A+B(1)2*", "X%_\\9"]


def test_similar_finds_exactly_the_lookalikes_and_one_edit_plates(app):
    """Against the definition, for plates near each query (and the query's own plate): Thai, Latin,
    short plates (look-alikes only), and characters that mean something in a regex or in LIKE."""
    rng = random.Random(19)
    add_reads(sorted({p for q in QUERIES for p in [q, *neighbours(q, rng)]}))
    plates = list(db.session.scalars(db.select(Record.plate_normalized)))  # as stored: provinces parsed off
    for query in QUERIES:
        expected = sorted(p for p in plates if similar_by_definition(query, p))
        assert query in expected
        assert found({"plate": query, "plate_mode": "similar"}) == expected, query
        total = count_records(db.session, RecordFilter.from_args({"plate": query, "plate_mode": "similar"},
                                                                 "UTC"))
        assert (total.value, total.kind) == (len(expected), "exact")
        assert len(expected) < len(plates) // 4  # the neighbours hold many that are not similar


def test_similar_named_cases_and_a_typed_province_is_dropped(app):
    near = ["กข1234", "กช1234", "กซ1234", "กข123", "กข12345", "1กข1234", "กข1284", "กช1235", "กข๑๒๓๔"]
    far = ["กข12", "ขก1234", "กข1243", "กบ1235", "กข5678", "กข123456", "ABC1234"]
    add_reads([*near, *far, ("กข1234 กรุงเทพมหานคร", None)])
    want = sorted(parse_plate(p).normalized for p in [*near, "กข1234"])
    assert found({"plate": "กข1234", "plate_mode": "similar"}) == want
    assert found({"plate": "กข 1234 กรุงเทพมหานคร", "plate_mode": "similar"}) == want
    assert found({"plate": "กข-๑๒๓๔\nกทม", "plate_mode": "similar"}) == want
    assert found({"plate": "กข 1234 กรุงเทพมหานคร", "plate_mode": "exact"}) == ["กข1234"] * 3
    # four characters: look-alikes only, never one edit
    assert found({"plate": "กข12", "plate_mode": "similar"}) == ["กข12"]
    add_reads(["กช12", "กข1", "กข123X"])
    assert found({"plate": "กช๑๒", "plate_mode": "similar"}) == ["กข12", "กช12"]
    # a plate longer than any stored one plus an edit finds nothing, quickly
    assert found({"plate": "ก" * 60, "plate_mode": "similar"}) == []


def like_regex(like):
    """A LIKE pattern (escaped with a backslash) as a regular expression for the whole text."""
    parts = re.findall(r"\\.|.", like, re.DOTALL)
    return "".join("." if p == "_" else ".*" if p == "%" else re.escape(p[-1]) for p in parts)


def test_the_like_skeletons_of_a_pattern_hold_every_plate_it_matches():
    """The LIKE patterns only narrow the index scan: each plate a similar pattern matches is matched by
    one of its skeletons (spelled out or not)."""
    rng = random.Random(5)
    for query in [*QUERIES, "ขช1234", "1กข1234", "OO0000"]:
        plates = [query, *neighbours(query, rng, 200)]
        for pattern in similar_patterns(query):
            skeletons = like_skeletons(pattern)
            assert 1 <= len(skeletons) <= 16
            for plate in plates:
                if re.search(pattern, plate):
                    assert any(re.fullmatch(like_regex(s), plate, re.DOTALL) for s in skeletons), (pattern, plate)
    assert like_skeletons("^ก[ขฃชซ][1IL][2Z].34$") == ["กข___34", "กฃ___34", "กช___34", "กซ___34"]
    assert like_skeletons("^ก[ขฃชซ][1IL][2Z]34$") == ["ก___34"]  # the regex's digits narrow it already
    assert like_skeletons("^AB%_\\\\[8B]$") == ["AB\\%\\_\\\\_"]  # LIKE's own characters escaped


# --- province -----------------------------------------------------------------------------------

PROVINCE_READS = [("กข1234", "กรุงเทพมหานคร"), ("กข1235 กทม", None), ("ขค99", "BANGKOK"), ("ขค98", "TH-10"),
                  ("กข1234", "เชียงใหม่"), ("กข-1234 Chiang Mai", None), ("กข1236", "ไม่ทราบ"), ("ABC123", None),
                  ("กข1237", "เบตง"), ("กข1238", "TH-95")]


def test_province_filter_by_code_alone_and_with_a_plate(app):
    add_reads(PROVINCE_READS)
    assert found({"province_code": "TH-10"}) == ["กข1234", "กข1235", "ขค98", "ขค99"]
    assert found({"province_code": "th-50"}) == ["กข1234", "กข1234"]
    assert found({"province_code": "TH-95"}) == ["กข1237", "กข1238"]  # Betong's plates carry Yala's code
    assert found({"province_code": "TH-10", "plate": "กช1234", "plate_mode": "similar"}) == ["กข1234", "กข1235"]
    assert found({"province_code": "TH-50", "plate": "กข", "plate_mode": "prefix"}) == ["กข1234", "กข1234"]
    assert found({"province_code": "TH-12"}) == []
    f = RecordFilter.from_args({"province_code": " th-10 "}, "UTC")
    assert f.province_code == "TH-10" and f.query_args("UTC") == {"province_code": "TH-10"}
    assert count_records(db.session, f).value == 4


@pytest.mark.parametrize("value", ["TH-99", "XX", "Bangkok", "กรุงเทพมหานคร", "TH-10\x00", "x" * 10_000])
def test_an_unknown_province_code_is_a_filter_error(value):
    with pytest.raises(FilterError) as error:
        RecordFilter.from_args({"province_code": value}, "UTC")
    assert error.value.field == "province_code"
    assert len(str(error.value)) < 200


# --- GET /api/records ---------------------------------------------------------------------------

def api_plates(client, token, **query):
    answer = client.get("/api/records", query_string=query, headers=bearer(token))
    assert answer.status_code == 200, answer.get_json()
    return sorted(r["plate_normalized"] for r in answer.get_json()["records"]), answer.get_json()


def test_api_plate_match_similar_and_province_code(client, api_token):
    add_reads(PROVINCE_READS + ["กช1234", "กข12"])
    plates, body = api_plates(client, api_token, plate="กข1234", plate_match="similar")
    assert plates == ["กข1234", "กข1234", "กข1234", "กข1235", "กข1236", "กข1237", "กข1238", "กช1234"]
    assert (body["total"], body["total_kind"]) == (8, "exact")
    plates, body = api_plates(client, api_token, plate="กช1234 เชียงใหม่", plate_match="similar",
                              province_code="th-50")
    assert plates == ["กข1234", "กข1234"] and body["total"] == 2
    assert {(r["province"], r["province_code"], r["plate_format"]) for r in body["records"]} == {
        ("เชียงใหม่", "TH-50", "th_car")}
    plates, _ = api_plates(client, api_token, province_code="TH-10", per_page=2)
    assert len(plates) == 2
    _, body = api_plates(client, api_token, plate="กข1236", plate_match="exact")
    assert (body["records"][0]["province"], body["records"][0]["province_code"]) == ("ไม่ทราบ", None)
    answer = client.get("/api/records/export.csv", query_string={"province_code": "TH-95"}, headers=bearer(api_token))
    assert sorted(row["plate_normalized"] for row in csv.DictReader(io.StringIO(answer.get_data(as_text=True)))) \
        == ["กข1237", "กข1238"]


@pytest.mark.parametrize(("query", "status"), [
    ("province_code=TH-99", 400), ("province_code=xx", 400), ("province_code=%00", 400),
    ("province_code=TH-10%00", 400), ("province_code=" + "x" * 5000, 400), ("province_code=%ED%A0%80", 400),
    ("province_code=", 200), ("province_code=%20", 200), ("province_code=TH-10&province_code=XX", 200),
    ("plate_match=SIMILAR&plate=1", 400), ("plate_match=similar&plate=" + "ก" * 65, 400),
    ("plate_match=similar&plate=%00", 400), ("plate_match=similar&plate=[(*%2B?", 200),
])
def test_api_bad_province_code_and_similar_queries_get_a_clear_answer(client, api_token, query, status):
    for path in ("/api/records", "/api/records/export.csv"):
        answer = client.get(f"{path}?{query}", headers=bearer(api_token))
        assert answer.status_code == status, (path, query, answer.get_data(as_text=True)[:300])
        if status == 400:
            error = answer.get_json()["error"]
            assert error["code"] == "validation_error" and error["field"] in ("province_code", "plate_match",
                                                                               "plate")
            assert len(error["message"]) < 300


def test_api_unknown_province_code_names_the_field_and_the_form(client, api_token):
    answer = client.get("/api/records?province_code=TH-99", headers=bearer(api_token))
    assert answer.status_code == 400
    assert answer.get_json() == {"error": {
        "code": "validation_error", "field": "province_code",
        "message": "province_code: 'TH-99' is not a Thai province's code: use ISO 3166-2:TH, such as TH-10 "
                   "(Bangkok)"}}


def test_openapi_documents_plate_match_similar_and_province_code(client):
    doc = client.get("/api/openapi.json").get_json()
    for path in ("/api/records", "/api/records/export.csv"):
        params = {p["name"]: p for p in doc["paths"][path]["get"]["parameters"]}
        assert "similar" in params["plate_match"]["schema"]["enum"]
        assert "look-alike" in params["plate_match"]["description"]
        assert params["province_code"]["in"] == "query" and "ISO 3166-2:TH" in params["province_code"]["description"]
    record = doc["components"]["schemas"]["Record"]["properties"]
    assert {"province", "province_code", "plate_format"} <= set(record)


# --- CSV exports --------------------------------------------------------------------------------

def test_both_csv_exports_carry_province_code_and_plate_format(client, api_token, users, app):
    add_reads(PROVINCE_READS)
    assert set(API_CSV_COLUMNS) == set(CSV_COLUMNS)  # the same columns; each keeps its published order
    # (a streamed answer is read whole before the next request)
    api = client.get("/api/records/export.csv?province_code=TH-10", headers=bearer(api_token)).get_data(as_text=True)
    page = signed_in(app, "viewer").get("/records/export.csv?province_code=TH-10").get_data(as_text=True)
    assert api.splitlines()[0] == ",".join(API_CSV_COLUMNS) and page.lstrip("\ufeff").splitlines()[0] == ",".join(
        CSV_COLUMNS)
    for body in (api, page):
        rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
        assert len(rows) == 4
        assert {(r["province"], r["province_code"], r["plate_format"]) for r in rows} == {
            ("กรุงเทพมหานคร", "TH-10", "th_car")}
    unknown = signed_in(app, "viewer").get("/records/export.csv?plate=กข1236&plate_mode=exact").get_data(as_text=True)
    [row] = list(csv.DictReader(io.StringIO(unknown.lstrip("\ufeff"))))
    assert (row["province"], row["province_code"]) == ("ไม่ทราบ", "")
    assert signed_in(app, "viewer").get("/records/export.csv?province_code=TH-99").status_code == 400


# --- the pages ----------------------------------------------------------------------------------

def test_records_page_searches_similar_and_by_province_and_shows_name_and_code(app, users):
    add_reads(PROVINCE_READS + ["กช1234"])
    browser = signed_in(app, "viewer")
    html = browser.get("/records").get_data(as_text=True)
    assert 'value="similar"' in html
    options = re.findall(r'<option value="(TH-\d\d)"[^>]*>([^<]+)</option>', html)
    assert sorted(code for code, _ in options) == sorted(PROVINCE_CODES) and len(options) == 77
    assert ("TH-10", "Bangkok · TH-10") in options and ("TH-95", "Yala · TH-95") in options  # English names in English
    assert "กรุงเทพมหานคร <span class=\"text-secondary small text-nowrap\">· TH-10</span>" in html
    assert "ไม่ทราบ</td>" in html  # an unknown province as sent, without a code
    html = browser.get("/records?plate=กข1234&plate_mode=similar&province_code=TH-50").get_data(as_text=True)
    assert re.findall(r'class="plate" href="/records/\d+">([^<]+)<', html) == ["กข-1234 Chiang Mai", "กข1234"]
    assert '<option value="TH-50" selected>' in html and '<option value="similar" selected>' in html
    assert 'data-kind="exact">2<' in html
    data = json.loads(re.search(r'<script type="application/json" id="records-data">(.*?)</script>', html,
                                re.DOTALL).group(1))
    assert data["filter"]["province_code"] == "TH-50" and data["filter"]["similar"] == similar_patterns("กข1234")
    pages = browser.get("/records?province_code=TH-10&plate=ขค9&plate_mode=prefix").get_data(as_text=True)
    assert "province_code=TH-10" in pages  # the export link keeps the filter


@pytest.mark.parametrize("value", ["TH-99", "%00", "x" * 3000, "%ED%A0%80"])
def test_records_page_says_what_is_wrong_with_a_province_code(app, users, value):
    answer = signed_in(app, "viewer").get(f"/records?province_code={value}")
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "province_code" in html and 'class="alert alert-warning' in html
    assert len(html) < 60_000


def test_record_page_shows_the_province_with_its_code_and_the_plate_format(app, users):
    add_reads([("1กข 1234", "Chiang Mai"), ("กข1236", "ไม่ทราบ"), ("12-3456", None)])
    ids = sorted(db.session.scalars(db.select(Record.id)))
    browser = signed_in(app, "viewer")
    html = browser.get(f"/records/{ids[0]}").get_data(as_text=True)
    assert html.count("เชียงใหม่ · TH-50") == 2  # beside the plate and in the fields
    assert "th_car" in html
    html = browser.get(f"/records/{ids[1]}").get_data(as_text=True)
    assert "ไม่ทราบ" in html and "TH-" not in html.split("<main")[1].split("Times in")[0]
    html = browser.get(f"/records/{ids[2]}").get_data(as_text=True)
    assert "th_numeric" in html and 'id="record-province"' not in html


# --- PostgreSQL plans ---------------------------------------------------------------------------

def fill_many(count=3000, seed=3):
    rng = random.Random(seed)
    reads = []
    for n in range(count):
        letters = "".join(rng.choices(THAI, k=2))
        province = "ยะลา" if n % 500 == 0 else rng.choice(("กรุงเทพมหานคร", "เชียงใหม่", "ชลบุรี", "ภูเก็ต"))
        reads.append((f"{letters}{rng.randint(1, 9999)}", province))
    add_reads(reads + ["กช1234", "กข1284"])
    db.session.execute(text("ANALYZE lpr_records"))
    db.session.commit()


def explain(statement, analyze=False):
    sql = str(statement.compile(db.engine, compile_kwargs={"literal_binds": True}))
    rows = db.session.execute(text(f"EXPLAIN ({'ANALYZE, ' if analyze else ''}FORMAT JSON) {sql}")).scalar()
    return rows[0]["Plan"]


def index_names(plan):
    """The indexes a plan reads, by their names on lpr_records: a partition's copy of one is named after
    it with the partition's month (ix_lpr_records_plate_trgm_y2026m12, partitions.py)."""
    return {re.sub(r"_(y\d{4}m\d{2}|default)$", "", n["Index Name"]) for n in nodes(plan) if n.get("Index Name")}


def nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


@pytest.mark.parametrize("query", ["กข1234", "1กข1234", "ขช8888", "กข12"])
def test_similar_search_is_a_bitmap_or_of_index_scans_that_each_narrow(app, db_kind, query):
    """Every branch is answered from the trigram index, and every scan narrows: a regular expression
    alone gives pg_trgm no trigram from Thai letters, and `^ก[ขฃชซ][1IL][2Z].34$` read all the rows
    until each branch also carried its LIKE skeleton."""
    if db_kind != "postgresql":
        pytest.skip("the trigram index exists on PostgreSQL only")
    fill_many()
    f = RecordFilter.from_args({"plate": query, "plate_mode": "similar"}, "UTC")
    statement = page_statement(f, 51)
    assert "lpr_records.id + " in str(statement.compile(db.engine))  # read the matches and sort them
    # Whether the index can serve it, not which plan the planner prefers for these few rows.
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    db.session.execute(text("SET LOCAL enable_indexscan = off"))
    db.session.execute(text("SET LOCAL enable_indexonlyscan = off"))
    count = capped_count_statement(filtered(db.select(Record.id), f), 10_000)
    for plan in (explain(statement, analyze=True), explain(count, analyze=True)):
        kinds = {n["Node Type"] for n in nodes(plan)}
        assert "BitmapOr" in kinds and "Seq Scan" not in kinds, kinds
        scans = [n for n in nodes(plan) if n["Node Type"] == "Bitmap Index Scan"]
        # An arm whose LIKE starts with letters may take the prefix index instead (กข__ for กข12): as
        # narrow. An insertion in front (_กข1234) can only use the trigrams.
        used = index_names({"Plans": scans})
        assert used <= {"ix_lpr_records_plate_trgm", "ix_lpr_records_plate_id"}
        assert len(query) < 5 or "ix_lpr_records_plate_trgm" in used
        widest = max(n["Actual Rows"] for n in scans)
        assert widest < 3002 * 0.05, (query, widest)  # no arm reads much of the index
    db.session.rollback()


def test_a_similar_page_never_walks_the_primary_key(app, db_kind):
    """The planner's own choice, unforced: PostgreSQL guesses that a regular expression matches about
    0.01 % of rows, so walking the ids down until 51 match looked cheap, and read the whole table.
    (At a few thousand rows it may read the table instead of the index; at 50,000 the bench shows the
    BitmapOr.)"""
    if db_kind != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    fill_many()
    f = RecordFilter.from_args({"plate": "กข1234", "plate_mode": "similar"}, "UTC")
    for before in (None, 10**6):
        plan = explain(page_statement(f, 51, before=before))
        assert "pk_lpr_records" not in index_names(plan), plan
    plan = explain(page_statement(f, 51, after=1))
    assert "pk_lpr_records" not in index_names(plan), plan
    assert {r.plate_normalized for r in page_records(db.session, f).records} >= {"กข1284", "กช1234"}


def test_a_rare_province_is_read_through_its_index(app, db_kind):
    if db_kind != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    fill_many()
    f = RecordFilter.from_args({"province_code": "TH-95"}, "UTC")
    for statement in (page_statement(f, 51),):
        plan = explain(statement)
        assert "ix_lpr_records_province_received" in index_names(plan), plan
    assert len(page_records(db.session, f).records) == 6
    assert count_records(db.session, f).value == 6
