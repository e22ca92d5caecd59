"""Fill PostgreSQL with realistic records (rows only) and time the records page's and statistics' queries.

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

from lprserver.plates import normalize_plate

from .common import THAI_PROVINCES, BenchDatabase, machine, percentile, random_plate, write_json

CAMERAS = 200
DAYS = 90
CHUNK = 100_000
COLUMNS = ("camera_id, event_id, plate_number, plate_normalized, province, confidence, captured_at, "
           "received_at, location, vehicle_type, vehicle_color, direction, image_path, thumbnail_path, "
           "image_bytes, blacklisted")
PAGE = "ORDER BY id DESC LIMIT 50"  # the records page today: newest first (api/records.py list_records)
DAY = "received_at >= now() - interval '24 hours'"

# name -> (SQL, what it stands for); %(camera)s is drawn anew for every repetition.
QUERIES = {
    "newest_page": (f"SELECT * FROM lpr_records {PAGE}", "records page, no filter"),
    "count_all": ("SELECT count(*) FROM lpr_records", "the page's total, no filter"),
    "plate_prefix_page": (f"SELECT * FROM lpr_records WHERE plate_normalized LIKE 'กข%%' {PAGE}",
                          "plate prefix search, first page"),
    "plate_prefix_count": ("SELECT count(*) FROM lpr_records WHERE plate_normalized LIKE 'กข%%'",
                           "plate prefix search, total"),
    "contains_page": (f"SELECT * FROM lpr_records WHERE plate_normalized LIKE '%%ข12%%' {PAGE}",
                      "Thai 'contains' search, first page"),
    "contains_count": ("SELECT count(*) FROM lpr_records WHERE plate_normalized LIKE '%%ข12%%'",
                       "Thai 'contains' search, total"),
    "camera_24h_page": (f"SELECT * FROM lpr_records WHERE camera_id = %(camera)s AND {DAY} {PAGE}",
                        "one camera, last 24 h, first page"),
    "camera_24h_count": (f"SELECT count(*) FROM lpr_records WHERE camera_id = %(camera)s AND {DAY}",
                         "one camera, last 24 h, total"),
    "stats_per_hour_24h": (f"SELECT date_trunc('hour', received_at) AS hour, count(*) FROM lpr_records "
                           f"WHERE {DAY} GROUP BY 1 ORDER BY 1", "statistics: reads per hour, 24 h"),
    "stats_per_camera": ("SELECT camera_id, count(*), max(received_at) FROM lpr_records GROUP BY camera_id",
                         "statistics: reads per camera, all time"),
    "stats_totals": (f"SELECT count(*), count(*) FILTER (WHERE blacklisted), count(*) FILTER (WHERE {DAY}) "
                     f"FROM lpr_records", "statistics: totals (all, blacklisted, 24 h)"),
}
STATISTICS = ("stats_per_hour_24h", "stats_per_camera", "stats_totals")


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
            return {"rows": have, "filled": 0, "seconds": 0}
        started = time.monotonic()
        cur.executemany("INSERT INTO cameras (id, name, location, online, created_at) "
                        "VALUES (%s, %s, %s, false, now()) ON CONFLICT DO NOTHING",
                        [(c, f"Camera {c}", f"Gate {c}") for c in camera_ids()])
        rebuild = _drop_indexes(cur)
        conn.commit()
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
            "seconds": time.monotonic() - started}


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


def _chunks(count: int, seed: int):
    """Yield COPY text for `count` reads spread over the last DAYS days, oldest first."""
    rng = random.Random(seed)
    pool = [random_plate(rng) for _ in range(max(1000, count // 15))]  # regulars come back often
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
            plate = pool[int(len(pool) * rng.random() ** 3)]
            camera = cameras[int(CAMERAS * rng.random() ** 1.5)]
            captured = at - timedelta(milliseconds=rng.randint(50, 2000))
            province = rng.choice(THAI_PROVINCES) if not plate[0].isascii() else r"\N"
            day = f"{at:%Y/%m/%d}/{camera}/{n:032x}"
            blacklisted = "t" if rng.random() < 0.001 else "f"
            out.write(f"{camera}\t{camera}-{n}\t{plate}\t{normalize_plate(plate)}\t{province}\t"
                      f"{rng.uniform(60, 99.9):.1f}\t{captured.isoformat()}\t{at.isoformat()}\t"
                      f"Gate {camera}\t{rng.choice(kinds)}\t{rng.choice(colours)}\t"
                      f"{'in' if n % 2 else 'out'}\t"
                      f"{day}.jpg\t{day}_thumb.jpg\t{rng.randint(30_000, 60_000)}\t{blacklisted}\n")
        out.seek(0)
        yield out


def time_queries(db: BenchDatabase, repeat: int, seed: int) -> tuple[dict, str]:
    """Time every query; return the figures and the EXPLAIN ANALYZE text of each."""
    rng = random.Random(seed)
    figures, plans = {}, []
    with db.connect() as conn, conn.cursor() as cur:
        for name, (sql, meaning) in QUERIES.items():
            timings = []
            for n in range(repeat + 1):
                params = {"camera": rng.choice(camera_ids())}
                started = time.perf_counter()
                cur.execute(sql, params)
                rows = cur.fetchall()
                if n:  # the first run only warms the cache
                    timings.append((time.perf_counter() - started) * 1000)
            conn.rollback()
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
            plan = cur.fetchone()[0][0]
            conn.rollback()
            figures[name] = {"meaning": meaning, "rows_returned": len(rows), **_spread(timings),
                             "plan": _plan_summary(plan)}
            plans.append(f"== {name}: {meaning}\n{sql}\n{json.dumps(plan, indent=1)}\n")
    totals = [sum(x) for x in zip(*(figures[s]["_timings"] for s in STATISTICS), strict=True)]
    figures["statistics_all"] = {"meaning": "the three statistics queries in a row", **_spread(totals)}
    for entry in figures.values():
        entry.pop("_timings")
    return figures, "\n".join(plans)


def _spread(timings: list[float]) -> dict:
    return {"p50_ms": percentile(timings, 50), "p95_ms": percentile(timings, 95),
            "max_ms": max(timings, default=None), "_timings": timings}


def _plan_summary(plan: dict) -> dict:
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
    print(f"{'query':<22}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'rows':>6}  plan")
    for name, q in report["queries"].items():
        plan = " > ".join(q["plan"]["nodes"][:4]) if "plan" in q else ""
        print(f"{name:<22}{q['p50_ms']:9.1f}{q['p95_ms']:9.1f}{q['max_ms']:9.1f}"
              f"{q.get('rows_returned', ''):>6}  {plan}")
    path = write_json("query_bench", report, args.json)
    path.with_suffix(".plans.txt").write_text(plans)
    print(f"results: {path} (EXPLAIN ANALYZE in {path.with_suffix('.plans.txt').name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
