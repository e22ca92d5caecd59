"""Group commit: reads from many cameras stored together, one transaction per batch.

Each camera's read is checked on its own (fields, token) and then handed to a
writer. A writer takes every read waiting at that moment (up to a limit) and
stores them with `ingest_reads` (in the daemon, in a store worker process):
one query for their cameras, one for repeats, the batch's images checked and
written together, one query for blacklist hits, one insert and one commit, the
images synced to disk before it (images.py, IMAGE_SYNC). A read is answered
only after its batch commits, so the delivery guarantee (README "Sending reads") is the same
as storing one read per transaction, at a fraction of the cost per read. Under
light load a batch is a single read and nothing waits for company.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import IngestError, unavailable
from .pipeline import Outcome, PreparedRead

log = logging.getLogger("lprserver.ingest")


@dataclass
class _Job:
    read: PreparedRead
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


class GroupCommit:
    """Writers that store queued reads in batches; `store` blocks its caller until its batch commits."""

    def __init__(self, store_batch: Callable[[list[PreparedRead]], list[Outcome]],
                 gate: threading.BoundedSemaphore, writers: int, max_batch: int, busy_timeout: float):
        self.store_batch, self.gate = store_batch, gate
        self.writers, self.max_batch, self.busy_timeout = writers, max_batch, busy_timeout
        self._queue: queue.Queue[_Job] = queue.Queue()
        # Called after each batch with (reads, seconds spent storing them): /metrics listens.
        self.on_batch: Callable[[int, float], None] = lambda reads, seconds: None

    def start(self) -> "GroupCommit":
        for number in range(self.writers):
            threading.Thread(target=self._run, name=f"ingest-writer-{number}", daemon=True).start()
        return self

    def queued(self) -> int:
        return self._queue.qsize()

    def store_read(self, read: PreparedRead) -> Outcome:
        job = _Job(read)
        self._queue.put(job)
        job.done.wait()
        return job.outcome  # type: ignore[return-value]

    def _run(self) -> None:
        while True:
            jobs = [self._queue.get()]
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            started = time.monotonic()
            outcomes = self._store([job.read for job in jobs])
            for job, outcome in zip(jobs, outcomes, strict=True):
                job.outcome = outcome
                job.done.set()
            self.on_batch(len(jobs), time.monotonic() - started)  # after the answers: never holds them up

    def _store(self, reads: list[PreparedRead]) -> list[Outcome]:
        if not self.gate.acquire(timeout=self.busy_timeout):
            return [IngestError("unavailable", "the server is busy; retry later")] * len(reads)
        try:
            return self.store_batch(reads)
        except Exception:  # a writer that stopped here would leave every later read waiting
            log.exception("event=ingest_failed reads=%d", len(reads))
            return unavailable(len(reads))
        finally:
            self.gate.release()
