"""Prometheus metrics of the ingest daemon: a listener of every answered message (`Ingest.listeners`)."""

import logging

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from ..monitoring import DatabaseCollector, metrics_allowed

log = logging.getLogger("lprserver.ingest")


class IngestMetrics:
    """Counts reads, rejects by code, answer latency, blacklist hits, cameras and queue depth."""

    def __init__(self, ingest, token: str):
        self.ingest = ingest
        self.token = token
        self.registry = registry = CollectorRegistry()
        self.reads = Counter("lpr_ingest_reads", "Reads stored (duplicates included)",
                             ["duplicate"], registry=registry)
        self.rejects = Counter("lpr_ingest_rejects", "Messages refused, by error code",
                               ["event", "code"], registry=registry)
        self.blacklist_hits = Counter("lpr_ingest_blacklist_hits", "Reads that hit the blacklist",
                                      registry=registry)
        self.latency = Histogram("lpr_ingest_answer_seconds", "Time from message to answer",
                                 ["event"], registry=registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        Gauge("lpr_ingest_in_flight", "Messages being handled or waiting for a slot",
              registry=registry).set_function(lambda: sum(ingest.inflight.values()))
        Gauge("lpr_ingest_slots_free", "Free database slots (INGEST_MAX_INFLIGHT minus busy)",
              registry=registry).set_function(lambda: _free_slots(ingest.gate))
        Gauge("lpr_ingest_connections", "Open camera connections",
              registry=registry).set_function(lambda: len(ingest.presence.cameras))
        Gauge("lpr_ingest_cameras_connected", "Cameras with an open connection",
              registry=registry).set_function(ingest.presence.connected_cameras)
        Gauge("lpr_ingest_queued_reads", "Checked reads waiting for a writer (group commit)",
              registry=registry).set_function(ingest.writer.queued)
        batch_reads = Histogram("lpr_ingest_batch_reads", "Reads stored per transaction (group commit)",
                                registry=registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        batch_seconds = Histogram("lpr_ingest_batch_seconds", "Time to store one batch, images and commit",
                                  registry=registry,
                                  buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))

        def batch_done(reads: int, seconds: float) -> None:
            batch_reads.observe(reads)
            batch_seconds.observe(seconds)

        ingest.writer.on_batch = batch_done
        if ingest.workers is not None:
            ingest.workers.on_restart = Counter(
                "lpr_ingest_store_worker_restarts", "Store workers that died or stalled and were replaced",
                registry=registry).inc
        registry.register(DatabaseCollector(ingest.app))
        ingest.listeners.append(self.answered)

    def answered(self, event: str, payload, answer: dict, seconds: float) -> None:
        """Count one answered message, and log a stored read."""
        self.latency.labels(event).observe(seconds)
        camera = payload.get("camera_id") if isinstance(payload, dict) else None
        camera = camera if isinstance(camera, str) else "-"
        if answer.get("status") != "success":
            self.rejects.labels(event, answer.get("code", "unknown")).inc()
            return
        if event != "read":
            log.info("event=%s_ok camera_id=%s ms=%.1f", event, camera[:64], seconds * 1000)
            return
        self.reads.labels(str(bool(answer.get("duplicate"))).lower()).inc()
        if answer.get("blacklisted"):
            self.blacklist_hits.inc()
        log.info("event=read_stored camera_id=%s record_id=%s duplicate=%s blacklisted=%s ms=%.1f",
                 camera[:64], answer.get("record_id"), str(bool(answer.get("duplicate"))).lower(),
                 str(bool(answer.get("blacklisted"))).lower(), seconds * 1000)

    def wsgi(self, environ, start_response):
        """Serve /metrics on the daemon's port (404 unless METRICS_TOKEN is set and presented)."""
        if not metrics_allowed(self.token, environ.get("HTTP_AUTHORIZATION", "")):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        data = generate_latest(self.registry)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(data)))])
        return [data]


def _free_slots(gate) -> int:
    # threading's semaphore keeps `_value`; eventlet's green one keeps `counter`.
    return getattr(gate, "_value", getattr(gate, "counter", -1))
