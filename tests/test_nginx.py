"""The shipped nginx site, for real: nginx on loopback in front of gunicorn and the ingest daemon."""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
import socketio
import websocket

from .imagegen import data_uri, make_jpeg
from .pgcluster import free_port
from .processes import ROOT, Daemon, wait_for_port
from .test_ingest import close_client
from .webserver import csrf_token

NGINX = "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (./setup.sh test)")


class UnixHTTPConnection(http.client.HTTPConnection):
    """Talk HTTP to gunicorn's unix socket, as nginx does."""

    def __init__(self, path: str):
        super().__init__("localhost", timeout=10)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.socket_path)


def site_config(work: Path, port: int, daemon_port: int, static: Path, images: Path, sock: Path) -> Path:
    """Write the shipped site and snippet with this test's paths and ports, and an nginx.conf around them."""
    snippet = (ROOT / "nginx" / "lprserver-locations.conf").read_text()
    snippet = snippet.replace("/opt/lprserver/static/", f"{static}/").replace(
        "/var/lib/lprserver/images/", f"{images}/")
    (work / "locations.conf").write_text(snippet)
    site = (ROOT / "nginx" / "lprserver.conf").read_text()
    site = site.replace("unix:/run/lprserver/web.sock", f"unix:{sock}")
    site = site.replace("127.0.0.1:8765", f"127.0.0.1:{daemon_port}")
    site = site.replace("/etc/nginx/snippets/lprserver-locations.conf", str(work / "locations.conf"))
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)
    (work / "site.conf").write_text(site)
    temp_paths = "\n".join(f"    {kind}_temp_path {work}/{kind};" for kind in
                           ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = work / "nginx.conf"
    conf.write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {work}/access.log;
{temp_paths}
    include {work}/site.conf;
}}
""")
    return conf


@pytest.fixture(scope="module")
def stack(base_env, image_root):
    """nginx → gunicorn (web app) and nginx → ingest daemon, all on loopback."""
    work = Path(tempfile.mkdtemp(prefix="lpr-nginx-"))
    static = work / "static"
    static.mkdir()
    (static / "app.css").write_text("body { color: black; }\n")
    sock, port = work / "web.sock", free_port()
    env = {**os.environ, **base_env, "IMAGE_ACCEL_REDIRECT": "/_images/",
           "HEARTBEAT_FILE": str(work / "heartbeat"), "HEARTBEAT_INTERVAL": "0.5"}
    daemon = Daemon(env, work / "daemon.log").start()
    gunicorn = _spawn([str(Path(sys.executable).parent / "gunicorn"), "-k", "gevent", "-w", "1",
                       "--bind", f"unix:{sock}", "--no-control-socket", "wsgi:app"], work / "gunicorn.log", cwd=ROOT, env=env)
    conf = site_config(work, port, daemon.port, static, image_root, sock)
    subprocess.run([NGINX, "-t", "-p", str(work), "-c", str(conf)], check=True, capture_output=True)
    nginx = _spawn([NGINX, "-p", str(work), "-c", str(conf), "-g", "daemon off;"], work / "nginx.out")
    try:
        wait_for_port(port, nginx)
        _wait_for_socket(sock, gunicorn)
        yield {"url": f"http://127.0.0.1:{port}", "port": port, "sock": str(sock), "work": work}
    finally:
        for proc in (nginx, gunicorn):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        daemon.stop()
        if os.environ.get("LPR_KEEP_NGINX") is None:
            shutil.rmtree(work, ignore_errors=True)


def _spawn(command: list, log_path: Path, **kwargs) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **kwargs)


def _wait_for_socket(path: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited before listening")
        if path.exists():
            return
        time.sleep(0.1)
    raise RuntimeError("gunicorn did not create its socket")


def _camera_read(stack) -> dict:
    """Send one read with an image through nginx's /ingest/ path, as a camera with TLS would."""
    client = socketio.Client(reconnection=False)
    client.connect(stack["url"], transports=["websocket"], socketio_path="ingest/socket.io", wait_timeout=10)
    try:
        return client.call("lpr_data", {"camera_id": "CAMNGX", "plate_number": "NG1234",
                                        "image_data": data_uri(make_jpeg(320, 240))}, timeout=10)
    finally:
        close_client(client)


def test_a_page_loads_through_nginx_with_security_headers(stack, app):
    if "auth.login" in app.view_functions:  # the sign-in page, once the web pages exist
        answer = requests.get(f"{stack['url']}/login", timeout=10)
        assert answer.status_code == 200 and "text/html" in answer.headers["Content-Type"]
    else:
        answer = requests.get(f"{stack['url']}/health", timeout=10)
        assert answer.status_code in (200, 503) and "checks" in answer.json()
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert "default-src 'self'" in answer.headers["Content-Security-Policy"]
    assert "Server" not in answer.headers or "nginx/" not in answer.headers["Server"]


def test_health_through_nginx_sees_the_daemon_heartbeat(stack, app):
    deadline = time.monotonic() + 10
    while requests.get(f"{stack['url']}/health", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, requests.get(f"{stack['url']}/health", timeout=10).json()
        time.sleep(0.3)


def test_static_files_come_from_nginx_with_long_cache_headers(stack):
    answer = requests.get(f"{stack['url']}/static/app.css", timeout=10)
    assert answer.status_code == 200 and "color: black" in answer.text
    max_age = int(re.search(r"max-age=(\d+)", answer.headers["Cache-Control"]).group(1))
    assert max_age >= 7 * 24 * 3600
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_browser_socketio_client_connects_over_websocket_through_nginx(stack, app, users):
    client = socketio.Client(reconnection=False)
    http = requests.Session()
    token = csrf_token(http.get(f"{stack['url']}/login", timeout=10).text)
    http.post(f"{stack['url']}/login", timeout=10, allow_redirects=False,
              data={"username": "viewer", "password": users["viewer"], "csrf_token": token})
    try:
        # Signed in (the session cookie): the live channel turns anonymous users away.
        client.connect(stack["url"], transports=["websocket"], wait_timeout=10,
                       headers={"Cookie": "; ".join(f"{c.name}={c.value}" for c in http.cookies)})
        assert client.connected and client.transport() == "websocket"
    finally:
        close_client(client)


def test_a_camera_reaches_the_daemon_through_nginx_with_socketio(stack, app):
    answer = _camera_read(stack)
    assert answer["status"] == "success" and answer["record_id"] > 0


def test_a_camera_reaches_the_daemon_through_nginx_with_raw_websocket(stack, app):
    ws = websocket.create_connection(f"ws://127.0.0.1:{stack['port']}/ingest/", timeout=10)
    try:
        ws.send(json.dumps({"table": "lpr_detection", "action": "insert",
                            "data": {"license_plate": "RAW1", "checkpoint_id": "7", "confidence": 90}}))
        answer = json.loads(ws.recv())
    finally:
        ws.close()
    assert answer["status"] == "success" and answer["table"] == "lpr_detection"


def test_images_are_sent_by_nginx_only_to_a_signed_in_user(stack, app, api_token):
    record_id = _camera_read(stack)["record_id"]
    path = f"/api/records/{record_id}/image"
    assert requests.get(stack["url"] + path, timeout=10).status_code == 401

    # The app itself answers with an X-Accel-Redirect and no bytes ...
    conn = UnixHTTPConnection(stack["sock"])
    conn.request("GET", path, headers={"Authorization": f"Bearer {api_token}"})
    direct = conn.getresponse()
    accel, body = direct.getheader("X-Accel-Redirect"), direct.read()
    conn.close()
    assert direct.status == 200 and accel.startswith("/_images/") and body == b""

    # ... which nginx turns into the file.
    answer = requests.get(stack["url"] + path, headers={"Authorization": f"Bearer {api_token}"}, timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg"
    assert answer.content[:3] == b"\xff\xd8\xff" and "X-Accel-Redirect" not in answer.headers
    thumb = requests.get(f"{stack['url']}/api/records/{record_id}/thumbnail",
                         headers={"Authorization": f"Bearer {api_token}"}, timeout=10)
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"

    # The internal location is not reachable from outside.
    assert requests.get(stack["url"] + accel, timeout=10).status_code == 404


def test_metrics_are_refused_to_other_hosts_by_nginx(stack):
    # From loopback nginx passes it on; the app still wants METRICS_TOKEN (unset here: 404).
    assert requests.get(f"{stack['url']}/metrics", timeout=10).status_code == 404
    snippet = (ROOT / "nginx" / "lprserver-locations.conf").read_text()
    assert re.search(r"location = /metrics \{\s*allow 127\.0\.0\.1;\s*allow ::1;\s*deny all;", snippet)
