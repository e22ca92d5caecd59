"""A real Redis for tests: Debian's redis-server on a free loopback port, with a password (so the
credentials of LIVE_MESSAGE_QUEUE are tested) and nothing kept on disk.

Import the fixture where it is used: `from .redisserver import redis_server`. Without redis-server the tests
that need it are skipped, naming what to install; under CI (CI=true) they fail instead, so a CI image that
lost the package does not pass by skipping them.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .pgcluster import free_port
from .processes import wait_for_port

REDIS_SERVER = "/usr/bin/redis-server"


def require_redis() -> None:
    """Skip (fail under CI) unless redis-server is installed."""
    if Path(REDIS_SERVER).exists():
        return
    message = "redis-server is not installed (./setup.sh test, or apt-get install redis-server)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}: CI must run the live message queue tests")
    pytest.skip(message)


class RedisServer:
    """One redis-server in a folder of its own, on loopback, with `password`."""

    host = "127.0.0.1"
    password = "queue-secret-Pa55word"

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """LIVE_MESSAGE_QUEUE for this server."""
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def start(self) -> "RedisServer":
        command = [REDIS_SERVER, "--bind", self.host, "--port", str(self.port), "--requirepass", self.password,
                   "--save", "", "--appendonly", "no", "--dir", str(self.folder), "--daemonize", "no"]
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process, timeout=20)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture(scope="module")
def redis_server():
    """A Redis of the test module's own."""
    require_redis()
    server = RedisServer(Path(tempfile.mkdtemp(prefix="lpr-test-redis-"))).start()
    yield server
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)
