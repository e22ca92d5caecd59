"""Scripted faults against the real daemon while cameras send: nothing acknowledged may be lost.

    python -m bench.faults                                # all: kill, pg, slow
    python -m bench.faults --scenarios kill --kills 1 --cameras 4 --duration 6   # the CI-sized set
"""

import argparse
import json
import random
import socket
import tempfile
import threading
import time
from pathlib import Path

import websocket

from .cameras import LoadSpec, run_cameras
from .common import BenchDatabase, Daemon, fill_blacklist, machine, memory_kb, verify_acked, write_json

SCENARIOS = ("kill", "pg", "slow", "flood")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated, of: kill,pg,slow,flood")
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
    parser.add_argument("--drain", type=float, default=60, help="seconds to resend the unacknowledged after")
    parser.add_argument("--async-mode", choices=["gevent", "eventlet"], default="gevent")
    parser.add_argument("--blacklist", type=int, default=10_000)
    parser.add_argument("--pg-fsync", choices=["on", "off"], default="on")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="use this (empty or bench) database, not a throwaway cluster")
    parser.add_argument("--json", help="write the results here (default bench/results/faults-*.json)")
    return parser.parse_args(argv)


class Scenario:
    """One daemon, one image store, the cameras of the run."""

    def __init__(self, name: str, db: BenchDatabase, args, blacklist: list[str], work: Path):
        self.name, self.db, self.args = name, db, args
        self.images = work / f"images-{name}"
        self.images.mkdir()
        self.daemon = Daemon(db.url, self.images, work / f"daemon-{name}.log", args.async_mode).start()
        self.blacklist = blacklist

    def spec(self, **overrides) -> LoadSpec:
        values = dict(url=self.daemon.url, cameras=self.args.cameras, processes=self.args.processes,
                      duration=self.args.duration, rate=self.args.rate, image_kb=self.args.image_kb,
                      drain=self.args.drain, call_timeout=5, prefix=self.name.upper(),
                      blacklist=tuple(self.blacklist), seed=self.args.seed)
        return LoadSpec(**{**values, **overrides})

    def finish(self, run: dict) -> dict:
        run["daemon_peak_rss_mb"] = memory_kb(self.daemon.pid)["VmHWM"] / 1024
        self.daemon.stop()
        run["verify"] = verify_acked(self.db, self.images, run.pop("acked"))
        run.pop("timeline")
        return run


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


def main(argv=None) -> int:
    args = parse_args(argv)
    chosen = [s for s in args.scenarios.split(",") if s]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    runners = {"kill": kill_scenario, "pg": pg_scenario, "slow": slow_scenario, "flood": flood_scenario}
    report = {"bench": "faults", "machine": machine(), "args": vars(args), "results": []}
    db = BenchDatabase(args.database_url, fsync=args.pg_fsync == "on")
    try:
        blacklist = fill_blacklist(db, args.blacklist)
        with tempfile.TemporaryDirectory(prefix="lpr-faults-") as tmp:
            for name in chosen:
                scenario = Scenario(name, db, args, blacklist, Path(tmp))
                try:
                    report["results"].append(runners[name](scenario, args))
                finally:
                    scenario.daemon.stop()
                print_results(report["results"][-1:])
    finally:
        db.close()
    print(f"results: {write_json('faults', report, args.json)}")
    return 0 if all(r.get("verify", {"ok": True})["ok"] for r in report["results"]) else 1



if __name__ == "__main__":
    raise SystemExit(main())
