"""Time the analytics (SPEC §12 "Dashboard") at 5 M rows: fill PostgreSQL with records (query_bench's
rows, COPY), build the pre-aggregated counts with `rebuild` (as `flask lpr rebuild-analytics` does),
then time each figure's query and the whole GET /api/analytics answer (p50/p95 over --repeat runs).

    python -m bench.analytics_bench                          # 5,000,000 rows in a throwaway cluster
    python -m bench.analytics_bench --pg-dir /var/tmp/lpr-5m # reuse (or keep) a filled cluster
    python -m bench.analytics_bench --rows 50000 --repeat 5  # a smoke run
"""

import argparse
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from config import TestingConfig, database_url
from lprserver import analytics as figures
from lprserver.analytics_counts import AGGREGATE_TABLES, rebuild

from .common import BenchDatabase, machine, percentile, write_json
from .query_bench import TIMEZONE, fill

TZ = ZoneInfo(TIMEZONE)


def _period(now: datetime, days: int = figures.DEFAULT_DAYS):
    return figures.periods(now, days, TZ)


# name -> (what runs it, what it stands for): the services GET /api/analytics calls, one by one.
QUERIES = {
    "totals_7d": (lambda s, now: figures.totals(s, _period(now)[0]),
                  "this period's reads, unique plates, hits (7 days)"),
    "totals_previous_7d": (lambda s, now: figures.totals(s, _period(now)[1]), "the previous 7 days' totals"),
    "unique_plates_30d": (lambda s, now: figures.totals(s, _period(now, 30)[0]),
                          "totals of 30 days (unique plates over 30 days)"),
    "heatmap_4w": (lambda s, now: figures.heatmap(s, now, TZ), "reads by weekday x hour, 4 weeks"),
    "unique_per_day_30d": (lambda s, now: figures.unique_per_day(s, now, TZ),
                           "unique plates per day, 30 days"),
    "top_provinces_7d": (lambda s, now: figures.top_provinces(s, _period(now)[0]), "top provinces, 7 days"),
    "per_camera_7d": (lambda s, now: figures.per_camera(s, _period(now)[0]),
                      "per camera: reads/h, confidence, corrections, last read, longest silence (7 days)"),
    "per_camera_30d": (lambda s, now: figures.per_camera(s, _period(now, 30)[0]), "per camera, 30 days"),
    "analytics_7d": (lambda s, now: figures.analytics(s, now, TIMEZONE, 7),
                     "every figure (the service, 7 days)"),
    "analytics_30d": (lambda s, now: figures.analytics(s, now, TIMEZONE, 30), "every figure, 30 days"),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=30, help="timed runs of each query (after one warm-up)")
    parser.add_argument("--database-url", help="use this database instead of a throwaway cluster")
    parser.add_argument("--pg-dir", help="keep the cluster in this folder and reuse its rows next time")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", help="write the results here (default bench/results/analytics_bench-*)")
    return parser.parse_args(argv)


def build(db: BenchDatabase) -> dict:
    engine = create_engine(database_url(db.url))
    try:
        with Session(engine) as session:
            started = time.monotonic()
            made = rebuild(session, TIMEZONE)
            session.commit()
            seconds = time.monotonic() - started
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(
                "VACUUM ANALYZE " + ", ".join(m.__tablename__ for m in AGGREGATE_TABLES)))
    finally:
        engine.dispose()
    return {"seconds": seconds, "rows": made}


def _spread(timings: list[float]) -> dict:
    return {"p50_ms": percentile(timings, 50), "p95_ms": percentile(timings, 95), "max_ms": max(timings)}


def time_queries(db: BenchDatabase, repeat: int) -> dict:
    engine = create_engine(database_url(db.url))
    out = {}
    try:
        with Session(engine) as session:
            for name, (run, meaning) in QUERIES.items():
                timings = []
                for n in range(repeat + 1):
                    now = datetime.now(UTC)
                    started = time.perf_counter()
                    run(session, now)
                    if n:
                        timings.append((time.perf_counter() - started) * 1000)
                    session.rollback()
                out[name] = {"meaning": meaning, **_spread(timings)}
    finally:
        engine.dispose()
    return out


def time_api(db: BenchDatabase, repeat: int) -> dict:
    """GET /api/analytics through the app (Flask's test client, a read token): the whole answer."""
    from lprserver import create_app
    from lprserver.extensions import db as app_db
    from lprserver.models import ApiToken
    from lprserver.tokens import generate_token, hash_token
    from lprserver.users import save_user

    app = create_app(TestingConfig({"DATABASE_URL": db.url, "SECRET_KEY": "b" * 40, "TIMEZONE": TIMEZONE}))
    token = generate_token("lpr")
    with app.app_context():
        user, _ = save_user(app_db.session, f"bench{int(time.time())}", "viewer", "a long bench password 1")
        app_db.session.flush()
        app_db.session.add(ApiToken(user_id=user.id, name="bench", token_hash=hash_token(token),
                                    scope="read"))
        app_db.session.commit()
    client = app.test_client()
    out = {}
    for days in (7, 30):
        timings = []
        for n in range(repeat + 1):
            started = time.perf_counter()
            answer = client.get(f"/api/analytics?days={days}", headers={"Authorization": f"Bearer {token}"})
            if n:
                timings.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
        out[f"api_analytics_{days}d"] = {"meaning": f"GET /api/analytics?days={days}, the whole answer "
                                         "(auth, every query, JSON)", "bytes": len(answer.data),
                                         **_spread(timings)}
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    report = {"bench": "analytics_bench", "machine": machine(), "args": vars(args)}
    db = BenchDatabase(args.database_url, folder=args.pg_dir)
    try:
        report["fill"] = fill(db, args.rows, args.seed)
        print(f"table holds {report['fill']['rows']} rows (added {report['fill']['filled']} "
              f"in {report['fill']['seconds']:.0f} s)")
        report["build"] = build(db)
        print(f"counts rebuilt in {report['build']['seconds']:.1f} s: {report['build']['rows']}")
        report["queries"] = {**time_queries(db, args.repeat), **time_api(db, args.repeat)}
    finally:
        db.close()
    print(f"{'query':<22}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  meaning")
    for name, q in report["queries"].items():
        print(f"{name:<22}{q['p50_ms']:9.1f}{q['p95_ms']:9.1f}{q['max_ms']:9.1f}  {q['meaning']}")
    path = write_json("analytics_bench", report, args.json)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
