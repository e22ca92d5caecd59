"""Time the summary report (SPEC §12 "Reports") of one month at 5 M rows: fill PostgreSQL with records
(query_bench's rows over 90 days, COPY), build the analytics' counts if they are empty (`rebuild`), then
time the month's figures (`summary`), the XLSX and the PDF in English and Thai, and give the files' sizes
(p50/max over --repeat runs).

    python -m bench.report_bench                          # 5,000,000 rows in a throwaway cluster
    python -m bench.report_bench --pg-dir /var/tmp/lpr-5m # reuse (or keep) a filled cluster
    python -m bench.report_bench --rows 50000 --repeat 2  # a smoke run
"""

import argparse
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from sqlalchemy import func, select

from config import TestingConfig, database_url
from lprserver import create_app
from lprserver.analytics_counts import rebuild
from lprserver.extensions import db as app_db
from lprserver.models import AnalyticsHour, utcnow
from lprserver.report_pdf import report_pdf
from lprserver.report_xlsx import report_xlsx
from lprserver.reports import parse_period, summary

from .common import BenchDatabase, machine, percentile, write_json
from .query_bench import TIMEZONE, fill


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each step (after one warm-up)")
    parser.add_argument("--days", type=int, default=30, help="the report's length, ending yesterday")
    parser.add_argument("--database-url", help="use this database instead of a throwaway cluster")
    parser.add_argument("--pg-dir", help="keep the cluster in this folder and reuse its rows next time")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", help="write the results here (default bench/results/report_bench-*)")
    return parser.parse_args(argv)


def _timed(step, repeat: int) -> tuple[dict, object]:
    result = step()  # warm-up: caches, the font's first parse
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = step()
        timings.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(timings, 50), "max_ms": max(timings)}, result


def run(url: str, args: argparse.Namespace) -> dict:
    app = create_app(TestingConfig({"DATABASE_URL": database_url(url), "SECRET_KEY": "x" * 40,
                                    "TIMEZONE": TIMEZONE}))
    results: dict = {}
    with app.test_request_context():
        session = app_db.session
        if not session.scalar(select(func.count()).select_from(AnalyticsHour)):
            started = time.monotonic()
            rebuild(session, TIMEZONE)
            session.commit()
            results["rebuild_seconds"] = time.monotonic() - started
        today = utcnow().astimezone(ZoneInfo(TIMEZONE)).date()
        first, last = today - timedelta(days=args.days), today - timedelta(days=1)
        period = parse_period(first.isoformat(), last.isoformat(), TIMEZONE, utcnow())
        timing, report = _timed(lambda: summary(session, period, None, utcnow()), args.repeat)
        results["period"] = f"{first} – {last}"
        results["reads_in_period"] = report["totals"]["reads"]
        results["summary"] = timing
        one_camera = report["per_camera"][0]["camera_id"] if report["per_camera"] else None
        results["summary_one_camera"], _ = _timed(lambda: summary(session, period, one_camera, utcnow()),
                                                  args.repeat)
        session.rollback()
        for language, era in (("en", "ce"), ("th", "be")):
            with force_locale(language):
                for kind, render in (("xlsx", report_xlsx), ("pdf", report_pdf)):
                    timing, data = _timed(lambda render=render, era=era: render(report, era), args.repeat)
                    results[f"{kind}_{language}"] = {**timing, "bytes": len(data)}
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    report = {"bench": "report_bench", "machine": machine(), "args": vars(args)}
    db = BenchDatabase(args.database_url, folder=args.pg_dir)
    try:
        report["fill"] = fill(db, args.rows, args.seed)
        print(f"table holds {report['fill']['rows']} rows (added {report['fill']['filled']} "
              f"in {report['fill']['seconds']:.0f} s)")
        report["results"] = run(db.url, args)
    finally:
        db.close()
    results = report["results"]
    print(f"period {results['period']}: {results['reads_in_period']:,} reads")
    for name, value in results.items():
        if isinstance(value, dict):
            size = f"  {value['bytes'] / 1024:.0f} KiB" if "bytes" in value else ""
            print(f"{name:<20}{value['p50_ms']:9.1f} ms p50{value['max_ms']:9.1f} ms max{size}")
    print(f"results: {write_json('report_bench', report, args.json)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
