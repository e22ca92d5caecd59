"""Time the nightly cleanup (SPEC §15 "Retention by kind") at 5 M rows on PostgreSQL while cameras send reads.

Fills a throwaway cluster with reads spread over 100 days (COPY, indexes rebuilt after), 1 % of them
blacklist hits (flag and detection), and writes real small image files (and thumbnails) for a share of
them (--files, spread over the same days, in the store's YYYY/MM/DD/<camera> folders). Then the real
ingest daemon takes a steady load of simulated cameras; after --before seconds the cleanup runs with
RETENTION_DAYS=60, HIT_RETENTION_DAYS=90, IMAGE_RETENTION_DAYS=30, AUDIT_RETENTION_DAYS=365 (so each kind
removes a share) and the sweeps. Prints the time taken, what each kind removed, the preview's numbers
beside them, the orphans counted afterwards (files without a row, rows whose file is missing: 0 and 0
expected), and the ingest rate before and during the cleanup.

    python -m bench.cleanup_bench                   # 5,000,000 rows, 50,000 reads with files
    python -m bench.cleanup_bench --rows 1000000    # a shorter run
"""

import argparse
import io
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from config import database_url
from lprserver.images import FilesystemImageStore
from lprserver.retention import RetentionSettings, preview, run

from .cameras import LoadSpec, run_cameras
from .common import BenchDatabase, Daemon, machine, scratch_folder, write_json
from .query_bench import _drop_indexes

DAYS = 100
CAMERAS = 50
SETTINGS = dict(read_days=60, hit_days=90, image_days=30, audit_days=365)
HIT_EVERY = 100  # 1 % hits
AUDIT_ROWS = 200_000  # over 2 years: about half past AUDIT_RETENTION_DAYS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=50_000,
                        help="reads with a real image file and thumbnail")
    parser.add_argument("--rate", type=float, default=50.0, help="reads/s the cameras send in total")
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--before", type=float, default=20.0, help="seconds of load before the cleanup")
    parser.add_argument("--load", type=float, default=600.0, help="seconds of load in all (longer than the "
                        "cleanup: the rest is cut short)")
    parser.add_argument("--batch", type=int, default=500, help="RETENTION_BATCH_SIZE")
    parser.add_argument("--json", help="write the results here (default bench/results/cleanup_bench-*)")
    return parser.parse_args(argv)


def fill(db: BenchDatabase, rows: int, files: int, images: Path) -> dict:
    """COPY `rows` reads over DAYS days (oldest first); about `files` of them, chosen at random, have a file
    pair (not every (rows // files)-th: at the defaults that is every 100th, exactly the hits)."""
    started = time.monotonic()
    end = datetime.now(UTC) - timedelta(minutes=5)
    step = timedelta(days=DAYS) / rows
    share = min(1.0, files / max(1, rows))
    rng, pick = random.Random(3), random.Random(5)
    jpeg = bytes(range(256)) * 4  # 1 KiB: only files, the bench never decodes them
    made_files = 0
    with db.connect() as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO cameras (id, name, online, created_at) VALUES (%s, %s, false, now()) "
                        "ON CONFLICT DO NOTHING", [(f"CAM{c:03d}", f"Camera {c}") for c in range(CAMERAS)])
        cur.execute("INSERT INTO blacklist_plates (license_plate_text, plate_normalized, match, reason, "
                    "category, added_by, created_at, updated_at, active) VALUES ('กข9999', 'กข9999', "
                    "'exact', 'bench', 'stolen', 'bench', now(), now(), true) RETURNING id")
        entry = cur.fetchone()[0]
        rebuild = _drop_indexes(cur)
        conn.commit()
        at = end - timedelta(days=DAYS)
        for start in range(0, rows, 100_000):
            out = io.StringIO()
            for n in range(start, min(rows, start + 100_000)):
                at += step
                camera = f"CAM{n % CAMERAS:03d}"
                hit = n % HIT_EVERY == 0
                letters = f"{rng.choice('กขคงจฉ')}{rng.choice('กขคงจฉ')}"
                plate = "กข9999" if hit else f"{letters}{rng.randint(1, 9999)}"
                image = thumb = size = r"\N"
                if pick.random() < share and made_files < files:
                    rel = f"{at:%Y/%m/%d}/{camera}/{n:032x}"
                    folder = images / f"{at:%Y/%m/%d}" / camera
                    folder.mkdir(parents=True, exist_ok=True)
                    (images / f"{rel}.jpg").write_bytes(jpeg)
                    (images / f"{rel}_thumb.jpg").write_bytes(jpeg[:300])
                    image, thumb, size = f"{rel}.jpg", f"{rel}_thumb.jpg", str(len(jpeg))
                    made_files += 1
                out.write(f"{camera}\t{camera}-{n}\t{plate}\t{plate}\tother\t90.0\t{at.isoformat()}\t"
                          f"{at.isoformat()}\t{image}\t{thumb}\t{size}\t{'t' if hit else 'f'}\n")
            out.seek(0)
            cur.copy_expert("COPY lpr_records (camera_id, event_id, plate_number, plate_normalized, "
                            "plate_format, confidence, captured_at, received_at, image_path, thumbnail_path, "
                            "image_bytes, blacklisted) FROM STDIN", out)
            conn.commit()
        copied = time.monotonic() - started
        for statement in rebuild:
            cur.execute(statement)
        cur.execute("INSERT INTO blacklist_detections (record_id, entry_id, detected_at, match_type) "
                    "SELECT id, %s, received_at, 'exact' FROM lpr_records WHERE blacklisted", (entry,))
        cur.execute("INSERT INTO audit_log (at, username, action, target) SELECT now() - make_interval("
                    "secs => g * (730.0 * 86400 / %s)), 'bench', 'records.search', 'bench' "
                    "FROM generate_series(1, %s) g", (AUDIT_ROWS, AUDIT_ROWS))
        conn.commit()
    conn = db.connect()
    try:
        conn.autocommit = True
        conn.cursor().execute("VACUUM ANALYZE")
    finally:
        conn.close()
    # Files older than the orphan grace period, as a night's files are.
    old = time.time() - 7200
    for folder, _dirs, names in os.walk(images):
        for name in names:
            os.utime(os.path.join(folder, name), (old, old))
    return {"rows": rows, "files": made_files * 2, "reads_with_files": made_files,
            "copy_seconds": round(copied, 1), "seconds": round(time.monotonic() - started, 1)}


def orphans(db: BenchDatabase, images: Path) -> dict:
    """Files no row points at, and rows whose file is missing."""
    on_disk = {os.path.relpath(os.path.join(f, n), images) for f, _d, names in os.walk(images) for n in names}
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT image_path, thumbnail_path FROM lpr_records WHERE image_path IS NOT NULL "
                    "OR thumbnail_path IS NOT NULL")
        referenced = {p for row in cur.fetchall() for p in row if p}
    return {"files_on_disk": len(on_disk), "files_without_row": len(on_disk - referenced),
            "rows_with_missing_file": len(referenced - on_disk)}


def main(argv=None) -> int:
    args = parse_args(argv)
    report = {"bench": "cleanup_bench", "machine": machine(), "args": vars(args), "settings": SETTINGS}
    db = BenchDatabase()
    try:
        with scratch_folder("lpr-cleanup-bench-") as work:
            images = work / "images"
            images.mkdir()
            report["fill"] = fill(db, args.rows, args.files, images)
            print(f"filled: {report['fill']}", flush=True)
            settings = RetentionSettings(**SETTINGS, batch_size=args.batch)
            engine = create_engine(database_url(db.url))
            with Session(engine) as session:
                started = time.perf_counter()
                coming = preview(session, settings)
                report["preview_ms"] = round((time.perf_counter() - started) * 1000, 1)
                report["preview"] = coming.as_dict()
            print(f"preview ({report['preview_ms']} ms): {report['preview']}", flush=True)

            # The daemon stores into the same folder: its fresh files are younger than the sweep's grace.
            daemon = Daemon(db.url, images, work / "daemon.log").start()
            done: dict = {}

            def during(start: float, end: float) -> None:
                time.sleep(max(0.0, start + args.before - time.time()))
                done["start"] = time.time() - start
                with Session(engine) as session:
                    t0 = time.monotonic()
                    done["report"] = run(session, FilesystemImageStore(images), settings).as_dict()
                    done["seconds"] = round(time.monotonic() - t0, 1)
                done["end"] = time.time() - start
                print(f"cleanup done in {done['seconds']} s", flush=True)

            spec = LoadSpec(url=daemon.url, cameras=args.cameras, processes=1, duration=args.load,
                            rate=args.rate, image_kb=20)
            # The load runs for args.load seconds; the cleanup runs inside it (in this process).
            try:
                result = run_cameras(spec, during)
            finally:
                daemon.stop()
            engine.dispose()
            report["cleanup"] = done
            timeline = result["timeline"]

            def rate(a: float, b: float) -> float:
                got = sum(n for t, o, n in timeline if o == "success" and a <= t < b)
                return round(got / max(0.001, b - a), 1)

            end = min(done.get("end", args.load), args.load)
            report["ingest"] = {"before_reads_per_s": rate(2, done["start"]),
                                "during_reads_per_s": rate(done["start"], end),
                                "offered_reads_per_s": args.rate,
                                "errors": result.get("errors"),
                                "cleanup_covered_by_load_s": round(end - done["start"], 1)}
            report["after"] = orphans(db, images)
    finally:
        db.close()
    path = write_json("cleanup_bench", report, args.json)
    r = report["cleanup"]["report"]
    print(f"\ncleanup at {args.rows:,} rows ({report['fill']['reads_with_files']:,} reads with real files, "
          f"{report['fill']['files']:,} files; the other rows have no image): "
          f"{report['cleanup']['seconds']} s")
    print(f"  reads deleted {r['records']:,} (of which hits {r['hit_records']:,}; preview said reads "
          f"{report['preview']['reads']:,} + hits {report['preview']['hits']:,})")
    print(f"  images cleared {r['images_cleared']:,} (preview {report['preview']['images']:,}), "
          f"audit entries deleted {r['audit_deleted']:,} (preview {report['preview']['audit']:,}), "
          f"visits {r['visits_deleted']:,}")
    print(f"  files deleted {r['files']:,}, bytes {r['bytes_freed']:,}, "
          f"orphan files swept {r['orphan_files']}, "
          f"rows with missing files {r['missing_files']}, batches {r['batches']:,}")
    print(f"  preview took {report['preview_ms']} ms")
    print(f"  after: {report['after']}")
    print(f"  ingest: {report['ingest']}")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
