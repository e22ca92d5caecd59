"""Our own servers (daemon, web app) run as subprocesses on free loopback ports, for tests."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from .pgcluster import free_port

ROOT = Path(__file__).resolve().parents[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


class ServiceProcess:
    """A server of this project in a subprocess; subclasses name its command and port setting."""

    port_setting = ""
    host_setting = ""
    default_command: list[str] = []

    def __init__(self, env: dict, log_path: Path, command: list[str] | None = None, port: int | None = None):
        self.env = env
        self.log_path = log_path
        self.port = port or free_port()
        self.command = command or self.default_command
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        env = {**os.environ, **self.env, self.port_setting: str(self.port), self.host_setting: "127.0.0.1"}
        command = [part.format(port=self.port) for part in self.command]
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process)
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Daemon(ServiceProcess):
    """The real ingest daemon (`python websocket_server.py`)."""

    port_setting, host_setting = "INGEST_PORT", "INGEST_HOST"
    default_command = [sys.executable, "websocket_server.py"]

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False
        # 503 is an answer too: the daemon is up but says its image disk cannot take writes.
        return requests.get(f"{self.url}/health", timeout=5).status_code in (200, 503)


class WebApp(ServiceProcess):
    """The real web app (`python run.py`, gevent), or another command serving it on {port}."""

    port_setting, host_setting = "WEB_PORT", "WEB_HOST"
    default_command = [sys.executable, "run.py"]
