"""Store workers: helper processes that store whole batches of reads, so the daemon's one thread
only parses, checks, batches and answers.

A batch costs CPU in two places besides the daemon's transport: its images (base64, a JPEG decode
at 1/4 scale, a thumbnail, the file calls and one syncfs: about 1.5 ms per read) and its
statements (the cameras, the repeats, the blacklist, one insert, the webhook events and the
commit through SQLAlchemy and psycopg2: about a third of the daemon's CPU when it ran them). On
the daemon's thread every one of those held up the event loop, which was then the serial part of
the whole server (BENCHMARKS.md). A store worker is a process with a GIL and a database
connection of its own: the writer greenlet sends it a batch of checked reads in one message over a
socketpair; the worker runs `ingest_reads` on it and sends back each read's outcome (a ReadResult
to answer and relay, or the IngestError to answer). A worker gets its settings, the database
address among them, as its first message (never on its command line, where `ps` shows it), and
exits when its socket closes (the daemon is gone).

A read's image is handed to its worker as the read arrives (`prepare`), and the worker starts
checking it at once (base64, JPEG decode, thumbnail: most of a read's CPU) on threads of its own,
while it stores the batch before. The batch then carries the read without its image, and the
worker writes the image its check gave. So a batch holds its worker for the files and the
statements only, and a read waits less for the batch ahead of it. A read whose worker was
replaced since is sent with its image, as before.

    python -m lprserver.ingest.store_worker FD
"""

import itertools
import logging
import pickle
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, configure_mappers

from .. import images
from ..images import FilesystemImageStore, PendingImage, SentImage
from ..logs import configure_logging
from ..models import utcnow
from . import pipeline
from .errors import IngestError
from .pipeline import IngestSettings, Outcome, PreparedRead, ingest_reads

log = logging.getLogger("lprserver.ingest")
_LENGTH = struct.Struct("!I")
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
WORKER_TIMEOUT = 60.0  # seconds a batch (or a worker's start) may take before the worker is replaced
READY = "ready"  # a worker's first message: set up, waiting for batches
# Threads for a batch's images in each worker, by IMAGE_SYNC. With an fsync per file, enough for the
# disk to merge a batch's fsyncs: batches of 64 cost 2.1-2.4 ms of CPU per image with 3-8 threads,
# 2.4-2.7 ms with 16 (GIL contention). With one syncfs per batch no thread waits on the disk; two
# let the JPEG decodes (Pillow lets go of the GIL) overlap: 1.6-1.8 ms per image with 1-2 threads,
# 2.0 with 6 (batches of 32, the second of two passes).
IMAGE_THREADS = {"batch": 2, "file": 6}
# Threads that check images as they arrive (the JPEG decode lets go of the GIL): two per worker, as many
# as the machine's cores here.
CHECK_THREADS = 2
# Seconds a started check waits for its batch before it is dropped (a read answered without reaching
# its worker, as when the server was busy). Cameras wait for their answers, so what is kept is bounded
# by the reads in flight.
CHECK_KEPT = 120.0
# The main thread runs a batch's statements while the check threads decode the next reads' images; each
# time a statement's answer comes back it needs the GIL back from them. Python's 5 ms switch interval
# would make it wait that long at every round trip.
SWITCH_INTERVAL = 0.0005


@dataclass(frozen=True)
class WorkerSetup:
    """What a store worker needs to store batches as the daemon would."""

    image_root: str
    image_sync: str
    database_uri: str
    engine_options: dict[str, Any]
    settings: IngestSettings
    log_level: str

    @classmethod
    def from_config(cls, config) -> "WorkerSetup":
        options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
        if "pool_size" in options:  # one batch at a time: one connection, one spare for a retry
            options.update(pool_size=1, max_overflow=1)
        return cls(config["IMAGE_STORAGE_PATH"], config["IMAGE_SYNC"], config["SQLALCHEMY_DATABASE_URI"],
                   options, IngestSettings.from_config(config), config["LOG_LEVEL"])


def unavailable(count: int) -> list[Outcome]:
    """The outcome of every read of a batch that could not be stored: the cameras send them again."""
    return [IngestError("unavailable", "the server could not store this now; retry later")] * count


def store_batch(engine: Engine, store: FilesystemImageStore, settings: IngestSettings,
                reads: list[PreparedRead]) -> list[Outcome]:
    """Store one batch in a session of its own; a failure that is not a read's own becomes
    `unavailable` for the batch, never the end of the worker."""
    try:
        with Session(engine) as session:
            return ingest_reads(session, store, settings, reads)
    except Exception:
        log.exception("event=ingest_failed reads=%d", len(reads))
        return unavailable(len(reads))


@dataclass(frozen=True)
class _Check:
    """A read's image, for its worker to start checking now; the read follows in a batch."""

    check_id: int
    text: str


@dataclass
class EarlyRead:
    """A read whose image a worker started checking as it arrived (kept by the daemon until answered)."""

    read: PreparedRead  # as the camera sent it, image and all
    worker: "_Worker"
    check_id: int

    def for_worker(self, worker: "_Worker") -> PreparedRead:
        """The read to send in a batch: without its image if `worker` is checking it, else whole."""
        if worker is not self.worker:
            return self.read
        return replace(self.read, data=self.read.data.model_copy(update={"image_data": None}),
                       check_id=self.check_id)


class StoreWorkers:
    """Store worker processes, one per writer: `prepare` hands a read's image to a worker as the read
    arrives, `store` has that worker store a batch and waits for its outcomes. Only writer `slot`
    calls `store(reads, slot)`, so a worker has one batch at a time.

    A worker that dies (killed, or crashed by an image) or stops answering fails only its batch,
    `unavailable`, and is replaced. It may have committed the batch first: the cameras send the
    reads again and are answered with the stored records (SPEC §2.5)."""

    def __init__(self, setup: WorkerSetup, count: int):
        self.setup = setup
        self.on_restart: Callable[[], None] = lambda: None  # /metrics counts the replacements
        self._check_ids = itertools.count(1)
        started = [_Worker(setup) for _ in range(count)]
        for worker in started:  # before the daemon listens: no camera's first read waits for a start
            try:
                worker.wait_ready()
            except (OSError, EOFError, pickle.PickleError) as exc:
                for each in started:
                    each.stop()
                raise RuntimeError(f"a store worker could not start ({exc!r}); its error is above") from None
        self.slots = started

    def prepare(self, slot: int, read: PreparedRead) -> PreparedRead | EarlyRead:
        """Hand the read's image to worker `slot` to start checking it; return what to batch."""
        if not read.data.image_data:
            return read
        worker, check_id = self.slots[slot], next(self._check_ids)
        try:
            worker.send(_Check(check_id, read.data.image_data))
        except (OSError, pickle.PickleError):
            return read  # the worker is gone: `store` replaces it, and the batch carries the image
        return EarlyRead(read, worker, check_id)

    def store(self, reads: list[PreparedRead | EarlyRead], slot: int = 0) -> list[Outcome]:
        worker = self.slots[slot]
        batch = [read.for_worker(worker) if isinstance(read, EarlyRead) else read for read in reads]
        try:
            return worker.call(batch)
        except (OSError, EOFError, pickle.PickleError) as exc:
            # A worker that died may have left files of this batch: the orphan sweep removes them.
            log.warning("event=store_worker_failed error=%r", str(exc) or exc.__class__.__name__)
            worker.stop()
            self.slots[slot] = _Worker(self.setup)
            self.on_restart()
            return unavailable(len(reads))

    def stop(self) -> None:
        for worker in self.slots:
            worker.stop()


class _Worker:
    def __init__(self, setup: WorkerSetup):
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lprserver.ingest.store_worker", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        _widen(ours)
        ours.settimeout(WORKER_TIMEOUT)
        self.sock, self.ready = ours, False
        self._sending = threading.Lock()  # images (from every camera's greenlet) and batches share the socket
        self.send(setup)

    def wait_ready(self) -> None:
        """Wait until the worker has imported everything and can take a batch (about 2 s after its start
        here: the first read after a start in CI waited 1.98 s for it)."""
        if not self.ready:
            if _receive(self.sock) != READY:
                raise EOFError("the store worker did not say it was ready")
            self.ready = True

    def send(self, message: object) -> None:
        with self._sending:
            _send(self.sock, message)

    def call(self, reads: list[PreparedRead]) -> list[Outcome]:
        self.wait_ready()
        self.send(reads)
        return _receive(self.sock)

    def stop(self) -> None:
        self.sock.close()
        try:
            self.process.kill()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass


class EarlyChecks:
    """In a worker: the image checks started as reads arrived, until their batch takes them."""

    def __init__(self, threads: ThreadPoolExecutor, settings: IngestSettings):
        self.threads, self.settings = threads, settings
        self._started: dict[int, tuple[Future, float]] = {}
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    def start(self, check: _Check) -> None:
        image = SentImage(check.text, self.settings.image_max_bytes, self.settings.image_max_pixels)
        outcome = self.threads.submit(image.check)
        now = time.monotonic()
        with self._lock:
            self._started[check.check_id] = (outcome, now)
            if now - self._swept > CHECK_KEPT:
                self._swept = now
                for check_id in [k for k, (_, at) in self._started.items() if now - at > CHECK_KEPT]:
                    del self._started[check_id]

    def attach(self, reads: list[PreparedRead]) -> list[PreparedRead]:
        """Give each read sent without its image the check started for it."""
        for read in reads:
            if read.check_id is not None:
                with self._lock:
                    outcome, _ = self._started.pop(read.check_id, (None, 0.0))
                if outcome is None:  # dropped: the read is answered `unavailable` and sent again
                    outcome = Future()
                    outcome.set_exception(OSError("the check of this read's image was dropped"))
                read.image = PendingImage(outcome)
        return reads


def _widen(sock: socket.socket) -> None:
    """Ask for socket buffers that hold a whole batch (60 reads' images are 3 MB): the default
    ~200 KB made the daemon send each batch in a dozen rounds, waking up between them. The kernel
    caps the size at net.core.wmem_max / rmem_max."""
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)


def _send(sock: socket.socket, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LENGTH.pack(len(data)))  # apart: joining them would copy a batch's megabytes once more
    sock.sendall(data)


def _receive(sock: socket.socket):
    (length,) = _LENGTH.unpack(_exactly(sock, _LENGTH.size))
    return pickle.loads(_exactly(sock, length))  # noqa: S301 (our own child, over a private socketpair)


def _exactly(sock: socket.socket, count: int) -> bytes:
    buffer, got = bytearray(count), 0
    view = memoryview(buffer)
    while got < count:
        n = sock.recv_into(view[got:], count - got)
        if not n:
            raise EOFError("store worker socket closed")
        got += n
    return buffer  # pickle.loads takes it as it is


def warm_up(engine: Engine) -> None:
    """Do before the first batch what it would otherwise pay for: the ORM's mappers, Pillow's plugins,
    the database connection and the batch's statements. A database that is down is only logged here:
    the first batch answers `unavailable` as it would have."""
    configure_mappers()
    images.warm_up()
    try:
        with Session(engine) as session:
            pipeline.warm_up(session, utcnow())
    except SQLAlchemyError as exc:
        log.warning("event=store_worker_warm_up_failed error=%r", str(exc).partition("\n")[0][:200])


def main(argv: list[str]) -> None:
    sock = socket.socket(fileno=int(argv[0]))
    _widen(sock)
    sock.setblocking(True)  # the daemon's async library made its socketpair non-blocking
    try:
        setup: WorkerSetup = _receive(sock)
    except (EOFError, OSError):
        return
    configure_logging(setup.log_level)
    sys.setswitchinterval(SWITCH_INTERVAL)
    engine = create_engine(setup.database_uri, **setup.engine_options)
    writes = ThreadPoolExecutor(IMAGE_THREADS[setup.image_sync], thread_name_prefix="image-write")
    store = FilesystemImageStore(setup.image_root, lambda function, items: list(writes.map(function, items)),
                                 setup.image_sync)
    early = EarlyChecks(ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="image-check"), setup.settings)
    try:
        _send(sock, READY)
    except OSError:
        return
    batches: queue.SimpleQueue[list[PreparedRead] | None] = queue.SimpleQueue()
    threading.Thread(target=_take_messages, args=(sock, early, batches), name="receive", daemon=True).start()
    warm_up(engine)  # after READY: the daemon's start never waits on the database
    while (reads := batches.get()) is not None:
        try:
            _send(sock, store_batch(engine, store, setup.settings, early.attach(reads)))
        except OSError:
            return  # the daemon is gone


def _take_messages(sock: socket.socket, early: EarlyChecks,
                   batches: "queue.SimpleQueue[list[PreparedRead] | None]") -> None:
    """Start each image's check as it comes; queue each batch for the main thread."""
    while True:
        try:
            message = _receive(sock)
        except (EOFError, OSError):
            batches.put(None)  # the daemon is gone
            return
        if isinstance(message, list):  # (a _Check is unpickled from this module's import, not __main__)
            batches.put(message)
        else:
            early.start(message)


if __name__ == "__main__":
    main(sys.argv[1:])
