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

    python -m lprserver.ingest.store_worker FD
"""

import logging
import pickle
import queue
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, configure_mappers

from .. import images
from ..image_store import ImageStore, image_settings, image_store_from_config
from ..logs import configure_logging
from ..models import utcnow
from . import pipeline
from .errors import unavailable
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


@dataclass(frozen=True)
class WorkerSetup:
    """What a store worker needs to store batches as the daemon would."""

    image_root: str
    image_sync: str
    database_uri: str
    engine_options: dict[str, Any]
    settings: IngestSettings
    log_level: str
    image_settings: dict[str, Any]  # IMAGE_STORE and the object store's settings (no credential among them)

    @classmethod
    def from_config(cls, config) -> "WorkerSetup":
        options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
        if "pool_size" in options:  # one batch at a time: one connection, one spare for a retry
            options.update(pool_size=1, max_overflow=1)
        return cls(config["IMAGE_STORAGE_PATH"], config["IMAGE_SYNC"], config["SQLALCHEMY_DATABASE_URI"],
                   options, IngestSettings.from_config(config), config["LOG_LEVEL"], image_settings(config))

    def image_config(self) -> dict[str, Any]:
        return {**self.image_settings, "IMAGE_STORAGE_PATH": self.image_root, "IMAGE_SYNC": self.image_sync}


def store_batch(engine: Engine, store: ImageStore, settings: IngestSettings,
                reads: list[PreparedRead]) -> list[Outcome]:
    """Store one batch in a session of its own; a failure that is not a read's own becomes
    `unavailable` for the batch, never the end of the worker."""
    try:
        with Session(engine) as session:
            return ingest_reads(session, store, settings, reads)
    except Exception:
        log.exception("event=ingest_failed reads=%d", len(reads))
        return unavailable(len(reads))


class StoreWorkers:
    """Store worker processes; `store` hands a batch to an idle one and waits for its outcomes.

    A worker that dies (killed, or crashed by an image) or stops answering fails only its batch,
    `unavailable`, and is replaced. It may have committed the batch first: the cameras send the
    reads again and are answered with the stored records (README "Sending reads")."""

    def __init__(self, setup: WorkerSetup, count: int):
        self.setup = setup
        self.on_restart: Callable[[], None] = lambda: None  # /metrics counts the replacements
        self.idle: queue.Queue[_Worker] = queue.Queue()
        started = [_Worker(setup) for _ in range(count)]
        for worker in started:  # before the daemon listens: no camera's first read waits for a start
            try:
                worker.wait_ready()
            except (OSError, EOFError, pickle.PickleError) as exc:
                for each in started:
                    each.stop()
                raise RuntimeError(f"a store worker could not start ({exc!r}); its error is above") from None
            self.idle.put(worker)

    def store(self, reads: list[PreparedRead]) -> list[Outcome]:
        worker = self.idle.get()
        try:
            return worker.call(reads)
        except (OSError, EOFError, pickle.PickleError) as exc:
            # A worker that died may have left files of this batch: the orphan sweep removes them.
            log.warning("event=store_worker_failed error=%r", str(exc) or exc.__class__.__name__)
            worker.stop()
            worker = _Worker(self.setup)
            self.on_restart()
            return unavailable(len(reads))
        finally:
            self.idle.put(worker)

    def stop(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().stop()


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
        _send(ours, setup)

    def wait_ready(self) -> None:
        """Wait until the worker has imported everything and can take a batch (about 2 s after its start
        here: the first read after a start in CI waited 1.98 s for it)."""
        if not self.ready:
            if _receive(self.sock) != READY:
                raise EOFError("the store worker did not say it was ready")
            self.ready = True

    def call(self, reads: list[PreparedRead]) -> list[Outcome]:
        self.wait_ready()
        _send(self.sock, reads)
        return _receive(self.sock)

    def stop(self) -> None:
        self.sock.close()
        try:
            self.process.kill()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass


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
    engine = create_engine(setup.database_uri, **setup.engine_options)
    threads = ThreadPoolExecutor(IMAGE_THREADS[setup.image_sync])
    # With IMAGE_STORE=s3 these threads check the images and the store uploads them with threads of its own.
    store = image_store_from_config(setup.image_config(),
                                    lambda function, items: list(threads.map(function, items)))
    try:
        _send(sock, READY)
    except OSError:
        return
    warm_up(engine)  # after READY: the daemon's start never waits on the database
    while True:
        try:
            reads = _receive(sock)
            _send(sock, store_batch(engine, store, setup.settings, reads))
        except (EOFError, OSError):
            return  # the daemon is gone


if __name__ == "__main__":
    main(sys.argv[1:])
