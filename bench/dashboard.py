"""The web app as production serves it (gunicorn, one gevent worker) and one signed-in dashboard.

The dashboard is a python-socketio client that does what static/js/live.js does in a browser: it signs in
over HTTP (CSRF token, session cookie), connects to the web app's Socket.IO with that cookie, takes
`new_record` events, and on every reconnect fetches `/live/missed?after=<last id it saw>` once.

It is the asyncio client on an event loop of its own thread: the threaded client starts an OS thread
for every event and checks UTF-8 in pure Python, which cost 0.5 ms of the machine's CPU per read at
350 reads/s, CPU the server under test then lacked.
"""

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import requests
import socketio

from tests import processes
from tests.pgcluster import free_port

from .common import ClientJson, percentile

USERNAME, PASSWORD = "bench-viewer", "bench-viewer-password-123"


class WebApp(processes.WebApp):
    """The real web app under gunicorn with the gevent worker (as systemd/lprserver.service runs it)."""

    def __init__(self, env: dict, log_path: Path, port: int | None = None):
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        # TCP instead of the unit's unix socket; a short graceful timeout, since browsers never leave.
        command = [gunicorn, "--worker-class", "gevent", "--workers", "1", "--bind", "127.0.0.1:{port}",
                   "--timeout", "60", "--graceful-timeout", "5", "--no-control-socket", "wsgi:app"]
        super().__init__(env, log_path, command, port)

    @property
    def pid(self) -> int:
        return self.process.pid

    def health(self) -> dict:
        answer = requests.get(f"{self.url}/health", timeout=10)
        return {"http_status": answer.status_code, **answer.json()}


def web_env(daemon_env: dict) -> dict:
    """The web app's settings: the daemon's database, image folder, heartbeat and SECRET_KEY."""
    keep = ("FLASK_CONFIG", "SECRET_KEY", "DATABASE_URL", "IMAGE_STORAGE_PATH", "HEARTBEAT_FILE",
            "LOG_LEVEL", "HEALTH_MIN_FREE_MB")
    return {**{k: daemon_env[k] for k in keep if k in daemon_env},
            "ASYNC_MODE": "gevent", "SESSION_COOKIE_SECURE": "off"}  # plain HTTP on loopback


def create_user(env: dict) -> None:
    """Create the dashboard's user as an admin would (`flask lpr create-user`)."""
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "lpr", "create-user", USERNAME,
                    "--role", "viewer", "--password", PASSWORD], cwd=processes.ROOT,
                   env={**os.environ, **env}, check=True, capture_output=True, timeout=60)


class Dashboard:
    """One signed-in dashboard page: what reached it, when, and how (live event or catch-up fetch)."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()
        self.seen: dict[int, tuple[float, str]] = {}  # record id -> (first arrival, "live" | "catchup")
        self.last_id: int | None = None  # the page's lastRecordId
        self.repeats = 0  # live events for a read the page had already (live.js skips them)
        self.out_of_order = 0  # live events with an id below the highest seen (shown all the same)
        self.connects: list[float] = []
        self.disconnects: list[float] = []
        self.catchups: list[dict] = []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dashboard", daemon=True)
        self.thread.start()
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=1, reconnection_delay_max=5,
                                        randomization_factor=0.5,  # socket.io-client's defaults
                                        json=ClientJson, http_session=self._http_session)
        self.sio.on("connect", self._connected)
        self.sio.on("disconnect", self._disconnected)
        self.sio.on("new_record", self._new_record)

    def _http_session(self) -> aiohttp.ClientSession:
        """What engine.io calls for each connection: a new aiohttp session holding the page's cookies. (A
        Cookie header given to connect() is moved into the first session and lost when it closes, so
        every reconnect was refused as signed out.)"""
        return aiohttp.ClientSession(cookies={c.name: c.value for c in self.http.cookies})

    def _run(self, coroutine, timeout: float = 30):
        """Run a coroutine on the dashboard's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def sign_in(self) -> "Dashboard":
        page = self.http.get(f"{self.url}/login", timeout=10)
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        answer = self.http.post(f"{self.url}/login", timeout=10, allow_redirects=False,
                                data={"username": USERNAME, "password": PASSWORD, "csrf_token": token})
        if answer.status_code != 302:
            raise RuntimeError(f"the dashboard could not sign in: HTTP {answer.status_code}")
        return self

    def connect(self) -> "Dashboard":
        self._run(self.sio.connect(self.url, transports=["websocket"], wait_timeout=10))
        return self

    def close(self) -> None:
        """Disconnect and stop the page's loop; closing it again does nothing (scenarios may)."""
        if not self.thread.is_alive():
            return
        try:
            self._run(self.sio.disconnect())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.http.close()

    async def _connected(self) -> None:
        self.connects.append(time.time())
        threading.Thread(target=self._catch_up, daemon=True).start()  # live.js does not wait for it either

    async def _disconnected(self, *args) -> None:
        self.disconnects.append(time.time())

    def _note(self, record_id: int, how: str) -> None:
        if record_id not in self.seen:
            self.seen[record_id] = (time.time(), how)
        if self.last_id is None or record_id > self.last_id:
            self.last_id = record_id

    async def _new_record(self, record: dict) -> None:
        with self.lock:
            if record["id"] in self.seen:
                self.repeats += 1
            elif self.last_id is not None and record["id"] < self.last_id:
                self.out_of_order += 1
            self._note(record["id"], "live")

    def _catch_up(self) -> None:
        """What live.js does on connect: one GET /live/missed after the last id seen (100 records at most)."""
        after = self.last_id
        query = "" if after is None else f"?after={after}"
        try:
            answer = self.http.get(f"{self.url}/live/missed{query}", timeout=10)
            records = answer.json()["records"] if answer.ok else []
        except (requests.RequestException, ValueError):
            records = []
        with self.lock:
            for record in records:
                self._note(record["id"], "catchup")
        self.catchups.append({"at": time.time(), "after": after, "records": len(records)})

    def wait_reconnected(self, since: float, timeout: float = 20) -> bool:
        """Wait until the page has connected again after `since` (its back-off is up to 5 s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(t > since for t in self.connects):
                return True
            time.sleep(0.1)
        return False

    def wait_quiet(self, expected: set[int], timeout: float = 15, quiet: float = 2) -> None:
        """Wait until every expected record arrived, or nothing new came for `quiet` s, or `timeout`."""
        deadline, last_count, last_change = time.monotonic() + timeout, -1, time.monotonic()
        while time.monotonic() < deadline:
            if expected <= self.seen.keys():
                return
            if len(self.seen) != last_count:
                last_count, last_change = len(self.seen), time.monotonic()
            elif time.monotonic() - last_change > quiet:
                return
            time.sleep(0.2)

    def report(self, answered: dict[int, float]) -> dict:
        """Match what reached the page with the acknowledged reads (record id -> answer time)."""
        how = {i: self.seen[i][1] for i in answered if i in self.seen}
        live = [(self.seen[i][0] - t) * 1000 for i, t in answered.items() if how.get(i) == "live"]
        caught_up = sum(1 for i in answered if how.get(i) == "catchup")
        return {
            "acked_records": len(answered), "live_events": len(live), "caught_up_on_reconnect": caught_up,
            "never_reached": sum(1 for i in answered if i not in self.seen),
            "answer_to_event_ms": {"p50": percentile(live, 50), "p95": percentile(live, 95),
                                   "p99": percentile(live, 99), "max": max(live, default=None)},
            "repeated_events": self.repeats, "out_of_order_events": self.out_of_order,
            "connects": len(self.connects), "disconnects": len(self.disconnects), "catchups": self.catchups,
        }


class LiveSite:
    """The web app and one signed-in dashboard, for a daemon whose live relay points at them."""

    def __init__(self, work: Path, name: str):
        self.work, self.name = work, name
        self.port = free_port()
        self.web: WebApp | None = None
        self.dashboard: Dashboard | None = None

    def daemon_env(self) -> dict:
        """What the daemon needs: where to relay, and a heartbeat file the web app's /health reads."""
        return {"LIVE_RELAY_URL": f"http://127.0.0.1:{self.port}/internal/live",
                "HEARTBEAT_FILE": str(self.work / f"heartbeat-{self.name}")}

    def start(self, daemon_env: dict) -> "LiveSite":
        env = web_env(daemon_env)
        create_user(env)
        self.web = WebApp(env, self.work / f"web-{self.name}.log", self.port).start()
        self.dashboard = Dashboard(self.web.url).sign_in().connect()
        return self

    def dashboard_report(self, answered: dict[int, float], timeout: float = 15) -> dict:
        """Let the last events arrive, then match them with the acknowledged reads."""
        self.dashboard.wait_quiet(set(answered), timeout)
        return self.dashboard.report(answered)

    def stop(self) -> None:
        if self.dashboard:
            self.dashboard.close()
        if self.web:
            self.web.stop()
