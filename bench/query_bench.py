"""Fill PostgreSQL with realistic records (rows only) and time the records page's, statistics' and a
plate's page's queries.

    python -m bench.query_bench                          # 5,000,000 rows in a throwaway cluster
    python -m bench.query_bench --pg-dir /var/tmp/lpr-5m # keep the filled cluster for the next run
    python -m bench.query_bench --rows 50000             # a smoke run
"""

import argparse
import io
import json
import random
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session

from config import database_url
from lprserver import partitions
from lprserver.models import Record
from lprserver.plate_history import PER_PAGE as PLATE_PER_PAGE
from lprserver.plate_history import (
    cameras_seen,
    end_read,
    plate_history,
    reads_of,
    route_of,
    sightings_page,
)
from lprserver.plates import PROVINCES, Province, parse_plate
from lprserver.records import COUNT_CAP, RecordFilter, Total, count_records, page_records
from lprserver.simulate import as_cameras_send
from lprserver.statistics import dashboard_stats, record_statistics

from .common import BenchDatabase, machine, percentile, random_plate, write_json

CAMERAS = 200
DAYS = 90
CHUNK = 100_000
COLUMNS = ("camera_id, event_id, plate_number, plate_normalized, province, province_code, plate_format, "
           "confidence, captured_at, received_at, location, vehicle_type, vehicle_color, direction, "
           "image_path, thumbnail_path, image_bytes, blacklisted")
# Where the cars are registered: Bangkok about a third, the big provinces a few percent each, the rest
# about half a percent each; Yala (TH-95) and Betong (its plates say เบตง, with Yala's code) are rare.
PROVINCE_WEIGHTS = {"กรุงเทพมหานคร": 30, "นนทบุรี": 4, "ปทุมธานี": 4, "สมุทรปราการ": 4, "เชียงใหม่": 4,
                    "ชลบุรี": 4, "นครราชสีมา": 3, "ขอนแก่น": 3, "สงขลา": 3, "ภูเก็ต": 2,
                    "ยะลา": 0.1, "เบตง": 0.03}
OTHER_PROVINCE_WEIGHT = 0.5
NO_PROVINCE_READ = 0.05  # the camera read no province off the plate
TIMEZONE = "Asia/Bangkok"
PER_PAGE = 50  # the records page's page size (web/records.py PER_PAGE)
# A plate's page (SPEC §10) is timed on a vehicle read every HEAVY_EVERY-th row: 100,000 reads at 5 M rows,
# at the cameras the other reads are at.
HEAVY_PLATE, HEAVY_PROVINCE, HEAVY_EVERY = "ฮฮ9999", "กรุงเทพมหานคร", 50
HEAVY_DEPTH = 0.9  # the deep sightings page starts this far into the plate's reads (90,000 of 100,000)

# The searches of the records page (web/records.py): each is timed as its first page and its total.
SEARCHES = {
    "newest": ({}, "records page, no filter"),
    "plate_prefix": ({"plate": "กข", "plate_mode": "prefix"}, "plate prefix 'กข%'"),
    "contains": ({"plate": "ข12", "plate_mode": "contains"}, "Thai 'contains' '%ข12%'"),
    "camera_24h": ({"camera_id": "{camera}", "since": "{day_ago}"},
                   "one camera (drawn anew each run), last 24 h"),
    "past_day": ({"since": "{days_61}", "until": "{days_60}"}, "one day 60 days back, no plate or camera"),
    "similar": ({"plate": "กข1234", "plate_mode": "similar"},
                "plate similar to 'กข1234' (look-alikes or one edit), whole table"),
    "province_common": ({"province_code": "TH-10"}, "province TH-10 (Bangkok, about a third), whole table"),
    "province_rare": ({"province_code": "TH-95"}, "province TH-95 (Yala, rare), whole table"),
}


def _search(args: dict, now: datetime, camera: str) -> RecordFilter:
    moments = {"day_ago": now - timedelta(hours=24), "days_61": now - timedelta(days=61),
               "days_60": now - timedelta(days=60)}
    values = {k: v.format(camera=camera, **{name: m.isoformat() for name, m in moments.items()})
              for k, v in args.items()}
    return RecordFilter.from_args(values, TIMEZONE)


def _page(args):
    return lambda session, now, camera: page_records(session, _search(args, now, camera), PER_PAGE).records


def _count(args):
    return lambda session, now, camera: count_records(session, _search(args, now, camera))


def _plate_summary(session, now, camera):
    """The head of a plate's page: its reads, first and last seen."""
    return [reads_of(session, HEAVY_PLATE), end_read(session, HEAVY_PLATE, newest=False),
            end_read(session, HEAVY_PLATE, newest=True)]


_deep_before: dict[str, int] = {}


def _plate_deep_page(session, now, camera):
    """A sightings page HEAVY_DEPTH of the way into the plate's reads (its before_id found once, untimed
    after the warm-up run)."""
    if "id" not in _deep_before:
        ids = session.execute(select(Record.id).where(Record.plate_normalized == HEAVY_PLATE)
                              .order_by(Record.id.desc())).scalars().all()
        _deep_before["id"] = ids[int(len(ids) * HEAVY_DEPTH)] if ids else 0
    return sightings_page(session, HEAVY_PLATE, {}, _deep_before["id"], PLATE_PER_PAGE)[0]


# name -> (what runs it, what it stands for). Each calls the app's own service, the one the page or
# the API calls, so the statements timed are the ones the app sends (EXPLAIN ANALYZE of each is saved).
QUERIES = {
    **{f"{name}_page": (_page(args), f"{meaning}: first page") for name, (args, meaning) in SEARCHES.items()},
    **{f"{name}_count": (_count(args), f"{meaning}: the page's total (exact to {COUNT_CAP:,}, then capped "
                         "or, unfiltered, estimated)") for name, (args, meaning) in SEARCHES.items()},
    "statistics_api": (lambda session, now, camera: record_statistics(session, now, TIMEZONE, 24),
                       "GET /api/statistics (default 24 h): every statement it runs"),
    "dashboard_charts": (lambda session, now, camera: dashboard_stats(session, now, TIMEZONE),
                         "the dashboard's chart data (page and periodic `stats` event): every statement"),
    "plate_page": (lambda session, now, camera: plate_history(session, HEAVY_PLATE, now),
                   f"a plate's page / GET /api/plates/<plate>, a plate read every {HEAVY_EVERY}th row: "
                   "every statement"),
    "plate_summary": (_plate_summary, "a plate's page: reads, first and last seen"),
    "plate_cameras": (lambda session, now, camera: cameras_seen(session, HEAVY_PLATE),
                      "a plate's page: reads and last seen per camera"),
    "plate_sightings": (lambda session, now, camera: sightings_page(session, HEAVY_PLATE, {}, None,
                                                                    PLATE_PER_PAGE)[0],
                        "a plate's page: the newest sightings"),
    "plate_deep_page": (_plate_deep_page, f"a plate's page: sightings {HEAVY_DEPTH:.0%} deep (before_id)"),
    "plate_route": (lambda session, now, camera: route_of(session, HEAVY_PLATE, {}, {})[0],
                    "a plate's page: the route of its newest 500 sightings"),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of each query (after one warm-up)")
    parser.add_argument("--database-url", help="use this database instead of a throwaway cluster")
    parser.add_argument("--pg-dir", help="keep the cluster in this folder and reuse its rows next time")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", help="write the results here (default bench/results/query_bench-*.json)")
    return parser.parse_args(argv)


def camera_ids() -> list[str]:
    return [f"CAM{i:03d}" for i in range(1, CAMERAS + 1)]


def fill(db: BenchDatabase, rows: int, seed: int) -> dict:
    """Add records until the table holds `rows`; indexes are dropped during COPY and rebuilt after."""
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM lpr_records")
        have = cur.fetchone()[0]
        if have >= rows:
            cur.execute("SELECT EXISTS (SELECT 1 FROM lpr_records WHERE province_code IS NOT NULL)")
            if not cur.fetchone()[0]:
                print("warning: these rows were filled before records had province codes; the province "
                      "searches find nothing (fill a new --pg-dir)")
            cur.execute("SELECT count(*) FROM lpr_records WHERE plate_normalized = %s", (HEAVY_PLATE,))
            if cur.fetchone()[0] < have // HEAVY_EVERY // 2:
                print(f"warning: these rows were filled before the bench read {HEAVY_PLATE} every "
                      f"{HEAVY_EVERY}th row; the plate_* figures are of a lighter plate "
                      "(fill a new --pg-dir)")
            return {"rows": have, "filled": 0, "seconds": 0}
        started = time.monotonic()
        cur.executemany("INSERT INTO cameras (id, name, location, online, created_at) "
                        "VALUES (%s, %s, %s, false, now()) ON CONFLICT DO NOTHING",
                        [(c, f"Camera {c}", f"Gate {c}") for c in camera_ids()])
        rebuild = _drop_indexes(cur)
        conn.commit()
        made = _partitions_for_the_rows(db)
        for chunk in _chunks(rows - have, seed + have):
            cur.copy_expert(f"COPY lpr_records ({COLUMNS}) FROM STDIN", chunk)
            conn.commit()
        copied = time.monotonic() - started
        for statement in rebuild:
            cur.execute(statement)
        conn.commit()
    conn = db.connect()
    try:
        conn.autocommit = True  # VACUUM refuses to run in a transaction
        conn.cursor().execute("VACUUM ANALYZE lpr_records")
    finally:
        conn.close()
    return {"rows": rows, "filled": rows - have, "copy_seconds": copied,
            "seconds": time.monotonic() - started, "partitions_made": made}


def _partitions_for_the_rows(db: BenchDatabase) -> list[str]:
    """On a partitioned lpr_records (SPEC §14), a month partition for each month of the DAYS filled, as
    the app makes them ahead of the reads; otherwise the past months' rows would all go to the default."""
    engine = create_engine(database_url(db.url))
    try:
        with engine.begin() as conn:
            if not partitions.is_partitioned(conn):
                return []
            now = datetime.now(UTC)
            return partitions.ensure_months(conn, partitions.Month.of(now - timedelta(days=DAYS + 1)),
                                            partitions.Month.of(now).next(partitions.AHEAD_MONTHS))
    finally:
        engine.dispose()


def _drop_indexes(cur) -> list[str]:
    """Drop lpr_records' secondary indexes and unique constraints; return the statements that rebuild them."""
    cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'lpr_records'::regclass AND contype = 'u'")
    constraints = cur.fetchall()
    cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'lpr_records' "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint "
                "WHERE conrelid = 'lpr_records'::regclass)")
    indexes = cur.fetchall()
    for name, _ in constraints:
        cur.execute(f'ALTER TABLE lpr_records DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    add = [f'ALTER TABLE lpr_records ADD CONSTRAINT "{n}" {d}' for n, d in constraints]
    return add + [d for _, d in indexes]


def _copy_text(value: str | None) -> str:
    if value is None:
        return r"\N"
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _car(rng: random.Random, provinces: list[Province], weights: list[float]) -> tuple[str, str | None]:
    """A car: its plate and the province it is registered in (None for a Latin plate)."""
    plate = random_plate(rng)
    return plate, None if plate.isascii() else rng.choices(provinces, weights)[0].name_th


def _chunks(count: int, seed: int):
    """Yield COPY text for `count` reads spread over the last DAYS days, oldest first. Each camera writes
    the province its own way (simulate.as_cameras_send); the row keeps what parse_plate makes of it, as the
    pipeline does."""
    rng = random.Random(seed)
    provinces = list(PROVINCES)
    weights = [PROVINCE_WEIGHTS.get(p.name_th, OTHER_PROVINCE_WEIGHT) for p in provinces]
    pool = [_car(rng, provinces, weights) for _ in range(max(1000, count // 15))]  # regulars come back often
    cameras = camera_ids()
    end = datetime.now(UTC)
    step = timedelta(days=DAYS) / count
    at = end - timedelta(days=DAYS)
    kinds = ("car", "pickup", "motorcycle", "truck", "van")
    colours = ("white", "black", "silver", "red", "blue")
    for start in range(0, count, CHUNK):
        out = io.StringIO()
        for n in range(start, min(count, start + CHUNK)):
            at += step
            plate, registered = pool[int(len(pool) * rng.random() ** 3)]
            if n % HEAVY_EVERY == 0:
                plate, registered = HEAVY_PLATE, HEAVY_PROVINCE
            camera = cameras[int(CAMERAS * rng.random() ** 1.5)]
            captured = at - timedelta(milliseconds=rng.randint(50, 2000))
            read = None if rng.random() < NO_PROVINCE_READ else registered
            text, field = as_cameras_send(plate, read, camera)
            parsed = parse_plate(text, field)
            day = f"{at:%Y/%m/%d}/{camera}/{n:032x}"
            blacklisted = "t" if rng.random() < 0.001 else "f"
            out.write(f"{camera}\t{camera}-{n}\t{_copy_text(text)}\t{_copy_text(parsed.normalized)}\t"
                      f"{_copy_text(parsed.province)}\t{_copy_text(parsed.province_code)}\t{parsed.format}\t"
                      f"{rng.uniform(60, 99.9):.1f}\t{captured.isoformat()}\t{at.isoformat()}\t"
                      f"Gate {camera}\t{rng.choice(kinds)}\t{rng.choice(colours)}\t"
                      f"{'in' if n % 2 else 'out'}\t"
                      f"{day}.jpg\t{day}_thumb.jpg\t{rng.randint(30_000, 60_000)}\t{blacklisted}\n")
        out.seek(0)
        yield out


def time_queries(db: BenchDatabase, repeat: int, seed: int) -> tuple[dict, str]:
    """Time every query; return the figures and the EXPLAIN ANALYZE text of each statement it sends."""
    rng = random.Random(seed)
    engine = create_engine(database_url(db.url))
    statements: list[tuple[str, dict]] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, params, context, many: statements.append((sql, params)))
    figures, plans = {}, []
    try:
        with Session(engine) as session:
            for name, (run, meaning) in QUERIES.items():
                timings = []
                for n in range(repeat + 1):
                    camera, now = rng.choice(camera_ids()), datetime.now(UTC)
                    statements.clear()
                    started = time.perf_counter()
                    result = run(session, now, camera)
                    if n:  # the first run only warms the cache
                        timings.append((time.perf_counter() - started) * 1000)
                    session.rollback()
                sent = list(statements)
                explained = [_explain(engine, sql, params) for sql, params in sent]
                figures[name] = {"meaning": meaning, "returned": _size(result), **_spread(timings),
                                 "statements": [_plan_summary(plan) for plan in explained]}
                plans += [f"== {name}: {meaning}\n{sql}\n{params}\n{json.dumps(plan, indent=1)}\n"
                          for (sql, params), plan in zip(sent, explained, strict=True)]
    finally:
        engine.dispose()
    for entry in figures.values():
        entry.pop("_timings")
    return figures, "\n".join(plans)


def _explain(engine, sql: str, params) -> dict:
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0][0]
        connection.rollback()
        return plan
    finally:
        connection.close()


def _size(result) -> int | str:
    if isinstance(result, list):
        return len(result)
    if isinstance(result, Total):
        return f"{result.value} ({result.kind})"
    if hasattr(result, "reads"):  # plate_history's History
        return f"{result.reads} reads"
    return "-"


def _spread(timings: list[float]) -> dict:
    return {"p50_ms": percentile(timings, 50), "p95_ms": percentile(timings, 95),
            "max_ms": max(timings, default=None), "_timings": timings}


def _plan_summary(plan: dict) -> dict:
    """Return a statement's execution time and its plan's node types."""
    nodes = []

    def walk(node):
        label = node["Node Type"] + (f" on {node['Index Name']}" if "Index Name" in node else "")
        nodes.append(label)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return {"execution_ms": plan.get("Execution Time"), "nodes": nodes}


def main(argv=None) -> int:
    args = parse_args(argv)
    report = {"bench": "query_bench", "machine": machine(), "args": vars(args)}
    db = BenchDatabase(args.database_url, folder=args.pg_dir)
    try:
        report["fill"] = fill(db, args.rows, args.seed)
        print(f"table holds {report['fill']['rows']} rows (added {report['fill']['filled']} "
              f"in {report['fill']['seconds']:.0f} s)")
        report["queries"], plans = time_queries(db, args.repeat, args.seed)
    finally:
        db.close()
    print(f"{'query':<20}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  {'returned':<18}plan (first statement)")
    for name, q in report["queries"].items():
        statements = q["statements"]
        plan = " > ".join(statements[0]["nodes"][:4]) if statements else ""
        plan += f" (+{len(statements) - 1} statements)" if len(statements) > 1 else ""
        print(f"{name:<20}{q['p50_ms']:9.1f}{q['p95_ms']:9.1f}{q['max_ms']:9.1f}  "
              f"{q['returned']!s:<18}{plan}")
    path = write_json("query_bench", report, args.json)
    path.with_suffix(".plans.txt").write_text(plans)
    print(f"results: {path} (EXPLAIN ANALYZE in {path.with_suffix('.plans.txt').name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
