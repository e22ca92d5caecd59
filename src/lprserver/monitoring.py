"""Health and metrics of the web app: GET /health (no sign-in, no data) and GET /metrics (token)."""

import hmac
import time

from flask import Blueprint, Flask, abort, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from .extensions import csrf, db
from .heartbeat import read_heartbeat
from .image_store import image_store_for
from .models import BlacklistDetection, Camera, Record

bp = Blueprint("monitoring", __name__)


def init_app(app: Flask) -> None:
    registry = CollectorRegistry()
    app.extensions["lprserver.metrics"] = {
        "registry": registry,
        "requests": Counter("lpr_http_requests", "HTTP requests answered by the web app",
                            ["method", "endpoint", "status"], registry=registry),
        "latency": Histogram("lpr_http_request_seconds", "Time to answer an HTTP request",
                             ["endpoint"], registry=registry),
    }
    registry.register(DatabaseCollector(app))
    app.before_request(_start_timer)
    app.after_request(_count_request)
    app.register_blueprint(bp)
    csrf.exempt(bp)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _count_request(response):
    metrics = current_app.extensions["lprserver.metrics"]
    endpoint = request.endpoint or "unknown"
    metrics["requests"].labels(request.method, endpoint, str(response.status_code)).inc()
    if "metrics_started" in g:
        metrics["latency"].labels(endpoint).observe(time.perf_counter() - g.metrics_started)
    return response


class DatabaseCollector:
    """Totals read from the database at scrape time (shared by the daemon and the web app)."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        with self.app.app_context():
            records = db.session.scalar(select(func.count()).select_from(Record))
            online = db.session.scalar(select(func.count()).select_from(Camera).where(Camera.online))
            hits = db.session.scalar(select(func.count()).select_from(BlacklistDetection))
            db.session.remove()
        yield GaugeMetricFamily("lpr_records_stored", "Records in the database", value=records)
        yield GaugeMetricFamily("lpr_cameras_online", "Cameras marked online", value=online)
        yield GaugeMetricFamily("lpr_blacklist_detections_stored", "Blacklist hits in the database",
                                value=hits)


def metrics_allowed(token: str, authorization: str) -> bool:
    """Metrics are off without METRICS_TOKEN, and need it as a Bearer token when it is set."""
    scheme, _, presented = authorization.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(presented.strip(), token)


@bp.get("/metrics")
def metrics():
    if not metrics_allowed(current_app.config["METRICS_TOKEN"], request.headers.get("Authorization", "")):
        abort(404)
    registry = current_app.extensions["lprserver.metrics"]["registry"]
    return generate_latest(registry), 200, {"Content-Type": CONTENT_TYPE_LATEST}


@bp.get("/health")
def health():
    """Answer 200 when the database, the image store and the daemon are fine, 503 otherwise. The image
    store's check is `image_disk` (free space, writable) or, with IMAGE_STORE=s3, `image_store` (the
    bucket answers)."""
    config = current_app.config
    store, store_check = image_store_for(current_app).health(config["HEALTH_MIN_FREE_MB"])
    checks = {
        "database": _database_check(),
        store: store_check,
        "ingest_daemon": _daemon_check(config["HEARTBEAT_FILE"], config["HEARTBEAT_MAX_AGE"]),
    }
    ok = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if ok else "fail", "checks": checks}
    return jsonify(body), 200 if ok else 503, {"Cache-Control": "no-store"}


def _database_check() -> dict:
    started = time.perf_counter()
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not reachable" to a load balancer
        db.session.rollback()
        current_app.logger.warning("event=health_database_failed error=%s", exc.__class__.__name__)
        return {"ok": False}
    return {"ok": True, "seconds": round(time.perf_counter() - started, 4)}


def _daemon_check(path: str, max_age: float) -> dict:
    beat = read_heartbeat(path)
    if beat is None:
        return {"ok": False, "heartbeat_age_seconds": None}
    return {"ok": beat["age"] <= max_age, "heartbeat_age_seconds": round(beat["age"], 1)}
