"""Simulated edge cameras: processes of asyncio python-socketio clients that send reads and resend
whatever was not acknowledged, as a careful edge does (README "Sending reads")."""

import asyncio
import base64
import multiprocessing
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass
from queue import Empty

import socketio
import uvloop

from .common import ClientJson, CpuMeter, jpeg_of_size, percentile, random_plate

BUCKET = 0.1  # seconds per timeline bucket


@dataclass
class LoadSpec:
    """What the cameras of one run do."""

    url: str
    cameras: int = 200
    processes: int = 2
    duration: float = 60
    rate: float | None = None  # reads/s in total; None: closed loop
    image_kb: int = 40
    drain: float = 0  # seconds after the run to keep resending unacknowledged reads
    call_timeout: float = 30
    prefix: str = "BENCH"
    blacklist_share: float = 0.01
    blacklist: tuple[str, ...] = ()
    seed: int = 1


class Disconnected(Exception):
    """The connection dropped while a read waited for its answer."""


class Camera:
    """One edge camera on one Socket.IO connection, one read in flight at a time."""

    def __init__(self, camera_id: str, url: str):
        self.camera_id = camera_id
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=2,
                                        randomization_factor=0.5, json=ClientJson)
        self.lost = asyncio.Event()
        self.disconnects = 0
        self.closing = False
        self.sio.on("connect", self._connected)
        self.sio.on("disconnect", self._disconnected)

    async def _connected(self, *args):
        self.lost.clear()

    async def _disconnected(self, *args):
        self.disconnects += not self.closing
        self.lost.set()

    async def connect(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            try:
                await self.sio.connect(self.url, transports=["websocket"], wait_timeout=10)
                return True
            except socketio.exceptions.ConnectionError:
                await asyncio.sleep(0.5)
        return False

    async def register(self) -> dict:
        return await self.call("camera_register", {"camera_id": self.camera_id, "name": self.camera_id,
                                                   "location": "bench", "version": "bench"}, 10)

    async def call(self, event: str, payload: dict, timeout: float) -> dict:
        """Emit and wait for the answer; raise Disconnected at once if the connection drops meanwhile."""
        if not self.sio.connected or self.lost.is_set():
            raise Disconnected()
        answer = asyncio.ensure_future(self.sio.call(event, payload, timeout=timeout))
        lost = asyncio.ensure_future(self.lost.wait())
        done, _ = await asyncio.wait({answer, lost}, return_when=asyncio.FIRST_COMPLETED)
        if answer not in done:
            answer.cancel()
            raise Disconnected()
        lost.cancel()
        return answer.result()


class Tally:
    """What the cameras of one process saw."""

    def __init__(self, start: float, end: float):
        self.start, self.end = start, end
        self.acked: list[tuple[str, str, int]] = []
        self.answered: dict[int, float] = {}  # record_id -> when its first success answer came
        self.latencies_ms: list[float] = []
        self.schedule_latencies_ms: list[float] = []  # paced runs: from when the read was due
        self.errors: Counter = Counter()
        self.timeline: Counter = Counter()  # (bucket, outcome) -> count
        self.sent = self.resends = self.duplicates = self.acked_in_window = 0
        self.max_lag = 0.0

    def outcome(self, sent_at: float, outcome: str, due: float | None = None) -> None:
        now = time.time()
        self.timeline[(int((now - self.start) / BUCKET), outcome)] += 1
        if outcome == "success" and self.start <= now <= self.end:
            self.acked_in_window += 1
            self.latencies_ms.append((now - sent_at) * 1000)
            if due is not None:
                self.schedule_latencies_ms.append((now - due) * 1000)
        elif outcome != "success":
            self.errors[outcome] += 1


def _reads(camera_id: str, spec: LoadSpec, images: list[str], rng: random.Random):
    for seq in range(1, 1 << 62):
        plate = rng.choice(spec.blacklist) if spec.blacklist and rng.random() < spec.blacklist_share \
            else random_plate(rng)
        yield {"camera_id": camera_id, "event_id": f"{camera_id}-{seq}", "plate_number": plate,
               "confidence": round(rng.uniform(60, 99), 1), "image_data": rng.choice(images),
               "location": "ประตูหน้า", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}


async def run_camera(camera: Camera, spec: LoadSpec, images: list[str], tally: Tally, rng: random.Random):
    """Send reads until the end (closed loop or paced), then resend the unacknowledged until drained."""
    interval = spec.cameras / spec.rate if spec.rate else 0
    next_at = tally.start + rng.uniform(0, interval)
    pending: list[dict] = []
    fresh = _reads(camera.camera_id, spec, images, rng)
    while True:
        now = time.time()
        if now >= tally.end + spec.drain or (now >= tally.end and not pending):
            return pending
        due = None
        if pending:
            read = pending.pop(0)
            tally.resends += 1
        else:
            if interval:
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                tally.max_lag = max(tally.max_lag, time.time() - next_at)
                due, next_at = next_at, next_at + interval
            read = next(fresh)
        await _send(camera, read, spec, tally, pending, due)


async def _send(camera: Camera, read: dict, spec: LoadSpec, tally: Tally, pending: list[dict],
                due: float | None) -> None:
    sent_at = time.time()
    tally.sent += 1
    try:
        answer = await camera.call("lpr_data", read, spec.call_timeout)
    except socketio.exceptions.TimeoutError:
        tally.outcome(sent_at, "timeout")
        pending.append(read)
        return
    except (Disconnected, socketio.exceptions.SocketIOError):
        tally.outcome(sent_at, "disconnected")
        pending.append(read)
        await asyncio.sleep(0.2)
        return
    if isinstance(answer, dict) and answer.get("status") == "success":
        tally.outcome(sent_at, "success", due)
        tally.acked.append((camera.camera_id, read["event_id"], answer["record_id"]))
        tally.answered.setdefault(answer["record_id"], time.time())
        tally.duplicates += bool(answer.get("duplicate"))
        return
    code = answer.get("code", "no_code") if isinstance(answer, dict) else "bad_answer"
    tally.outcome(sent_at, code)
    if code == "unavailable":
        pending.append(read)
        await asyncio.sleep(0.2)


def _image_uris(image_kb: int, seed: int) -> list[str]:
    jpegs = [jpeg_of_size(image_kb * 1024, seed=seed * 10 + i) for i in range(3)]
    return [f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}" for jpeg in jpegs]


async def _process_main(spec: LoadSpec, ids: list[str], ready, go, start_at, results) -> None:
    images = _image_uris(spec.image_kb, spec.seed)
    cameras = [Camera(camera_id, spec.url) for camera_id in ids]
    gate = asyncio.Semaphore(50)  # connect in waves, as a site coming back after a power cut would not

    async def connect(camera):
        async with gate:
            if await camera.connect(time.monotonic() + 60):
                answer = await camera.register()
                return answer.get("status") == "success"
            return False

    registered = sum(await asyncio.gather(*(connect(c) for c in cameras)))
    ready.put(registered)
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    tally = Tally(start_at.value, start_at.value + spec.duration)
    rng = random.Random(spec.seed)
    pendings = await asyncio.gather(*(run_camera(c, spec, images, tally, random.Random(rng.random()))
                                      for c in cameras))
    for camera in cameras:
        camera.closing = True
        await camera.sio.disconnect()
    results.put({
        "acked": tally.acked, "answered": list(tally.answered.items()), "latencies_ms": tally.latencies_ms,
        "schedule_latencies_ms": tally.schedule_latencies_ms, "errors": dict(tally.errors),
        "timeline": [(b, o, n) for (b, o), n in tally.timeline.items()], "sent": tally.sent,
        "resends": tally.resends, "duplicates": tally.duplicates, "acked_in_window": tally.acked_in_window,
        "unacked_at_end": sum(len(p) for p in pendings), "max_schedule_lag_s": tally.max_lag,
        "disconnects": sum(c.disconnects for c in cameras), "registered": registered,
        "image_bytes": [len(base64.b64decode(u.partition(",")[2])) for u in images],
    })


def camera_process(spec_dict: dict, ids: list[str], ready, go, start_at, results) -> None:
    """Entry of one camera process."""
    spec = LoadSpec(**spec_dict)
    # uvloop: the same asyncio clients on a faster event loop, so the harness takes less of the machine
    # it measures (back to back: 0.53 -> 0.46 ms of a camera process's CPU per read).
    uvloop.run(_process_main(spec, ids, ready, go, start_at, results))


def run_cameras(spec: LoadSpec, during=None) -> dict:
    """Run the cameras of `spec` in separate processes; call during(start, end) meanwhile; sum up."""
    ctx = multiprocessing.get_context("spawn")
    ready, results, go, start_at = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    ids = [f"{spec.prefix}{i:04d}" for i in range(1, spec.cameras + 1)]
    processes = [
        ctx.Process(target=camera_process, daemon=True,
                    args=({**asdict(spec), "seed": spec.seed * 1000 + n}, ids[n::spec.processes],
                          ready, go, start_at, results))
        for n in range(spec.processes)
    ]
    for process in processes:
        process.start()
    try:
        registered = sum(collect(ready, processes, 180))
        start_at.value = time.time() + 0.2
        go.set()
        start, end = start_at.value, start_at.value + spec.duration
        clients = CpuMeter([p.pid for p in processes])
        clients.start()
        if during:
            during(start, end)
        time.sleep(max(0.0, end - time.time()))
        clients_cpu = clients.stop()
        parts = collect(results, processes, spec.duration + spec.drain + 120)
        for process in processes:
            process.join(30)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
    return {**summarize(spec, parts, registered), "cameras_cpu_pct": clients_cpu}


def collect(queue, processes: list, timeout: float) -> list:
    """Take one item per process from the queue; fail at once if a process dies first."""
    items, deadline = [], time.monotonic() + timeout
    while len(items) < len(processes):
        try:
            items.append(queue.get(timeout=0.5))
        except Empty:
            dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a camera process failed (exit codes {dead}); its traceback is above") \
                    from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"camera processes did not answer within {timeout:.0f} s") from None
    return items


def summarize(spec: LoadSpec, parts: list[dict], registered: int) -> dict:
    latencies = [v for p in parts for v in p["latencies_ms"]]
    from_due = [v for p in parts for v in p["schedule_latencies_ms"]]
    acked_in_window = sum(p["acked_in_window"] for p in parts)
    errors: Counter = Counter()
    timeline: Counter = Counter()
    for part in parts:
        errors.update(part["errors"])
        timeline.update({(b, o): n for b, o, n in part["timeline"]})
    return {
        "cameras": spec.cameras, "registered": registered, "processes": spec.processes,
        "duration_s": spec.duration, "mode": f"rate {spec.rate}/s" if spec.rate else "closed-loop",
        "image_bytes": sorted({b for p in parts for b in p["image_bytes"]}),
        "reads_per_s": acked_in_window / spec.duration, "acked_in_window": acked_in_window,
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                       "p99": percentile(latencies, 99), "max": max(latencies, default=None)},
        # Paced runs only: from when each first-time read was due, so a stalled daemon's delay to the
        # reads queued behind a slow answer is counted too (no coordinated omission).
        "latency_from_due_ms": {"p50": percentile(from_due, 50), "p95": percentile(from_due, 95),
                                "p99": percentile(from_due, 99), "max": max(from_due, default=None)},
        "sent": sum(p["sent"] for p in parts), "resends": sum(p["resends"] for p in parts),
        "duplicate_answers": sum(p["duplicates"] for p in parts), "errors": dict(errors),
        "unacked_at_end": sum(p["unacked_at_end"] for p in parts),
        "client_disconnects": sum(p["disconnects"] for p in parts),
        "max_schedule_lag_s": max(p["max_schedule_lag_s"] for p in parts),
        "timeline": sorted((b * BUCKET, o, n) for (b, o), n in timeline.items()),
        "acked": [a for p in parts for a in p["acked"]],
        "answered": _first_answers(parts),
    }


def _first_answers(parts: list[dict]) -> dict[int, float]:
    """Return record_id -> when the first success answer for it reached a camera (the dashboard's start)."""
    first: dict[int, float] = {}
    for part in parts:
        for record_id, at in part["answered"]:
            first[record_id] = min(at, first.get(record_id, at))
    return first
