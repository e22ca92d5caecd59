"""What hostile images cost the image check: CPU seconds and peak memory of each, in a fresh process.

    python -m bench.hostile_images [--src DIR] [--timeout SECONDS]

Each image is checked as a store worker checks it (`lprserver.images.check_image`, on a thread of a
pool) in a process of its own, which reports its CPU time, its peak RSS (VmHWM), and its RSS after the
check (what the process keeps).
`--src` names another checkout's `src/` (e.g. an older version in a `git worktree`) to measure that
code instead. Figures and the machine are in BENCHMARKS.md ("Hostile images").
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import machine, write_json
from tests.imagegen import flat_png, huge_header_jpeg, make_jpeg, many_scans_jpeg

IMAGES = {
    "camera JPEG 640x480 (for scale)": lambda: make_jpeg(),
    "progressive 6000x6000, 3000 scans": lambda: many_scans_jpeg(6000, 6000, 3000),
    "progressive 2000x2000, 3000 scans": lambda: many_scans_jpeg(2000, 2000, 3000),
    "PNG 6320x6320 RGBA": lambda: flat_png(6320, 6320),
    "JPEG header 6000x6000 on 64x64 data": lambda: huge_header_jpeg(6000, 6000),
    # The costliest that stay within the limits, for the bound they leave:
    "progressive 4000x3000, 32 scans": lambda: many_scans_jpeg(4000, 3000, 32),
    "PNG 4000x3000 RGBA": lambda: flat_png(4000, 3000),
}

CHILD = r"""
import json, resource, sys, time
from concurrent.futures import ThreadPoolExecutor
from lprserver.images import ImageRejected, check_image

def rss(name):
    for line in open("/proc/self/status"):
        if line.startswith(name):
            return int(line.split()[1]) // 1024

data = open(sys.argv[1], "rb").read()
before = rss("VmRSS")
started = resource.getrusage(resource.RUSAGE_SELF)
try:  # on a thread of a pool, as a store worker checks its images
    image = ThreadPoolExecutor(1).submit(check_image, data, 40_000_000).result()
    answer = f"accepted {image.width}x{image.height}"
except ImageRejected as exc:
    answer = f"invalid_image: {exc}"
used = resource.getrusage(resource.RUSAGE_SELF)
cpu = used.ru_utime + used.ru_stime - started.ru_utime - started.ru_stime
print(json.dumps({"answer": answer, "cpu_s": round(cpu, 3), "rss_before_mb": before,
                  "peak_mb": rss("VmHWM"), "rss_after_mb": rss("VmRSS")}))
"""


def measure(path: Path, src: str | None, timeout: float) -> dict:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True,
                              text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"answer": f"still decoding after {timeout:g} s (killed)", "cpu_s": None}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", help="another checkout's src/ folder to measure instead of this one")
    parser.add_argument("--timeout", type=float, default=120, help="seconds before a check is killed")
    parser.add_argument("--json", help="write the results here (default bench/results/...)")
    args = parser.parse_args()
    results = {"machine": machine(), "src": args.src or "this checkout", "images": []}
    with tempfile.TemporaryDirectory() as folder:
        for name, make in IMAGES.items():
            path = Path(folder) / "image"
            data = make()
            path.write_bytes(data)
            row = {"image": name, "bytes": len(data), **measure(path, args.src, args.timeout)}
            results["images"].append(row)
            cpu = "-" if row["cpu_s"] is None else f"{row['cpu_s']:.2f} s"
            peak = f"{row['peak_mb']} MB" if "peak_mb" in row else "-"
            after = f"{row['rss_after_mb']} MB" if "rss_after_mb" in row else "-"
            print(f"{name:40} {len(data):>9,} B  cpu {cpu:>8}  peak {peak:>7}  after {after:>7}  "
                  f"{row['answer'][:70]}", flush=True)
    print(f"results: {write_json('hostile_images', results, args.json)}")


if __name__ == "__main__":
    main()
