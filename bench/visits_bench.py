"""Fill PostgreSQL with visits and time the /visits page's and GET /api/visits' queries.

    python -m bench.visits_bench                            # 5,000,000 visits in a throwaway cluster
    python -m bench.visits_bench --pg-dir /var/tmp/lpr-v5m  # keep the filled cluster for the next run
    python -m bench.visits_bench --visits 20000             # a smoke run

The visits span DAYS days, a few hundred vehicles are on site at the end (the partial index
`uq_visits_open_plate` holds only those), and the day timed is the last full one. Each query runs
REPEAT times after a warm-up; the JSON has the median, p95 and PostgreSQL's plan (the index it used).
"""

import argparse
import io
import random
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from config import database_url
from lprserver.visit_list import VisitFilter, closed_between, count_visits, day_summary, find_visits, on_site

from .common import BenchDatabase, machine, percentile, random_plate, write_json

DAYS = 365
OPEN = 300  # vehicles on site at the end
CAMERAS = ("GATE-IN-1", "GATE-IN-2", "GATE-OUT-1", "GATE-OUT-2")
REPEAT = 20
CHUNK = 100_000
END = datetime(2026, 6, 1, tzinfo=UTC)  # 07:00 in Bangkok
DAY_START = END - timedelta(days=1, hours=7)  # the last full day in Bangkok, as the page asks for it
GROUPS = (None, None, "residents", "staff")


def fill(url: str, visits: int, seed: int) -> None:
    """COPY `visits` rows: closed ones over DAYS days, the last OPEN still open (one per plate)."""
    import psycopg2

    rng = random.Random(seed)
    span = DAYS * 86400
    closed = max(1, visits - OPEN)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO known_groups (name, max_stay_minutes, created_at, updated_at) VALUES "
                    "('residents', NULL, now(), now()), ('staff', 600, now(), now()) ON CONFLICT DO NOTHING")
        written = 0
        while written < visits:
            buf = io.StringIO()
            for i in range(written, min(visits, written + CHUNK)):
                group = GROUPS[i % len(GROUPS)]
                if i >= visits - OPEN:  # on site now: entered within the last day, not left
                    entered = END - timedelta(seconds=rng.randrange(86400))
                    row = (f"OPEN{i}", group, entered, CAMERAS[i % 2], None, None)
                else:
                    exited = END - timedelta(seconds=span * (closed - i) / closed)
                    entered = exited - timedelta(minutes=rng.randrange(5, 600))
                    if rng.random() < 0.02:  # a few exits with no entry
                        entered = None
                    plate = random_plate(rng).replace(" ", "")
                    entry_camera = CAMERAS[i % 2] if entered else None
                    row = (plate, group, entered, entry_camera, exited, CAMERAS[2 + i % 2])
                buf.write("\t".join(_cell(value) for value in row) + "\n")
            buf.seek(0)
            cur.copy_expert("COPY visits (plate_normalized, group_name, entered_at, entry_camera_id, "
                            "exited_at, exit_camera_id) FROM STDIN", buf)
            written = min(visits, written + CHUNK)
            conn.commit()
        cur.execute("ANALYZE visits")


def _cell(value) -> str:
    if value is None:
        return "\\N"
    return value.isoformat() if isinstance(value, datetime) else str(value)


def timed(session: Session, run) -> dict:
    run()  # warm-up
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(percentile(times, 50), 2), "p95_ms": round(percentile(times, 95), 2),
            "rows": len(result) if isinstance(result, list) else result}


def plan(session: Session, sql: str, **params) -> list[str]:
    return [row[0] for row in session.execute(text(f"EXPLAIN {sql}"), params)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--url", help="a PostgreSQL database to use instead of a throwaway cluster")
    parser.add_argument("--pg-dir", help="keep the throwaway cluster in this folder (filled once)")
    parser.add_argument("--json", help="write the results here (default bench/results/visits_bench-*.json)")
    args = parser.parse_args(argv)
    db = BenchDatabase(args.url, folder=args.pg_dir)
    try:
        engine = create_engine(database_url(db.url))
        with Session(engine) as session:
            have = session.scalar(text("SELECT count(*) FROM visits"))
        if have < args.visits:
            start = time.perf_counter()
            fill(db.url, args.visits - have, args.seed)
            print(f"filled {args.visits - have:,} visits in {time.perf_counter() - start:.1f} s")
        day_end = DAY_START + timedelta(days=1)
        with Session(engine) as session:
            total = session.scalar(text("SELECT count(*) FROM visits"))
            results = {
                "on_site": timed(session, lambda: on_site(session)),
                "day_closed_first_page": timed(
                    session, lambda: closed_between(session, DAY_START, day_end, 201)),
                "day_summary": timed(session, lambda: day_summary(session, DAY_START, day_end).count),
                "api_open": timed(session, lambda: find_visits(session, VisitFilter(open=True), 1, 50)),
                "api_newest": timed(session, lambda: find_visits(session, VisitFilter(), 1, 50)),
                "api_day_range": timed(session, lambda: find_visits(
                    session, VisitFilter(since=DAY_START, until=day_end), 1, 50)),
                "api_day_range_count": timed(session, lambda: count_visits(
                    session, VisitFilter(since=DAY_START, until=day_end))[0]),
            }
            plans = {
                "on_site": plan(session, "SELECT * FROM visits WHERE exited_at IS NULL "
                                         "ORDER BY entered_at, id LIMIT 1000"),
                "day_closed": plan(session, "SELECT * FROM visits WHERE exited_at >= :a AND exited_at < :b "
                                            "ORDER BY exited_at, id LIMIT 201", a=DAY_START, b=day_end),
            }
        engine.dispose()
        for name, figures in results.items():
            print(f"{name:24} {figures['median_ms']:>9.2f} ms median {figures['p95_ms']:>9.2f} ms p95  "
                  f"({figures['rows']} rows)")
        for name, lines in plans.items():
            print(f"-- plan {name}:\n   " + "\n   ".join(lines))
        path = write_json("visits_bench", {"visits": total, "repeat": REPEAT, "results": results,
                                           "plans": plans, "machine": machine()}, args.json)
        print(f"results: {path}")
    finally:
        db.close()


if __name__ == "__main__":
    main()
