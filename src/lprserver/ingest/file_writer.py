"""File writers: helper processes that write a batch's images, so the daemon's loop never does.

Writing an image is a dozen system calls (create, write, fsync, rename, thumbnail,
folder fsync). From threads of the daemon, every one of them hands the GIL back and
then queues for it behind the busy event loop, which made writing a batch of 64
images take 140–500 ms. A file writer is a process with a GIL of its own: the
writer greenlet sends it the whole batch in one message over a socketpair and gets
back, per image, where it is or the OSError that refused it. A writer exits when
its socket closes (the daemon is gone).

    python -m lprserver.ingest.file_writer FD ROOT
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

from ..images import CheckedImage, FilesystemImageStore, StoredImage

log = logging.getLogger("lprserver.ingest")
_LENGTH = struct.Struct("!I")
WRITER_TIMEOUT = 60.0  # seconds a batch's files may take before the writer is replaced


class FileWriterStore(FilesystemImageStore):
    """The image store whose `save_many` runs in file writer processes (one batch at a time each)."""

    def __init__(self, root: str, writers: int):
        super().__init__(root)
        self.idle: queue.Queue[_Writer] = queue.Queue()
        for _ in range(writers):
            self.idle.put(_Writer(str(self.root)))

    def save_many(self, jobs: list[tuple[CheckedImage | None, str]],
                  received_at: datetime) -> list[StoredImage | OSError | None]:
        writer = self.idle.get()
        try:
            return writer.call((jobs, received_at))
        except (OSError, EOFError, pickle.PickleError) as exc:
            # A writer that died may have left files of this batch: the orphan sweep removes them.
            log.warning("event=file_writer_failed error=%r", str(exc) or exc.__class__.__name__)
            writer.stop()
            writer = _Writer(str(self.root))
            failed = OSError(f"the file writer failed: {exc.__class__.__name__}")
            return [failed if image is not None else None for image, _ in jobs]
        finally:
            self.idle.put(writer)

    def stop(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().stop()


class _Writer:
    def __init__(self, root: str):
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lprserver.ingest.file_writer", str(theirs.fileno()), root],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
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


def _send(sock: socket.socket, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LENGTH.pack(len(data)) + data)


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
    return bytes(buffer)


def main(argv: list[str]) -> None:
    fd, root = int(argv[0]), argv[1]
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)  # the daemon's async library made its socketpair non-blocking
    threads = ThreadPoolExecutor(16)  # the fsyncs of a batch at once; no event loop to wait behind here
    store = FilesystemImageStore(root, lambda function, items: list(threads.map(function, items)))
    while True:
        try:
            jobs, received_at = _receive(sock)
        except (EOFError, OSError):
            return  # the daemon is gone
        _send(sock, store.save_many(jobs, received_at))


if __name__ == "__main__":
    main(sys.argv[1:])
