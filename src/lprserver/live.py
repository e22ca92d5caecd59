"""The live relay from the ingest daemon to the web app (README "Live updates"), without Redis.

The daemon's `LiveRelay.publish` only appends to a bounded queue; a background
thread (a greenlet once the daemon has monkey-patched) posts batches to the
web app's `/internal/live`, signed with an HMAC of SECRET_KEY. If the web app
is down or slow, events are dropped, oldest first: browsers that reconnect
reload what they missed from the database, and ingest never waits.
"""

import hashlib
import hmac
import http.client
import json
import logging
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger("lprserver.live")

SIGNATURE_HEADER = "X-LPR-Signature"
TIMESTAMP_HEADER = "X-LPR-Timestamp"
MAX_CLOCK_SKEW = 60  # seconds a signed batch stays acceptable
BATCH_SIZE = 100
RETRY_PAUSE = 2.0  # seconds to wait after the web app could not be reached


def relay_key(secret_key: str) -> bytes:
    """Return the relay's own key, derived from SECRET_KEY so that the raw key signs nothing else."""
    return hmac.new(secret_key.encode(), b"lprserver live relay", hashlib.sha256).digest()


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of a timestamped batch."""
    return hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(key: bytes, timestamp: str | None, signature: str | None, body: bytes,
           now: float | None = None) -> bool:
    """Tell whether a batch was signed with `key` within the last MAX_CLOCK_SKEW seconds."""
    if not timestamp or not signature:
        return False
    try:
        age = abs((now if now is not None else time.time()) - float(timestamp))
    except ValueError:
        return False
    return age <= MAX_CLOCK_SKEW and hmac.compare_digest(sign(key, timestamp, body), signature)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, for a web app served by gunicorn on one (http+unix://%2Frun%2F...)."""

    def __init__(self, socket_path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        import socket

        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class LiveRelay:
    """Forwards ingest events to the web app; publish() never blocks and never raises."""

    def __init__(self, url: str, secret_key: str, maxsize: int = 1000, timeout: float = 2.0):
        self.url = urlsplit(url)
        self.key = relay_key(secret_key)
        self.timeout = timeout
        self.queue: deque[dict[str, Any]] = deque(maxlen=maxsize)
        self.wakeup = threading.Event()
        self.dropped = 0
        self.sent = 0
        self.connections = 0  # opened so far: one is kept alive between batches
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None

    def publish(self, event: str, data: dict) -> None:
        """Queue one event for the web app (the oldest is dropped when the queue is full)."""
        try:
            if len(self.queue) == self.queue.maxlen:
                self.dropped += 1
            self.queue.append({"event": event, "data": data})
            self.wakeup.set()
        except Exception:  # a live update must never cost a read
            log.exception("could not queue live event %s", event)

    def start(self) -> "LiveRelay":
        self._thread = threading.Thread(target=self._run, name="live-relay", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            self.wakeup.wait()
            self.wakeup.clear()
            while self.queue:
                batch = [self.queue.popleft() for _ in range(min(BATCH_SIZE, len(self.queue)))]
                if not self._post(batch):
                    self.dropped += len(batch)
                    time.sleep(RETRY_PAUSE)

    def _post(self, batch: list[dict]) -> bool:
        body = json.dumps({"events": batch}, default=str).encode()
        timestamp = str(time.time())
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(self.key, timestamp, body)}
        # One kept-alive connection: at a site's average load (batches of about 4 reads) connecting and
        # closing for each batch was about half of the relay's CPU in the daemon (py-spy, 200 reads/s).
        for _ in range(2):
            reused = self._conn is not None
            try:
                if self._conn is None:
                    self._conn = self._connection()
                    self.connections += 1
                self._conn.request("POST", self.url.path or "/internal/live", body, headers)
                response = self._conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    self._close()
                break
            except (OSError, http.client.HTTPException) as exc:
                self._close()
                if reused and not isinstance(exc, TimeoutError):
                    continue  # the web app closed it while idle (gunicorn's keep-alive): again on a new one
                log.info("web app not reachable for live updates (%s); %d events dropped",
                         exc.__class__.__name__, len(batch))
                return False
        if status != 204:
            log.warning("web app refused live updates with HTTP %s", status)
            return False
        self.sent += len(batch)
        return True

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.url.scheme == "http+unix":
            return UnixHTTPConnection(unquote(self.url.netloc), self.timeout)
        if self.url.scheme == "https":
            return http.client.HTTPSConnection(self.url.hostname, self.url.port, timeout=self.timeout)
        return http.client.HTTPConnection(self.url.hostname, self.url.port or 80, timeout=self.timeout)


def relay_from_config(config) -> LiveRelay | None:
    """Return a started relay for the daemon, or None when LIVE_RELAY_URL is off."""
    url = config.get("LIVE_RELAY_URL") or ""
    if url.lower() in ("", "off", "none"):
        log.info("live relay off (LIVE_RELAY_URL is empty)")
        return None
    log.info("live updates go to %s", url)
    return LiveRelay(url, config["SECRET_KEY"], config.get("LIVE_RELAY_QUEUE", 1000)).start()
