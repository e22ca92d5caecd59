"""File writers: helper processes that check and write a batch's images, so the daemon never does.

Checking an image (base64, then a JPEG decode at 1/4 scale and a thumbnail) costs
about 1.2 ms of CPU, and writing it is several system calls (create, write, thumbnail;
then one syncfs per batch, or with IMAGE_SYNC=file an fsync and rename per image and an
fsync per folder). In threads of the daemon every one of those held
or queued for the GIL behind the busy event loop. A file writer is a process with
a GIL of its own: the writer greenlet sends it the whole batch, as the cameras sent
the images, in one message over a socketpair and gets back, per image, where it is,
or the ImageRejected or OSError that refused it. A writer exits when its socket
closes (the daemon is gone).

    python -m lprserver.ingest.file_writer FD ROOT SYNC
"""

import logging
import pickle
import queue
import socket
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from ..images import CheckedImage, FilesystemImageStore, ImageRejected, SentImage, StoredImage

log = logging.getLogger("lprserver.ingest")
_LENGTH = struct.Struct("!I")
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
WRITER_TIMEOUT = 60.0  # seconds a batch's files may take before the writer is replaced
# Threads in each writer, by IMAGE_SYNC. With an fsync per file, enough for the disk to merge a
# batch's fsyncs: batches of 64 cost 2.1-2.4 ms of CPU per image with 3-8 threads, 2.4-2.7 ms with
# 16 (GIL contention). With one syncfs per batch no thread waits on the disk; two let the JPEG
# decodes (Pillow lets go of the GIL) overlap: 1.6-1.8 ms per image with 1-2 threads, 2.0 with 6
# (batches of 32, the second of two passes).
WRITER_THREADS = {"batch": 2, "file": 6}


class FileWriterStore(FilesystemImageStore):
    """The image store whose `save_many` runs in file writer processes (one batch at a time each).

    A writer that dies (killed, or crashed by an image) fails only its batch, `unavailable`,
    and is replaced."""

    def __init__(self, root: str, writers: int, sync: str = "batch"):
        super().__init__(root, sync=sync)
        self.idle: queue.Queue[_Writer] = queue.Queue()
        for _ in range(writers):
            self.idle.put(_Writer(str(self.root), self.sync))

    def save_many(self, jobs: list[tuple[CheckedImage | SentImage | None, str]],
                  received_at: datetime) -> list[StoredImage | OSError | ImageRejected | None]:
        writer = self.idle.get()
        try:
            return writer.call((jobs, received_at))
        except (OSError, EOFError, pickle.PickleError) as exc:
            # A writer that died may have left files of this batch: the orphan sweep removes them.
            log.warning("event=file_writer_failed error=%r", str(exc) or exc.__class__.__name__)
            writer.stop()
            writer = _Writer(str(self.root), self.sync)
            failed = OSError(f"the file writer failed: {exc.__class__.__name__}")
            return [failed if image is not None else None for image, _ in jobs]
        finally:
            self.idle.put(writer)

    def stop(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().stop()


class _Writer:
    def __init__(self, root: str, sync: str):
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lprserver.ingest.file_writer", str(theirs.fileno()), root, sync],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        _widen(ours)
        ours.settimeout(WRITER_TIMEOUT)
        self.sock = ours

    def call(self, request: tuple) -> list:
        _send(self.sock, request)
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
            raise EOFError("file writer socket closed")
        got += n
    return buffer  # pickle.loads takes it as it is


def main(argv: list[str]) -> None:
    fd, root, sync = int(argv[0]), argv[1], argv[2]
    sock = socket.socket(fileno=fd)
    _widen(sock)
    sock.setblocking(True)  # the daemon's async library made its socketpair non-blocking
    threads = ThreadPoolExecutor(WRITER_THREADS[sync])
    store = FilesystemImageStore(root, lambda function, items: list(threads.map(function, items)), sync)
    while True:
        try:
            jobs, received_at = _receive(sock)
        except (EOFError, OSError):
            return  # the daemon is gone
        _send(sock, store.save_many(jobs, received_at))


if __name__ == "__main__":
    main(sys.argv[1:])
