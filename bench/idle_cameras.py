"""Hold many idle Socket.IO cameras on the real daemon: its memory, and whether anyone misses a ping.

    python -m bench.idle_cameras                         # 1,000 cameras for 60 s
"""

import argparse
import asyncio
import multiprocessing
import time
from itertools import pairwise
from pathlib import Path

from engineio import packet

from .cameras import Camera, collect
from .common import BenchDatabase, CpuMeter, Daemon, machine, memory_kb, scratch_folder, write_json

PING_INTERVAL = 25  # python-engineio's default; a gap well over it is a missed ping


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=60, help="seconds all cameras stay connected")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--async-mode", choices=["gevent", "eventlet"], default="gevent")
    parser.add_argument("--database-url", help="use this (empty or bench) database, not a throwaway cluster")
    parser.add_argument("--json", help="write the results here (default bench/results/idle_cameras-*.json)")
    return parser.parse_args(argv)


def watch_pings(camera: Camera) -> list[float]:
    """Record when the server's pings arrive on this camera's connection."""
    pings = [time.time()]
    original = camera.sio.eio._receive_packet

    async def receive(pkt):
        if pkt.packet_type == packet.PING:
            pings.append(time.time())
        await original(pkt)

    camera.sio.eio._receive_packet = receive
    return pings


async def _hold(url: str, ids: list[str], ready, go, end_at, results) -> None:
    cameras = [Camera(camera_id, url) for camera_id in ids]
    pings = [watch_pings(c) for c in cameras]
    gate = asyncio.Semaphore(50)

    async def connect(camera, pings):
        async with gate:
            if not await camera.connect(time.monotonic() + 60):
                return False
            # The server's ping timer starts at the handshake: measure the first gap from there,
            # not from when this camera was created and queued behind the others.
            pings[0] = time.time()
            return (await camera.register()).get("status") == "success"

    registered = sum(await asyncio.gather(*(connect(c, p) for c, p in zip(cameras, pings, strict=True))))
    ready.put(registered)
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    await asyncio.sleep(max(0.0, end_at.value - time.time()))
    now = time.time()
    gaps = [max(b - a for a, b in pairwise(p + [now])) for p in pings]
    results.put({"registered": registered, "connected_at_end": sum(c.sio.connected for c in cameras),
                 "disconnects": sum(c.disconnects for c in cameras), "max_ping_gap_s": max(gaps, default=0),
                 "late_pings": sum(g > PING_INTERVAL + 5 for g in gaps),
                 "pings": sum(len(p) - 1 for p in pings)})
    for camera in cameras:
        camera.closing = True
        await camera.sio.disconnect()


def hold_process(url, ids, ready, go, end_at, results) -> None:
    asyncio.run(_hold(url, ids, ready, go, end_at, results))


def hold_cameras(daemon: Daemon, args) -> dict:
    ctx = multiprocessing.get_context("spawn")
    ready, results, go, end_at = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    ids = [f"IDLE{i:04d}" for i in range(1, args.cameras + 1)]
    processes = [ctx.Process(target=hold_process, daemon=True,
                             args=(daemon.url, ids[n::args.processes], ready, go, end_at, results))
                 for n in range(args.processes)]
    before = memory_kb(daemon.pid)["VmRSS"]
    started = time.monotonic()
    for process in processes:
        process.start()
    try:
        registered = sum(collect(ready, processes, 300))
        connect_s = time.monotonic() - started
        connected_rss = memory_kb(daemon.pid)["VmRSS"]
        meter = CpuMeter([daemon.pid])
        meter.start()
        end_at.value = time.time() + args.duration
        go.set()
        parts = collect(results, processes, args.duration + 120)
        idle_cpu = meter.stop()
        end_memory = memory_kb(daemon.pid)
        for process in processes:
            process.join(30)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
    return {
        "cameras": args.cameras, "registered": registered, "connect_all_s": connect_s,
        "connected_at_end": sum(p["connected_at_end"] for p in parts),
        "client_disconnects": sum(p["disconnects"] for p in parts),
        "late_pings": sum(p["late_pings"] for p in parts), "pings": sum(p["pings"] for p in parts),
        "max_ping_gap_s": max(p["max_ping_gap_s"] for p in parts),
        "daemon_rss_mb": {"before": before / 1024, "all_connected": connected_rss / 1024,
                          "end": end_memory["VmRSS"] / 1024, "peak": end_memory["VmHWM"] / 1024},
        "daemon_cpu_pct_idle": idle_cpu,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    report = {"bench": "idle_cameras", "machine": machine(), "args": vars(args)}
    db = BenchDatabase(args.database_url, fsync=False)  # nothing is written but presence
    try:
        with scratch_folder("lpr-idle-") as tmp:
            daemon = Daemon(db.url, Path(tmp), Path(tmp) / "daemon.log", args.async_mode).start()
            try:
                report.update(hold_cameras(daemon, args))
            finally:
                daemon.stop()
    finally:
        db.close()
    rss = report["daemon_rss_mb"]
    print(f"{report['registered']}/{report['cameras']} cameras registered in "
          f"{report['connect_all_s']:.1f} s; "
          f"{report['connected_at_end']} still connected after {args.duration:.0f} s")
    print(f"daemon RSS: {rss['before']:.0f} MB before, {rss['all_connected']:.0f} MB all connected, "
          f"{rss['end']:.0f} MB at the end, peak {rss['peak']:.0f} MB; "
          f"idle CPU {report['daemon_cpu_pct_idle']:.1f} %")
    print(f"pings received {report['pings']}, late pings {report['late_pings']}, longest gap "
          f"{report['max_ping_gap_s']:.1f} s, client disconnects {report['client_disconnects']}")
    print(f"results: {write_json('idle_cameras', report, args.json)}")
    ok = report["connected_at_end"] == report["cameras"] and not report["client_disconnects"]
    return 0 if ok and not report["late_pings"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
