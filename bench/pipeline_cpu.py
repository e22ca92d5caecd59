"""CPU per read of each pipeline stage, in one process, without the transport.

    python -m bench.pipeline_cpu                 # 3,000 reads in batches of 64 on a throwaway PostgreSQL
    python -m bench.pipeline_cpu --batch 1       # one read per transaction, for comparison

The ingest daemon is one process and its event loop one thread, so what a read
costs that thread in CPU bounds the daemon's rate. This runs the pipeline's own
functions (prepare, image check, group commit) on real JPEGs, a real PostgreSQL
and real files, and prints the CPU seconds (process time, all threads) per read
of each stage. Timings are not asserted anywhere.
"""

import argparse
import base64
import random
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from config import config_from_env
from lprserver import create_app
from lprserver.extensions import db
from lprserver.images import FilesystemImageStore, SentImage
from lprserver.ingest.pipeline import IngestSettings, ingest_reads, prepare_read

from .common import (
    BenchDatabase,
    fill_blacklist,
    jpeg_of_size,
    machine,
    random_plate,
    scratch_folder,
    write_json,
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--image-kb", type=int, default=40)
    parser.add_argument("--cameras", type=int, default=200)
    parser.add_argument("--blacklist", type=int, default=10_000)
    parser.add_argument("--pg-fsync", choices=("on", "off"), default="on")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    database = BenchDatabase(fsync=args.pg_fsync == "on")
    try:
        fill_blacklist(database, args.blacklist)
        with scratch_folder("lpr-bench-images-") as images:
            result = _measure(args, database.url, Path(images))
    finally:
        database.close()
    result = {"bench": "pipeline_cpu", "machine": machine(), "args": vars(args), **result}
    path = write_json("pipeline_cpu", result, args.json)
    print(f"{'stage':<42}{'CPU ms/read':>12}")
    for stage, ms in result["cpu_ms_per_read"].items():
        print(f"{stage:<42}{ms:>12.3f}")
    print(f"wall: {result['reads_per_s_wall']:.0f} reads/s on one thread; results: {path}")
    return result


def _measure(args, url: str, images: Path) -> dict:
    app = create_app(config_from_env(environ={
        "FLASK_CONFIG": "production", "SECRET_KEY": secrets.token_hex(32), "DATABASE_URL": url,
        "IMAGE_STORAGE_PATH": str(images), "INGEST_AUTH": "open", "LOG_LEVEL": "WARNING"}))
    settings = IngestSettings.from_config(app.config)
    threads = ThreadPoolExecutor(16)  # as the daemon spreads a batch's file work over threads
    store = FilesystemImageStore(images, lambda function, items: list(threads.map(function, items)))
    uri = "data:image/jpeg;base64," + base64.b64encode(jpeg_of_size(max(args.image_kb, 1) * 1000)).decode()
    image = {"image_data": uri} if args.image_kb else {}  # --image-kb 0: reads without images
    rng = random.Random(5)
    payloads = [{"camera_id": f"CAM{rng.randrange(args.cameras):04d}", "plate_number": random_plate(rng),
                 "confidence": 0.9, "event_id": f"e{i}", **image} for i in range(args.reads)]
    spent = {"prepare (validate fields)": 0.0, "store (image check, files, database)": 0.0}
    checks = 0.0  # the image check alone, timed apart: the store does it again where it writes
    wall = time.perf_counter()
    with app.app_context():
        for start in range(0, len(payloads), args.batch):
            t0 = time.process_time()
            reads = [prepare_read(p) for p in payloads[start:start + args.batch]]
            t1 = time.process_time()
            outcomes = ingest_reads(db.session, store, settings, reads)
            t2 = time.process_time()
            assert all(not hasattr(o, "code") for o in outcomes), outcomes
            spent["prepare (validate fields)"] += t1 - t0
            spent["store (image check, files, database)"] += t2 - t1
            t3 = time.process_time()
            for read in reads:
                if read.data.image_data:
                    SentImage(read.data.image_data, settings.image_max_bytes,
                              settings.image_max_pixels).check()
            checks += time.process_time() - t3
    wall = time.perf_counter() - wall - checks
    per_read = {k: v * 1000 / args.reads for k, v in spent.items()}
    per_read["total"] = sum(per_read.values())
    per_read["of which the image check (timed apart)"] = checks * 1000 / args.reads
    return {"cpu_ms_per_read": per_read, "reads_per_s_wall": args.reads / wall}


if __name__ == "__main__":
    main()
