"""Load the real ingest daemon with simulated cameras; compare the whole pipeline with the transport alone.

    python -m bench.ingest_load                      # 200 cameras, closed loop, 60 s, 40 KB JPEGs
    python -m bench.ingest_load --rate 500           # the same cameras paced to 500 reads/s in all
    python -m bench.ingest_load --blacklist 100000 --blacklist-mix compare
                                                     # an exact-only list, then a mixed one of that size
"""

import argparse
import secrets
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .cameras import LoadSpec, run_cameras
from .common import (
    BenchDatabase,
    CpuMeter,
    Daemon,
    fill_blacklist,
    machine,
    memory_kb,
    postgres_pids,
    scratch_folder,
    verify_acked,
    with_children,
    write_json,
)
from .dashboard import LiveSite


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    pacing = parser.add_mutually_exclusive_group()
    pacing.add_argument("--closed-loop", action="store_true",
                        help="each camera sends as soon as answered (the default)")
    pacing.add_argument("--rate", type=float, help="pace the cameras to this many reads/s in total")
    parser.add_argument("--cameras", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60, help="seconds of measured sending")
    parser.add_argument("--image-kb", type=int, default=40, help="JPEG size (640x480, noisy)")
    parser.add_argument("--processes", type=int, default=2, help="camera processes")
    parser.add_argument("--async-mode", choices=["gevent", "eventlet"], default="gevent")
    parser.add_argument("--blacklist", type=int, default=10_000, help="blacklist entries")
    parser.add_argument("--blacklist-mix", choices=["exact", "mixed", "compare"], default="exact",
                        help="exact-only entries; mixed: a quarter look-alike, one-edit and pattern entries "
                             "(bench/blacklists.py); compare: the pipeline with each, one after the other")
    parser.add_argument("--call-timeout", type=float, default=30, help="seconds before a read is resent")
    parser.add_argument("--no-transport", action="store_true", help="skip the transport-only comparison")
    parser.add_argument("--no-web", action="store_true",
                        help="no web app and dashboard beside the pipeline daemon (live relay off)")
    parser.add_argument("--transport-only", action="store_true", help="run only the transport-only daemon")
    parser.add_argument("--database-url", help="use this (empty or bench) database, not a throwaway cluster")
    parser.add_argument("--pg-fsync", choices=["on", "off"], default="on")
    parser.add_argument("--py-spy", metavar="FILE",
                        help="sample the pipeline daemon and its store workers with py-spy during the run "
                             "(raw stacks to FILE)")
    parser.add_argument("--py-spy-idle", action="store_true",
                        help="with --py-spy: sample waiting threads too (the wall time, not the CPU)")
    parser.add_argument("--json", help="write the results here (default bench/results/ingest_load-*.json)")
    return parser.parse_args(argv)


def run_phase(db: BenchDatabase, args, blacklist: list[str], work: Path, transport_only: bool,
              name: str | None = None, prefix: str = "BENCH") -> dict:
    """Start a daemon, run the cameras against it, measure it, stop it, check what was stored."""
    name = name or ("transport-only" if transport_only else "pipeline")
    images = work / f"images-{name}"
    images.mkdir()
    # The pipeline runs as in production: its live relay feeds the web app, where one dashboard listens.
    site = None if transport_only or args.no_web else LiveSite(work, name)
    # The daemon's own metrics (SPEC §7) say how its group commit went: scraped at the end of the run.
    metrics_token = secrets.token_hex(16)
    extra = {**(site.daemon_env() if site else {}), "METRICS_TOKEN": metrics_token}
    daemon = Daemon(db.url, images, work / f"daemon-{name}.log", args.async_mode, extra, transport_only)
    try:
        if site:
            site.start(daemon.env)
        daemon.start()
    except BaseException:
        if site:
            site.stop()
        raise
    meter, postgres = CpuMeter([daemon.pid]), CpuMeter(lambda: postgres_pids(db.cluster))
    web = CpuMeter(lambda: with_children(site.web.pid)) if site else None

    def during(start: float, end: float) -> None:
        time.sleep(max(0.0, start - time.time()))
        meter.start()
        postgres.start()
        if web:
            web.start()
        profiling = args.py_spy and not transport_only
        profiler = (profile(daemon.pid, args.py_spy, end - time.time(), args.py_spy_idle)
                    if profiling else None)
        time.sleep(max(0.0, end - time.time()))
        result["daemon_cpu_pct"] = meter.stop()
        result["postgres_cpu_pct"] = postgres.stop() if db.cluster else None
        result["webapp_cpu_pct"] = web.stop() if web else None
        if profiler:
            profiler.wait(60)

    result: dict = {"run": name}
    spec = LoadSpec(url=daemon.url, cameras=args.cameras, processes=args.processes, duration=args.duration,
                    rate=args.rate, image_kb=args.image_kb, call_timeout=args.call_timeout,
                    blacklist=tuple(blacklist), prefix=prefix)
    try:
        result.update(run_cameras(spec, during))
        if not transport_only:
            result["batches"] = batch_figures(daemon.url, metrics_token)
        memory = memory_kb(daemon.pid)
        result["daemon_peak_rss_mb"] = memory["VmHWM"] / 1024
        result["daemon_rss_end_mb"] = memory["VmRSS"] / 1024
        answered = result.pop("answered")
        if site:
            result["dashboard"] = site.dashboard_report(answered)
    finally:
        daemon.stop()
        if site:
            site.stop()
    acked = result.pop("acked")
    if result["acked_in_window"]:
        # CPU is less sensitive than rates to what else runs: it says what a read costs the daemon.
        cpu_ms = result["daemon_cpu_pct"] * 10 * args.duration
        result["daemon_cpu_ms_per_read"] = cpu_ms / result["acked_in_window"]
    if not transport_only:
        result["verify"] = verify_acked(db, images, acked)
    result["timeline_per_s"] = per_second(result.pop("timeline"))
    result["daemon_log_tail"] = (work / f"daemon-{name}.log").read_text(errors="replace")[-2000:]
    return result


def profile(pid: int, path: str, seconds: float, idle: bool = False) -> subprocess.Popen:
    """Sample the daemon and its store workers with py-spy without pausing them; raw collapsed stacks,
    one line per process and thread and stack. With `idle`, waiting threads are sampled too."""
    command = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--nonblocking",
               "--subprocesses", "--threads", "--duration", str(max(1, int(seconds))), "--format", "raw",
               "--output", path] + (["--idle"] if idle else [])
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)


def batch_figures(url: str, token: str) -> dict:
    """The daemon's group commit over the run, from its /metrics: batches, reads per batch, and how long a
    batch took to store (images, rows, commit) as the share of batches within each bucket."""
    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    samples = {(s.name, s.labels.get("le")): s.value for family in text_string_to_metric_families(text)
               for s in family.samples}
    batches = samples.get(("lpr_ingest_batch_seconds_count", None), 0)
    if not batches:
        return {"batches": 0}
    within = {le: samples[("lpr_ingest_batch_seconds_bucket", le)] / batches
              for (name, le) in samples if name == "lpr_ingest_batch_seconds_bucket" and le != "+Inf"}
    return {"batches": int(batches),
            "reads_per_batch": samples[("lpr_ingest_batch_reads_sum", None)] / batches,
            "mean_ms": samples[("lpr_ingest_batch_seconds_sum", None)] / batches * 1000,
            "share_within_s": dict(sorted(within.items(), key=lambda kv: float(kv[0])))}


def per_second(timeline: list[tuple[float, str, int]]) -> list[dict]:
    seconds: dict[int, Counter] = {}
    for at, outcome, count in timeline:
        seconds.setdefault(int(at), Counter())[outcome] += count
    return [{"t": t, **counts} for t, counts in sorted(seconds.items())]


def print_table(runs: list[dict]) -> None:
    header = (f"{'run':<15}{'mode':<16}{'cams':>5}{'reads/s':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
              f"{'resends':>8}{'CPU %':>7}{'PG %':>6}{'cams %':>7}{'RSS MB':>8}"
              f"{'dash p50':>9}{'dash p99':>9}{'unseen':>7}  errors / verified")
    print(header)
    print("-" * len(header))
    for r in runs:
        lat = r["latency_ms"]
        fmt = lambda v: f"{v:8.1f}" if v is not None else f"{'-':>8}"  # noqa: E731
        verify = r.get("verify")
        check = "" if verify is None else (" verified OK" if verify["ok"] else f" VERIFY FAILED {verify}")
        # The dashboard: answer -> new_record event on the signed-in page, and acked reads it never got.
        dash = r.get("dashboard") or {"answer_to_event_ms": {"p50": None, "p99": None}, "never_reached": None}
        unseen = "-" if dash["never_reached"] is None else str(dash["never_reached"])
        print(f"{r['run']:<15}{r['mode']:<16}{r['cameras']:>5}{r['reads_per_s']:9.1f}{fmt(lat['p50'])}"
              f"{fmt(lat['p95'])}{fmt(lat['p99'])}{r['resends']:8d}{r['daemon_cpu_pct']:7.0f}"
              f"{r['postgres_cpu_pct'] or 0:6.0f}{r['cameras_cpu_pct']:7.0f}"
              f"{r['daemon_peak_rss_mb']:8.0f} {fmt(dash['answer_to_event_ms']['p50'])}"
              f" {fmt(dash['answer_to_event_ms']['p99'])}{unseen:>7}  {r['errors'] or '-'}{check}")


def dashboard_line(d: dict) -> str:
    lat = d["answer_to_event_ms"]
    shown = "-" if lat["p50"] is None else \
        f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms"
    return (f"answer -> dashboard event {shown}; of {d['acked_records']} acknowledged reads "
            f"{d['live_events']} reached the dashboard live, {d['caught_up_on_reconnect']} by its catch-up, "
            f"{d['never_reached']} never; {d['out_of_order_events']} events came out of id order "
            f"(shown all the same), {d['repeated_events']} repeated")


def main(argv=None) -> int:
    args = parse_args(argv)
    report = {"bench": "ingest_load", "machine": machine(), "args": vars(args), "runs": []}
    db = BenchDatabase(args.database_url, fsync=args.pg_fsync == "on")
    mixes = ["exact", "mixed"] if args.blacklist_mix == "compare" else [args.blacklist_mix]
    try:
        with scratch_folder("lpr-bench-") as tmp:
            for i, mix in enumerate(mixes):
                blacklist = fill_blacklist(db, args.blacklist, mix=mix)
                if not args.transport_only:
                    # The second list's cameras have ids of their own: their reads are new, not repeats.
                    run = run_phase(db, args, blacklist, Path(tmp), transport_only=False,
                                    name="pipeline" if i == 0 else f"pipeline-{mix}",
                                    prefix="BENCH" if i == 0 else mix.upper())
                    report["runs"].append({**run, "blacklist_mix": mix})
            if not args.no_transport:
                report["runs"].append(run_phase(db, args, blacklist, Path(tmp), transport_only=True))
    finally:
        db.close()
    rates = {r["run"]: r["reads_per_s"] for r in report["runs"]}
    if "pipeline" in rates and rates.get("transport-only"):
        report["pipeline_share_of_transport"] = rates["pipeline"] / rates["transport-only"]
    if rates.get("pipeline") and "pipeline-mixed" in rates:
        report["mixed_share_of_exact"] = rates["pipeline-mixed"] / rates["pipeline"]
    print_table(report["runs"])
    for r in report["runs"]:
        due = r["latency_from_due_ms"]
        if args.rate and due["p99"] is not None:
            print(f"{r['run']}: from when reads were due, p50 {due['p50']:.1f} ms, p99 {due['p99']:.1f} ms")
        batches = r.get("batches")
        if batches and batches["batches"]:
            shares = ", ".join(f"≤{float(le) * 1000:g} ms {share:.1%}"
                               for le, share in batches["share_within_s"].items() if 0.01 <= float(le) <= 0.5)
            print(f"{r['run']}: {batches['batches']} batches of {batches['reads_per_batch']:.1f} reads on "
                  f"average, {batches['mean_ms']:.1f} ms each to store; batches stored within {shares}")
        if "daemon_cpu_ms_per_read" in r:
            print(f"{r['run']}: the daemon spent {r['daemon_cpu_ms_per_read']:.2f} ms of CPU per read")
        if "dashboard" in r:
            print(f"{r['run']}: {dashboard_line(r['dashboard'])}; web app CPU {r['webapp_cpu_pct']:.0f} %")
    if "mixed_share_of_exact" in report:
        print(f"with a mixed blacklist of {args.blacklist:,} entries the pipeline carried "
              f"{100 * report['mixed_share_of_exact']:.1f} % of its reads/s with an exact-only list of that "
              "size (the mixed run came second, on a table the first had filled)")
    if "pipeline_share_of_transport" in report:
        print(f"pipeline carries {100 * report['pipeline_share_of_transport']:.0f} % of what the transport "
              f"alone carries on this machine")
    print(f"results: {write_json('ingest_load', report, args.json)}")
    failed = any(not r["verify"]["ok"] for r in report["runs"] if "verify" in r)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
