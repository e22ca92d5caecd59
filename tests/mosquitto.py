"""A real MQTT broker for tests: Debian's Mosquitto on loopback ports, with a password (so the
credentials of MQTT_URL are tested) and a TLS listener signed by a throwaway CA (trustme).

Import the fixture where it is used: `from .mosquitto import mosquitto`. Without Mosquitto the tests
that need it are skipped, naming what to install; under CI (CI=true) they fail instead, so a CI image
that lost the package does not pass by skipping them.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .pgcluster import free_port
from .processes import wait_for_port

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "mosquitto_passwd"


def require_mosquitto() -> None:
    """Skip (fail under CI) unless Mosquitto and mosquitto_passwd are installed."""
    if Path(MOSQUITTO).exists() and shutil.which(MOSQUITTO_PASSWD):
        return
    message = "Mosquitto is not installed (./setup.sh test, or apt-get install mosquitto)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}: CI must run the MQTT tests")
    pytest.skip(message)


class Mosquitto:
    """One broker in a folder of its own: `port` plain, `tls_port` TLS, user `user` with `password`."""

    host = "127.0.0.1"
    user = "lpr-test"
    password = "broker-secret-Pa55word"

    def __init__(self, folder: Path):
        self.folder = folder
        self.port, self.tls_port = free_port(), free_port()
        self.process: subprocess.Popen | None = None
        self.ca_file = folder / "ca.pem"
        self._write_files()

    def _write_files(self) -> None:
        import trustme

        # The broker drops root for the `mosquitto` user: it must be able to read its files.
        self.folder.chmod(0o755)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.folder / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.folder / "cert.pem"))
        passwords = self.folder / "passwd"
        subprocess.run([MOSQUITTO_PASSWD, "-b", "-c", str(passwords), self.user, self.password],
                       check=True, capture_output=True)
        (self.folder / "mosquitto.conf").write_text("\n".join([
            "persistence false",
            "allow_anonymous false",
            f"password_file {passwords}",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"listener {self.port} {self.host}",
            f"listener {self.tls_port} {self.host}",
            f"cafile {self.ca_file}",
            f"certfile {self.folder / 'cert.pem'}",
            f"keyfile {self.folder / 'key.pem'}",
            "",
        ]))
        for path in self.folder.iterdir():
            path.chmod(0o644)

    def url(self, password: str | None = None, tls: bool = False, user: str | None = None) -> str:
        """MQTT_URL for this broker (another password or user to test a refusal)."""
        scheme, port = ("mqtts", self.tls_port) if tls else ("mqtt", self.port)
        return f"{scheme}://{user or self.user}:{password or self.password}@{self.host}:{port}"

    def start(self) -> "Mosquitto":
        with open(self.folder / "mosquitto.log", "ab") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.folder / "mosquitto.conf")],
                                            stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process, timeout=20)
        wait_for_port(self.tls_port, self.process, timeout=20)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        return (self.folder / "mosquitto.log").read_text(errors="replace")


def new_broker() -> Mosquitto:
    """A broker of a test's own (to stop it mid-test); the caller stops it."""
    require_mosquitto()
    return Mosquitto(Path(tempfile.mkdtemp(prefix="lpr-test-mqtt-"))).start()


@pytest.fixture(scope="session")
def mosquitto():
    """The session's broker."""
    broker = new_broker()
    yield broker
    broker.stop()
    shutil.rmtree(broker.folder, ignore_errors=True)
