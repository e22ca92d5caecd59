"""Scripted faults against the real daemon while cameras send: nothing acknowledged may be lost.

    python -m bench.faults                                # all: kill, pg, slow, flood, webapp, diskfull
    python -m bench.faults --scenarios kill --kills 1 --cameras 4 --duration 6   # the CI-sized set
"""

import argparse
import errno
import json
import os
import random
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests
import websocket

from .cameras import LoadSpec, run_cameras
from .common import (
    BenchDatabase,
    Daemon,
    fill_blacklist,
    machine,
    memory_kb,
    scratch_folder,
    verify_acked,
    write_json,
)
from .dashboard import LiveSite

SCENARIOS = ("kill", "pg", "slow", "flood", "webapp", "diskfull")
METRICS_TOKEN = "bench-metrics-token"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated, of: " + ",".join(SCENARIOS))
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--duration", type=float, default=30, help="seconds of sending per scenario")
    parser.add_argument("--rate", type=float, help="pace the cameras (reads/s in all); default closed loop")
    parser.add_argument("--image-kb", type=int, default=40)
    parser.add_argument("--kills", type=int, default=10, help="kill -9 the daemon this many times")
    parser.add_argument("--rude-rate", type=float, default=20,
                        help="reads/s of the camera that never reads its answers (0: flood)")
    parser.add_argument("--flood-seconds", type=float, default=5, help="how long the flooding camera sends")
    parser.add_argument("--pg-down", type=float, default=5, help="seconds PostgreSQL stays down")
    parser.add_argument("--web-down", type=float, default=5, help="seconds the web app stays stopped")
    # 256 MB stopped being room enough once a 30 s run stored 5,300 reads (46 KB each with the thumbnail):
    # the disk filled up again at the end, and 20 reads stayed unacknowledged.
    parser.add_argument("--disk-mb", type=int, default=768,
                        help="size of the image filesystem of `diskfull` (a tmpfs; room for the whole run)")
    parser.add_argument("--full-seconds", type=float, default=5, help="seconds the image disk stays full")
    parser.add_argument("--drain", type=float, default=60, help="seconds to resend the unacknowledged after")
    parser.add_argument("--async-mode", choices=["gevent", "eventlet"], default="gevent")
    parser.add_argument("--blacklist", type=int, default=10_000)
    parser.add_argument("--pg-fsync", choices=["on", "off"], default="on")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="use this (empty or bench) database, not a throwaway cluster")
    parser.add_argument("--json", help="write the results here (default bench/results/faults-*.json)")
    return parser.parse_args(argv)


class Scenario:
    """One daemon, one image store, the cameras of the run; with `live`, the web app and a dashboard too."""

    def __init__(self, name: str, db: BenchDatabase, args, blacklist: list[str], work: Path,
                 live: bool = False, extra_env: dict | None = None):
        self.name, self.db, self.args = name, db, args
        self.images = work / f"images-{name}"
        self.images.mkdir(exist_ok=True)
        self.site = LiveSite(work, name) if live else None
        env = {"METRICS_TOKEN": METRICS_TOKEN, **(self.site.daemon_env() if self.site else {}),
               **(extra_env or {})}
        self.daemon = Daemon(db.url, self.images, work / f"daemon-{name}.log", args.async_mode, env)
        self.answered: dict[int, float] = {}
        try:
            if self.site:
                self.site.start(self.daemon.env)
            self.daemon.start()
        except BaseException:
            self.stop()
            raise
        self.blacklist = blacklist

    def spec(self, **overrides) -> LoadSpec:
        values = dict(url=self.daemon.url, cameras=self.args.cameras, processes=self.args.processes,
                      duration=self.args.duration, rate=self.args.rate, image_kb=self.args.image_kb,
                      drain=self.args.drain, call_timeout=5, prefix=self.name.upper(),
                      blacklist=tuple(self.blacklist), seed=self.args.seed)
        return LoadSpec(**{**values, **overrides})

    def finish(self, run: dict) -> dict:
        run["daemon_peak_rss_mb"] = memory_kb(self.daemon.pid)["VmHWM"] / 1024
        self.answered = run.pop("answered")
        if self.site:
            run["dashboard"] = self.site.dashboard_report(self.answered)
        self.stop()
        run["verify"] = verify_acked(self.db, self.images, run.pop("acked"))
        run.pop("timeline")
        return run

    def stop(self) -> None:
        self.daemon.stop()
        if self.site:
            self.site.stop()


def kill_scenario(scenario: Scenario, args) -> dict:
    """kill -9 the daemon at random moments, restarting it at once on the same port."""
    rng = random.Random(args.seed)
    kills: list[dict] = []

    def during(start: float, end: float) -> None:
        moments = sorted(rng.uniform(start + 0.5, end - 0.5) for _ in range(args.kills))
        for moment in moments:
            time.sleep(max(0.0, moment - time.time()))
            killed_at = time.time()
            scenario.daemon.kill()
            scenario.daemon.start()
            kills.append({"at_s": killed_at - start, "restart_s": time.time() - killed_at})

    run = run_cameras(scenario.spec(), during)
    return {"scenario": "kill", "kills": kills, **scenario.finish(run)}


def pg_scenario(scenario: Scenario, args) -> dict:
    """Stop PostgreSQL (immediate) a third into the run, start it again after --pg-down seconds."""
    if scenario.db.cluster is None:
        return {"scenario": "pg", "skipped": "needs the throwaway cluster (no --database-url)"}
    marks: dict = {}

    def during(start: float, end: float) -> None:
        time.sleep(max(0.0, start + args.duration / 3 - time.time()))
        marks["down_at"] = time.time() - start
        scenario.db.cluster.stop("immediate")
        time.sleep(args.pg_down)
        scenario.db.cluster.resume()
        marks["up_at"] = time.time() - start

    run = run_cameras(scenario.spec(), during)
    timeline = run["timeline"]
    while_down = {}
    for at, outcome, count in timeline:
        if marks["down_at"] <= at < marks["up_at"]:
            while_down[outcome] = while_down.get(outcome, 0) + count
    first_success = min((at for at, outcome, _ in timeline if outcome == "success" and at >= marks["up_at"]),
                        default=None)
    recovery = None if first_success is None else max(0.0, first_success - marks["up_at"])
    return {"scenario": "pg", **marks, "answers_while_down": while_down, "recovery_s": recovery,
            **scenario.finish(run)}


def slow_scenario(scenario: Scenario, args) -> dict:
    """The same cameras without and then with a camera that sends and never reads its answers."""
    half = args.duration / 2
    baseline = run_cameras(scenario.spec(duration=half, drain=0, prefix="BASE"))
    rude = RudeCamera(scenario.daemon.port, args.rude_rate)
    thread = threading.Thread(target=rude.run, args=(time.time() + half + 60,), daemon=True)
    thread.start()
    time.sleep(1)
    with_rude = run_cameras(scenario.spec(duration=half, drain=0, prefix="WITH"))
    rude.stop = True
    thread.join(10)
    summary = {name: {k: run[k] for k in ("reads_per_s", "latency_ms", "errors")}
               for name, run in (("without", baseline), ("with_rude_camera", with_rude))}
    baseline["acked"] += with_rude.pop("acked")
    return {"scenario": "slow", "others": summary, "rude_camera": rude.report(), **scenario.finish(baseline)}


def flood_scenario(scenario: Scenario, args) -> dict:
    """One camera emits small reads as fast as the socket takes them, never reading: can others get in?"""
    port = scenario.daemon.port
    rss_before = memory_kb(scenario.daemon.pid)["VmRSS"] / 1024
    flood = RudeCamera(port, 0)
    thread = threading.Thread(target=flood.run, args=(time.time() + args.flood_seconds,), daemon=True)
    thread.start()
    time.sleep(min(1.0, args.flood_seconds / 2))
    during = _time_to_register(scenario.daemon.url, "FLOODA0001", timeout=args.flood_seconds + 60)
    thread.join(args.flood_seconds + 10)
    after = _time_to_register(scenario.daemon.url, "FLOODB0001", timeout=120)
    memory = memory_kb(scenario.daemon.pid)
    scenario.daemon.stop()
    return {"scenario": "flood", "flood_seconds": args.flood_seconds, "flooder": flood.report(),
            "register_during_flood_s": during, "register_after_flood_s": after,
            "daemon_rss_mb": {"before": rss_before, "end": memory["VmRSS"] / 1024,
                              "peak": memory["VmHWM"] / 1024}}


def webapp_scenario(scenario: Scenario, args) -> dict:
    """Stop the web app (SIGTERM) a third into the run, start it again after --web-down seconds.

    gunicorn waits up to its graceful timeout (5 s) for the dashboard's WebSocket before it exits, so the
    web app is gone from the SIGTERM until `up_at` (`stopped_in_s` + --web-down + its start)."""
    marks: dict = {}
    web = scenario.site.web

    def during(start: float, end: float) -> None:
        marks["start"] = start
        time.sleep(max(0.0, start + args.duration / 3 - time.time()))
        marks["down_at"] = time.time() - start
        web.stop()
        marks["stopped_in_s"] = time.time() - start - marks["down_at"]
        time.sleep(args.web_down)
        web.start()
        marks["up_at"] = time.time() - start
        scenario.site.dashboard.wait_reconnected(start + marks["up_at"])

    run = run_cameras(scenario.spec(), during)
    start = marks.pop("start")
    down, up = marks["down_at"], marks["up_at"]
    windows = {"before": (0, down), "during": (down, up), "after": (up, args.duration)}
    rates = rates_in(run["timeline"], {k: (low, high) for k, (low, high) in windows.items() if high > low})
    result = {"scenario": "webapp", **marks, "reads_per_s_by_phase": rates, **scenario.finish(run)}
    dashboard = scenario.site.dashboard
    reconnects = [t - start for t in dashboard.connects if t - start > down]
    result["dashboard_reconnected_after_s"] = reconnects[0] - up if reconnects else None
    missed = {i for i, t in scenario.answered.items() if down <= t - start < up}
    how = [dashboard.seen[i][1] if i in dashboard.seen else "never" for i in missed]
    result["answered_while_down"] = {"acked_records": len(missed), "live": how.count("live"),
                                     "caught_up": how.count("catchup"), "never_reached": how.count("never")}
    return result


def rates_in(timeline: list[tuple[float, str, int]], windows: dict[str, tuple[float, float]]) -> dict:
    """Success answers per second in each named (from, to) window of the run."""
    return {name: sum(n for at, outcome, n in timeline if outcome == "success" and low <= at < high)
            / max(high - low, 1e-9) for name, (low, high) in windows.items()}


def diskfull_scenario(db: BenchDatabase, args, blacklist: list[str], work: Path) -> dict:
    """Images on a small filesystem of their own, filled up a third into the run, then freed again."""
    mount = work / "images-diskfull"
    mount.mkdir()
    problem = _mount_tmpfs(mount, args.disk_mb)
    if problem:
        return {"scenario": "diskfull", "skipped": problem}
    try:
        scenario = Scenario("diskfull", db, args, blacklist, work, live=True,
                            extra_env={"HEALTH_MIN_FREE_MB": "5"})
        try:
            return _fill_and_free(scenario, args)
        finally:
            scenario.stop()
    finally:
        subprocess.run(["umount", str(mount)], check=False, capture_output=True)
        if os.path.ismount(mount):
            subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def _mount_tmpfs(folder: Path, size_mb: int) -> str | None:
    """Mount a tmpfs of size_mb at folder; return why not, if it could not be."""
    if os.geteuid() != 0:
        return "mounting a small filesystem for the images needs root"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode:
        return f"mount -t tmpfs was refused: {done.stderr.strip() or done.returncode}"
    return None


def _fill_and_free(scenario: Scenario, args) -> dict:
    marks: dict = {}
    filler = scenario.images / "bench-filler.bin"

    def during(start: float, end: float) -> None:
        time.sleep(max(0.0, start + args.duration / 3 - time.time()))
        marks["fill_from"] = time.time() - start
        marks["filler_mb"] = fill_disk(filler) / 2**20
        marks["full_at"] = time.time() - start
        time.sleep(args.full_seconds / 2)
        marks["while_full"] = {"temp_files": len(list(scenario.images.rglob("*.tmp"))), **health(scenario)}
        time.sleep(args.full_seconds / 2)
        filler.unlink()
        marks["freed_at"] = time.time() - start
        time.sleep(min(3.0, max(0.0, end - time.time())))
        marks["after_freeing"] = health(scenario)

    run = run_cameras(scenario.spec(), during)
    timeline = run["timeline"]
    while_full: dict = {}
    for at, outcome, count in timeline:
        if marks["full_at"] <= at < marks["freed_at"]:
            while_full[outcome] = while_full.get(outcome, 0) + count
    first = min((at for at, outcome, _ in timeline if outcome == "success" and at >= marks["freed_at"]),
                default=None)
    return {"scenario": "diskfull", "disk_mb": args.disk_mb, **marks, "answers_while_full": while_full,
            "recovery_s": None if first is None else max(0.0, first - marks["freed_at"]),
            **scenario.finish(run)}


def fill_disk(path: Path) -> int:
    """Write to `path` until the filesystem says ENOSPC; return the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as out:
        for chunk in (b"\0" * 2**20, b"\0" * 4096, b"\0"):
            try:
                while True:
                    written += out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return written


def health(scenario: Scenario) -> dict:
    """What the daemon's and the web app's /health say, and the daemon's rejects by code (/metrics)."""
    daemon = requests.get(f"{scenario.daemon.url}/health", timeout=10)
    metrics = requests.get(f"{scenario.daemon.url}/metrics", timeout=10,
                           headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    rejects = [line for line in metrics.text.splitlines() if line.startswith("lpr_ingest_rejects")]
    return {"daemon_health": {"http_status": daemon.status_code, **daemon.json()},
            "webapp_health": scenario.site.web.health(), "daemon_rejects": rejects}


def _time_to_register(url: str, camera_id: str, timeout: float) -> float | None:
    """Seconds for a fresh camera to connect and be answered, or None if it never was."""
    import socketio

    started = time.monotonic()
    while (left := started + timeout - time.monotonic()) > 0:
        client = socketio.Client(reconnection=False)
        try:
            client.connect(url, transports=["websocket"], wait_timeout=left)
            answer = client.call("camera_register", {"camera_id": camera_id}, timeout=left)
            if answer.get("status") == "success":
                return time.monotonic() - started
        except (socketio.exceptions.ConnectionError, socketio.exceptions.TimeoutError):
            time.sleep(0.5)
        finally:
            client.disconnect()
    return None


class RudeCamera:
    """A raw Engine.IO client that emits lpr_data with ack ids and never reads its answers (nor pings).

    `rate` reads/s, or 0 for as fast as the socket takes them (a flood)."""

    def __init__(self, port: int, rate: float):
        self.port, self.rate = port, rate
        self.sent = self.blocked = 0
        self.closed_by_server: str | None = None
        self.stop = False

    def run(self, until: float) -> None:
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket", timeout=1,
            sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
        ws.send("40")
        try:
            while not self.stop and time.time() < until:
                read = {"camera_id": "RUDE0001", "event_id": f"rude-{self.sent}", "plate_number": "กข1234"}
                if self.rate:
                    time.sleep(1 / self.rate)
                try:
                    ws.send(f"42{self.sent}" + json.dumps(["lpr_data", read]))
                    self.sent += 1
                except (websocket.WebSocketTimeoutException, TimeoutError):
                    self.blocked += 1
        except (OSError, websocket.WebSocketException) as exc:
            self.closed_by_server = f"{exc.__class__.__name__}: {exc}"
        finally:
            ws.close()

    def report(self) -> dict:
        return {"sent": self.sent, "send_timeouts": self.blocked, "closed_by_server": self.closed_by_server}


def print_results(results: list[dict]) -> None:
    for r in results:
        if "skipped" in r:
            print(f"[{r['scenario']}] skipped: {r['skipped']}")
            continue
        if r["scenario"] == "flood":
            print(f"[flood] {r['flooder']} in {r['flood_seconds']} s; a new camera registered in "
                  f"{r['register_during_flood_s']} s during it, {r['register_after_flood_s']} s after it; "
                  f"daemon RSS {r['daemon_rss_mb']}")
            continue
        v = r["verify"]
        print(f"[{r['scenario']}] acked {v['acked_reads']}, rows {v['rows_of_these_cameras']}, "
              f"missing {v['missing']}, "
              f"wrong id {v['wrong_record_id']}, duplicated {v['duplicated']}, missing image "
              f"{v['missing_image']}, orphan files {v['orphan_files']}, temp files {v['temp_files']} -> "
              f"{'OK' if v['ok'] else 'FAILED'}; errors {r['errors'] or '-'}; resends {r['resends']}; "
              f"unacked after drain {r['unacked_at_end']}")
        if r["scenario"] == "kill":
            print(f"    kills at {[round(k['at_s'], 1) for k in r['kills']]} s, restart "
                  f"{max((k['restart_s'] for k in r['kills']), default=0):.1f} s at most")
        if r["scenario"] == "pg":
            print(f"    PostgreSQL down {r['down_at']:.1f}-{r['up_at']:.1f} s; answers meanwhile "
                  f"{r['answers_while_down']}; first success {r['recovery_s']} s after it was back")
        if r["scenario"] == "slow":
            for name, o in r["others"].items():
                print(f"    others {name}: {o['reads_per_s']:.1f} reads/s, p99 {o['latency_ms']['p99']} ms, "
                      f"errors {o['errors'] or '-'}")
            print(f"    rude camera: {r['rude_camera']}")
        if "dashboard" in r:
            d = r["dashboard"]
            lat = {k: None if v is None else round(v, 1) for k, v in d["answer_to_event_ms"].items()}
            print(f"    dashboard: of {d['acked_records']} acked reads {d['live_events']} live, "
                  f"{d['caught_up_on_reconnect']} by catch-up, {d['never_reached']} never; answer -> event "
                  f"p50 {lat['p50']} ms, p99 {lat['p99']} ms; {d['out_of_order_events']} out of "
                  f"id order; catch-ups (after, got) {[(c['after'], c['records']) for c in d['catchups']]}")
        if r["scenario"] == "webapp":
            rates = {k: round(v, 1) for k, v in r["reads_per_s_by_phase"].items()}
            print(f"    web app stopped at {r['down_at']:.1f} s (took {r['stopped_in_s']:.1f} s), back at "
                  f"{r['up_at']:.1f} s; ingest reads/s {rates}; dashboard reconnected "
                  f"{_round(r['dashboard_reconnected_after_s'])} s after; reads answered while down: "
                  f"{r['answered_while_down']}")
        if r["scenario"] == "diskfull":
            print(f"    disk ({r['disk_mb']} MB) full at {r['full_at']:.1f} s ({r['filler_mb']:.0f} MB "
                  f"filler), freed at {r['freed_at']:.1f} s; answers meanwhile {r['answers_while_full']}; "
                  f"first success {_round(r['recovery_s'])} s after freeing")
            print(f"    while full: {r['while_full']}")
            print(f"    after freeing: {r['after_freeing']}")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main(argv=None) -> int:
    args = parse_args(argv)
    chosen = [s for s in args.scenarios.split(",") if s]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    runners = {"kill": kill_scenario, "pg": pg_scenario, "slow": slow_scenario, "flood": flood_scenario,
               "webapp": webapp_scenario}
    report = {"bench": "faults", "machine": machine(), "args": vars(args), "results": []}
    db = BenchDatabase(args.database_url, fsync=args.pg_fsync == "on")
    try:
        blacklist = fill_blacklist(db, args.blacklist)
        with scratch_folder("lpr-faults-") as tmp:
            for name in chosen:
                if name == "diskfull":  # its image folder is a filesystem of its own
                    report["results"].append(diskfull_scenario(db, args, blacklist, Path(tmp)))
                else:
                    scenario = Scenario(name, db, args, blacklist, Path(tmp), live=name == "webapp")
                    try:
                        report["results"].append(runners[name](scenario, args))
                    finally:
                        scenario.stop()
                print_results(report["results"][-1:])
    finally:
        db.close()
    print(f"results: {write_json('faults', report, args.json)}")
    return 0 if all(r.get("verify", {"ok": True})["ok"] for r in report["results"]) else 1



if __name__ == "__main__":
    raise SystemExit(main())
