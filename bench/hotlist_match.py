"""Time matching one read against the blacklist index (SPEC §9 "Speed": ≤ 50 µs median at 100,000 entries).

    python -m bench.hotlist_match                        # 100,000 entries, a quarter not exact; 200,000 reads
    python -m bench.hotlist_match --entries 10000 --reads 20000

Builds the index (src/lprserver/hotlist.py) of a mixed list (bench/blacklists.py: 10 % look-alike,
10 % one-edit, 5 % pattern entries, the rest exact; some name a province), then times `Hotlist.match`
read by read on a mix of random plates (most miss; 10,000 one-edit entries and 5,000 patterns catch
about one in eight) and exact, look-alike, one-edit and pattern hits, and the same
reads against an exact-only list of the same size. Then it loads the list into a database (a
temporary SQLite file by default) and times what a store worker pays there: the index
rebuilt from the table, the per-batch look-up of new entries, the once-a-second fingerprint, and that
check once it sees an edit or a deletion (`--db postgresql`: in a throwaway PostgreSQL).
One process; timings are printed, never asserted.
"""

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, insert
from sqlalchemy.orm import Session

from config import database_url
from lprserver.database import upgrade_database
from lprserver.hotlist import HotEntry, Hotlist, HotlistCache, table_fingerprint
from lprserver.models import BlacklistEntry
from lprserver.plates import parse_plate

from .blacklists import make_entries
from .common import BenchDatabase, machine, percentile, random_plate, work_dir, write_json

READ_MIX = (("random", 0.60), ("exact", 0.15), ("lookalike", 0.10), ("fuzzy", 0.10), ("pattern", 0.05))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "none"], default="sqlite",
                        help="where to time the rebuild and the checks: a temporary SQLite file, a throwaway "
                             "PostgreSQL (fsync off), or nowhere")
    parser.add_argument("--database-url", help="an empty database to time them in instead")
    parser.add_argument("--json", help="write the results here (default bench/results/hotlist_match-*.json)")
    return parser.parse_args(argv)


def hot_entries(entries) -> list[HotEntry]:
    made = []
    for i, entry in enumerate(entries, start=1):
        parsed = parse_plate(entry.text)
        made.append(HotEntry(i, entry.text, parsed.normalized, entry.match,
                             entry.province_code or parsed.province_code, None, "bench", "stolen"))
    return made


def make_reads(entries, count: int, rng: random.Random) -> list[tuple[str, str, str, str | None]]:
    """(kind, plate text, normalised plate, province code): parsed beforehand, as the pipeline parses
    a read before it matches it."""
    by_mode: dict[str, list] = {}
    for entry in entries:
        by_mode.setdefault(entry.match, []).append(entry)
    reads = []
    for kind, share in READ_MIX:
        for _ in range(round(share * count)):
            text = random_plate(rng) if kind == "random" else rng.choice(by_mode[kind]).hit
            parsed = parse_plate(text)
            reads.append((kind, text, parsed.normalized, parsed.province_code))
    rng.shuffle(reads)
    return reads


def time_matching(index: Hotlist, reads, now: datetime) -> dict:
    """Each read timed alone (perf_counter_ns around one match)."""
    spent: dict[str, list[float]] = {}
    found: dict[str, int] = {}
    clock = time.perf_counter_ns
    match = index.match
    for kind, text, plate, province in reads:
        start = clock()
        hits = match(plate, text, province, now)
        spent.setdefault(kind, []).append((clock() - start) / 1000)
        found[kind] = found.get(kind, 0) + bool(hits)
    every = [us for values in spent.values() for us in values]
    summary = {"all": _figures(every)}
    for kind, values in spent.items():
        summary[kind] = {**_figures(values), "hit_share": found[kind] / len(values)}
    return summary


def _figures(values: list[float]) -> dict:
    return {"reads": len(values), "median_us": statistics.median(values), "p99_us": percentile(values, 99),
            "mean_us": statistics.fmean(values)}


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def build(entries: list[HotEntry]) -> tuple[Hotlist, float, int]:
    before = rss_kb()
    start = time.perf_counter()
    index = Hotlist(entries)
    return index, time.perf_counter() - start, rss_kb() - before


def time_database(url: str, entries: list[HotEntry]) -> dict:
    """What a store worker pays with this list in a database: a rebuild, a batch's check, a fingerprint."""
    engine = create_engine(database_url(url))
    now = datetime.now(UTC)
    rows = [{"license_plate_text": e.license_plate_text, "plate_normalized": e.plate_normalized,
             "match": e.match, "province_code": e.province_code, "reason": e.reason, "category": e.category,
             "created_at": now, "updated_at": now} for e in entries]
    with Session(engine) as session:
        start = time.perf_counter()
        for first in range(0, len(rows), 10_000):
            session.execute(insert(BlacklistEntry), rows[first:first + 10_000])
        session.commit()
        loaded = time.perf_counter() - start
        cache = HotlistCache(clock=lambda: 0.0)  # never due: the full check is timed on its own below
        rebuilds = []
        for _ in range(3):
            start = time.perf_counter()
            cache.rebuild(session, now)
            rebuilds.append(time.perf_counter() - start)
            session.rollback()
        checks = []
        for _ in range(200):
            start = time.perf_counter()
            cache.current(session, now)
            checks.append((time.perf_counter() - start) * 1000)
            session.rollback()
        prints = []
        for _ in range(20):
            start = time.perf_counter()
            table_fingerprint(session)
            prints.append((time.perf_counter() - start) * 1000)
            session.rollback()
        edits, deletions = [], []  # the once-a-second check once it sees one edit, or one deletion
        for n in range(10):
            entry = session.get(BlacklistEntry, 1000 + n)
            entry.reason = f"edited {n}"
            session.commit()
            start = time.perf_counter()
            cache.sync(session, now)
            edits.append((time.perf_counter() - start) * 1000)
            session.delete(session.get(BlacklistEntry, 2000 + n))
            session.commit()
            start = time.perf_counter()
            cache.sync(session, now)
            deletions.append((time.perf_counter() - start) * 1000)
        assert cache.builds == 3, "an edit or a deletion rebuilt the index"
    engine.dispose()
    return {"dialect": engine.dialect.name, "insert_s": loaded, "rebuild_s": min(rebuilds),
            "rebuilds_s": rebuilds, "batch_check_ms_median": statistics.median(checks),
            "fingerprint_ms_median": statistics.median(prints),
            "edit_sync_ms_median": statistics.median(edits),
            "deletion_sync_ms_median": statistics.median(deletions)}


def main(argv=None) -> dict:
    args = parse_args(argv)
    rng = random.Random(args.seed + 1)  # not the entries' own sequence of plates
    now = datetime.now(UTC)
    mixed = make_entries(args.entries, "mixed", args.seed)
    exact = make_entries(args.entries, "exact", args.seed)
    mixed_hot, exact_hot = hot_entries(mixed), hot_entries(exact)
    reads = make_reads(mixed, args.reads, rng)
    exact_reads = [("random", text, plate, province) for _, text, plate, province in reads]

    index, build_s, build_kb = build(mixed_hot)
    exact_index, exact_build_s, exact_kb = build(exact_hot)
    time_matching(index, reads[: len(reads) // 10], now)  # warm the caches and the lazily compiled patterns
    result = {
        "bench": "hotlist_match", "machine": machine(), "args": vars(args),
        "entries": {"total": len(mixed_hot), **{m: sum(e.match == m for e in mixed_hot)
                                                for m in ("exact", "lookalike", "fuzzy", "pattern")},
                    "with_province": sum(e.province_code is not None for e in mixed_hot)},
        "build": {"mixed_s": build_s, "mixed_rss_mb": build_kb / 1024,
                  "exact_only_s": exact_build_s, "exact_only_rss_mb": exact_kb / 1024},
        "mixed": time_matching(index, reads, now),
        "exact_only": time_matching(exact_index, exact_reads, now)["all"],
    }
    if args.database_url:
        upgrade_database(database_url(args.database_url))
        result["database"] = time_database(args.database_url, mixed_hot)
    elif args.db == "postgresql":
        database = BenchDatabase(fsync=False)
        try:
            result["database"] = time_database(database.url, mixed_hot)
        finally:
            database.close()
    elif args.db == "sqlite":
        with tempfile.TemporaryDirectory(prefix="lpr-hotlist-", dir=work_dir()) as folder:
            url = f"sqlite:///{folder}/bench.db"
            upgrade_database(database_url(url))
            result["database"] = time_database(url, mixed_hot)
    print_result(result)
    result["results_file"] = str(write_json("hotlist_match", result, args.json))
    print(f"results: {result['results_file']}")
    return result


def print_result(r: dict) -> None:
    m = r["machine"]
    e = r["entries"]
    load = " ".join(m["loadavg_at_start"])
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, load {load}")
    print(f"entries: {e['total']:,} ({e['exact']:,} exact, {e['lookalike']:,} look-alike, {e['fuzzy']:,} "
          f"one-edit, {e['pattern']:,} pattern; {e['with_province']:,} with a province)")
    b = r["build"]
    print(f"index build: {b['mixed_s']:.2f} s, +{b['mixed_rss_mb']:.0f} MB RSS "
          f"(exact-only list of the same size: {b['exact_only_s']:.2f} s, +{b['exact_only_rss_mb']:.0f} MB)")
    print(f"{'reads':<12}{'count':>9}{'hit %':>8}{'median µs':>11}{'p99 µs':>9}{'mean µs':>9}")
    for kind, f in r["mixed"].items():
        hit = f"{100 * f['hit_share']:.1f}" if "hit_share" in f else ""
        print(f"{kind:<12}{f['reads']:>9,}{hit:>8}{f['median_us']:>11.2f}{f['p99_us']:>9.2f}{f['mean_us']:>9.2f}")
    x = r["exact_only"]
    print(f"{'exact-only':<12}{x['reads']:>9,}{'':>8}{x['median_us']:>11.2f}{x['p99_us']:>9.2f}{x['mean_us']:>9.2f}"
          "  (the same reads against an exact-only list of the same size)")
    d = r.get("database")
    if d:
        print(f"{d['dialect']}: {e['total']:,} rows inserted in {d['insert_s']:.1f} s; index rebuilt from "
              f"the table in {d['rebuild_s']:.2f} s; a batch's check for new entries "
              f"{d['batch_check_ms_median']:.3f} ms; the once-a-second fingerprint "
              f"{d['fingerprint_ms_median']:.2f} ms; taking in one edit {d['edit_sync_ms_median']:.1f} ms, "
              f"one deletion {d['deletion_sync_ms_median']:.1f} ms (medians)")


if __name__ == "__main__":
    main()
