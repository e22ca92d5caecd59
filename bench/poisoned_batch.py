"""Honest cameras beside a poisoning one: how many honest reads are stored (README "Sending reads":
"one camera's bad read never costs another camera's").

    python -m bench.poisoned_batch [--db postgresql|sqlite] [--seconds 20] [--cameras 24] [--root DIR]

`--cameras` honest Socket.IO cameras send reads as fast as they are answered while one more
connection sends reads with values no database column can keep (year 1, NUL characters, NaN and
lone surrogates in the metadata), four at a time. The daemon stores them in shared batches (group
commit). Printed: the honest reads answered `success` and stored, out of those sent, and the poisoned
reads' answers. `--root` runs the daemon of another checkout (e.g. an older version in a
`git worktree`). Figures and the machine are in BENCHMARKS.md ("Poisoned batches").
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import socketio
from sqlalchemy import create_engine, text

from bench.common import BenchDatabase, machine, write_json
from config import database_url
from lprserver.database import upgrade_database
from tests import processes

POISON = [
    {"timestamp": "0001-01-01T00:00:00"},
    {"location": "ประตู\x00หน้า"},
    {"event_id_suffix": "\x00"},
    {"lux": float("nan")},
    {"note": "\ud800"},
]
READ = {"plate_number": "กข1234", "confidence": 85.5, "location": "ประตูหน้า"}


def honest(url: str, number: int, stop: threading.Event, tally: Counter) -> None:
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=10)
    n = 0
    try:
        while not stop.is_set():
            n += 1
            try:
                answer = client.call("lpr_data", {**READ, "camera_id": f"HONEST{number:02d}",
                                                  "event_id": f"h{number}-{n}"}, timeout=90)
                tally[answer["status"] if answer["status"] == "success" else answer["code"]] += 1
            except socketio.exceptions.TimeoutError:
                tally["no answer"] += 1
    finally:
        client.disconnect()


def poisoner(url: str, stop: threading.Event, tally: Counter) -> None:
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=10)

    def send(lane: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            bad = dict(POISON[n % len(POISON)])
            suffix = bad.pop("event_id_suffix", "")
            try:
                answer = client.call("lpr_data", {**READ, "camera_id": "POISON",
                                                  "event_id": f"p{lane}-{n}{suffix}", **bad}, timeout=90)
                tally[answer["status"] if answer["status"] == "success" else answer["code"]] += 1
            except socketio.exceptions.TimeoutError:
                tally["no answer"] += 1

    lanes = [threading.Thread(target=send, args=(lane,)) for lane in range(4)]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join()
    client.disconnect()


def stored_honest(url: str) -> int:
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM lpr_records WHERE camera_id LIKE 'HONEST%'")).scalar()
    engine.dispose()
    return count


def run(kind: str, args, work: Path) -> dict:
    database = BenchDatabase() if kind == "postgresql" else None
    url = database.url if database else f"sqlite:///{work / 'lpr.db'}"
    if database is None:
        upgrade_database(database_url(url))
    root = Path(args.root).resolve() if args.root else processes.ROOT
    env = {"FLASK_CONFIG": "testing", "SECRET_KEY": os.urandom(24).hex(), "DATABASE_URL": url,
           "IMAGE_STORAGE_PATH": str(work / "images"), "INGEST_AUTH": "open", "LOG_LEVEL": "WARNING",
           "INGEST_NEW_CAMERAS_PER_MINUTE": "1000",
           "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
    daemon = processes.Daemon(env, work / f"daemon-{kind}.log",
                              command=[sys.executable, str(root / "websocket_server.py")]).start()
    stop, good, bad = threading.Event(), Counter(), Counter()
    threads = [threading.Thread(target=honest, args=(daemon.url, n, stop, good)) for n in range(args.cameras)]
    threads.append(threading.Thread(target=poisoner, args=(daemon.url, stop, bad)))
    try:
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        stored = stored_honest(url)
    finally:
        daemon.stop()
        if database:
            database.close()
    sent = sum(good.values())
    result = {"database": kind, "honest_sent": sent, "honest_success": good["success"],
              "honest_stored": stored, "honest_answers": dict(good), "poisoned_answers": dict(bad)}
    print(f"{kind:10} honest: {good['success']}/{sent} answered success "
          f"({100 * good['success'] / max(sent, 1):.1f} %), {stored} stored; other honest answers "
          f"{dict((k, v) for k, v in good.items() if k != 'success')}; poisoned reads: {dict(bad)}",
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--cameras", type=int, default=24)
    parser.add_argument("--root", help="another checkout whose daemon to run")
    parser.add_argument("--json", help="write the results here (default bench/results/...)")
    args = parser.parse_args()
    kinds = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    results = {"machine": machine(), "root": args.root or "this checkout", "runs": []}
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="lpr-poison-") as work:
            results["runs"].append(run(kind, args, Path(work)))
    print(f"results: {write_json('poisoned_batch', results, args.json)}")


if __name__ == "__main__":
    main()
