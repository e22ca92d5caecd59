"""Group commit: reads from many cameras stored together, one transaction per batch.

Each camera's read is checked on its own (fields, token) and then handed to a
writer. A writer takes every read waiting at that moment (up to a limit) and
stores them with `ingest_reads` (in the daemon, in a store worker process):
one query for their cameras, one for repeats, the batch's images checked and
written together, one query for blacklist hits, one insert and one commit, the
images synced to disk before it (images.py, IMAGE_SYNC). A read is answered
only after its batch commits, so the delivery guarantee (SPEC §2.5) is the same
as storing one read per transaction, at a fraction of the cost per read. Under
light load a batch is a single read and nothing waits for company.

Each writer has a queue of its own, and a read joins the writer with the fewest
reads queued or in hand. That lets a store worker start on a read's image as
soon as the read arrives (`prepare`, store_worker.py), so by the time its batch
is stored the image is checked; the batch then holds the worker for its files
and statements only.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import IngestError
from .pipeline import Outcome, PreparedRead
from .store_worker import unavailable

log = logging.getLogger("lprserver.ingest")


@dataclass
class _Job:
    read: Any  # what `prepare` made of the read; `store_batch` gets it back
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


class GroupCommit:
    """Writers that store queued reads in batches; `store` blocks its caller until its batch commits.

    `store_batch(writer, reads)` stores a batch for writer number `writer`; `prepare(writer, read)`
    runs as a read joins that writer's queue and returns what `store_batch` will get for it."""

    def __init__(self, store_batch: Callable[[int, list[Any]], list[Outcome]],
                 gate: threading.BoundedSemaphore, writers: int, max_batch: int, busy_timeout: float,
                 prepare: Callable[[int, PreparedRead], Any] = lambda writer, read: read):
        self.store_batch, self.prepare, self.gate = store_batch, prepare, gate
        self.writers, self.max_batch, self.busy_timeout = writers, max_batch, busy_timeout
        self._queues: list[queue.Queue[_Job]] = [queue.Queue() for _ in range(writers)]
        self._in_hand = [0] * writers  # reads of the batch each writer is storing
        # Called after each batch with (reads, seconds spent storing them): /metrics listens.
        self.on_batch: Callable[[int, float], None] = lambda reads, seconds: None

    def start(self) -> "GroupCommit":
        for number in range(self.writers):
            threading.Thread(target=self._run, args=(number,), name=f"ingest-writer-{number}",
                             daemon=True).start()
        return self

    def queued(self) -> int:
        return sum(q.qsize() for q in self._queues)

    def store_read(self, read: PreparedRead) -> Outcome:
        writer = min(range(self.writers), key=lambda n: self._queues[n].qsize() + self._in_hand[n])
        job = _Job(self.prepare(writer, read))
        self._queues[writer].put(job)
        job.done.wait()
        return job.outcome  # type: ignore[return-value]

    def _run(self, writer: int) -> None:
        waiting = self._queues[writer]
        while True:
            jobs = [waiting.get()]
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(waiting.get_nowait())
                except queue.Empty:
                    break
            self._in_hand[writer] = len(jobs)
            started = time.monotonic()
            outcomes = self._store(writer, [job.read for job in jobs])
            self._in_hand[writer] = 0
            for job, outcome in zip(jobs, outcomes, strict=True):
                job.outcome = outcome
                job.done.set()
            self.on_batch(len(jobs), time.monotonic() - started)  # after the answers: never holds them up

    def _store(self, writer: int, reads: list[Any]) -> list[Outcome]:
        if not self.gate.acquire(timeout=self.busy_timeout):
            return [IngestError("unavailable", "the server is busy; retry later")] * len(reads)
        try:
            return self.store_batch(writer, reads)
        except Exception:  # a writer that stopped here would leave every later read waiting
            log.exception("event=ingest_failed reads=%d", len(reads))
            return unavailable(len(reads))
        finally:
            self.gate.release()
