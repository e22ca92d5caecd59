"""Time a migration (0004 Thai plates, 0005 vehicles, 0012 partitions) on a table of records stored before it.

    python -m bench.migrate_bench                          # 0004 at 5,000,000 rows
    python -m bench.migrate_bench --migration 0005         # 0005: new columns, the plate index rebuilt
    python -m bench.migrate_bench --migration 0012         # 0012: lpr_records partitioned by month
    python -m bench.migrate_bench --rows 50000             # a smoke run

The cluster is a throwaway one.

The rows are written as the server stored them before 0004: a third of the Thai plates with the
province in the plate text (and so in `plate_normalized`), the rest with it in the `province` field
(Thai, English or a code), some Latin plates without one. Indexes are those of revision 0003.
"""

import argparse
import io
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta

from config import database_url
from lprserver.database import upgrade_database
from lprserver.plates import PROVINCES, normalize_plate
from tests.pgcluster import ThrowawayPostgres

from .common import machine, random_plate, remove_tree, work_dir, write_json
from .query_bench import CAMERAS, CHUNK, DAYS, camera_ids

# The revision the rows are written at.
BEFORE = {"0004": "0003_web_sessions", "0005": "0004_thai_plates", "0012": "0011_retention_kinds"}
COLUMNS = ("camera_id, event_id, plate_number, plate_normalized, province, confidence, captured_at, "
           "received_at")


def _chunks(count: int, seed: int):
    rng = random.Random(seed)
    pool = [random_plate(rng) for _ in range(max(1000, count // 15))]
    cameras = camera_ids()
    at = datetime.now(UTC) - timedelta(days=DAYS)
    step = timedelta(days=DAYS) / count
    for start in range(0, count, CHUNK):
        out = io.StringIO()
        for n in range(start, min(count, start + CHUNK)):
            at += step
            plate = pool[int(len(pool) * rng.random() ** 3)]
            province = r"\N"
            if not plate[0].isascii() or plate[0].isdigit():
                named = rng.choice(PROVINCES[:20]) if rng.random() < 0.8 else rng.choice(PROVINCES)
                kind = rng.random()
                if kind < 0.33:
                    plate = f"{plate} {named.name_th}"
                else:
                    province = named.name_th if kind < 0.8 else named.name_en if kind < 0.95 else named.code
            camera = cameras[int(CAMERAS * rng.random() ** 1.5)]
            out.write(f"{camera}\t{camera}-{n}\t{plate}\t{normalize_plate(plate)[:32]}\t{province}\t"
                      f"{rng.uniform(60, 99.9):.1f}\t{at.isoformat()}\t{at.isoformat()}\n")
        out.seek(0)
        yield out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--migration", choices=sorted(BEFORE), default="0004")
    parser.add_argument("--json", help="write the results here (default bench/results/migrate_bench-*.json)")
    args = parser.parse_args(argv)
    result = {"machine": machine(), "rows": args.rows, "migration": args.migration}
    before = BEFORE[args.migration]
    cluster = ThrowawayPostgres(tempfile.mkdtemp(prefix="lpr-bench-pg-", dir=work_dir()))
    url = cluster.start()
    try:
        upgrade_database(database_url(url), before)
        import psycopg2
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO cameras (id, online, created_at) VALUES (%s, false, now())",
                            [(c,) for c in camera_ids()])
            started = time.monotonic()
            for chunk in _chunks(args.rows, args.seed):
                cur.copy_expert(f"COPY lpr_records ({COLUMNS}) FROM STDIN", chunk)
            conn.commit()
            print(f"filled {args.rows:,} rows at revision {before} in {time.monotonic() - started:.1f} s",
                  flush=True)
        conn = psycopg2.connect(url)
        conn.autocommit = True
        conn.cursor().execute("VACUUM ANALYZE lpr_records")
        size_before = _size(conn)
        started = time.monotonic()
        upgrade_database(database_url(url))
        took = time.monotonic() - started
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(province_code), "
                        "count(*) FILTER (WHERE plate_format = 'th_car'), "
                        "count(*) FILTER (WHERE plate_normalized ~ '[0-9][ก-ฮ]{2,}$') FROM lpr_records")
            total, with_code, th_car, province_left = cur.fetchone()
        size_after = _size(conn)
        conn.close()
    finally:
        cluster.stop("immediate")
        remove_tree(cluster.base_dir)
    result.update({"migration_seconds": round(took, 1), "rows_per_second": round(args.rows / took),
                   "with_province_code": with_code, "th_car": th_car,
                   "province_left_in_plate": province_left, "table_mb_before": size_before,
                   "table_mb_after": size_after})
    print(f"migration {args.migration} on {total:,} rows: {took:.1f} s ({args.rows / took:,.0f} rows/s); "
          f"{with_code:,} with a province code, {th_car:,} th_car, {province_left:,} with a province left in "
          f"plate_normalized; table + indexes {size_before:,} MB before, {size_after:,} MB after")
    print(f"results: {write_json('migrate_bench', result, args.json)}")


def _size(conn) -> int:
    with conn.cursor() as cur:
        # Partitioned (0012): the parent holds nothing, its month partitions everything.
        cur.execute("SELECT sum(pg_total_relation_size(c.oid))::bigint / 1048576 FROM pg_class c "
                    "WHERE c.oid = 'lpr_records'::regclass OR c.oid IN "
                    "(SELECT inhrelid FROM pg_inherits WHERE inhparent = 'lpr_records'::regclass)")
        return cur.fetchone()[0]


if __name__ == "__main__":
    main()
