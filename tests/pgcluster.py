"""A throwaway PostgreSQL server for tests and benchmarks.

Run as a script to start one and print its URL:
    python tests/pgcluster.py start /tmp/lpr-pg [--port 54329]
    python tests/pgcluster.py stop /tmp/lpr-pg
PostgreSQL refuses to run as root, so as root the server runs as the
`postgres` user that Debian's package creates.
"""

import argparse
import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise RuntimeError("PostgreSQL is not installed: run `./setup.sh test` (it installs it) "
                       "or `apt-get install postgresql`")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayPostgres:
    """One PostgreSQL cluster in a folder of its own, on a loopback port."""

    def __init__(self, base_dir: str | os.PathLike, port: int | None = None, fsync: bool = True):
        self.base_dir = Path(base_dir)
        self.data_dir = self.base_dir / "data"
        self.port = port or free_port()
        self.fsync = fsync
        self.bindir = _bindir()
        self.as_postgres = os.geteuid() == 0

    def url(self, database: str = "lpr") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, cwd="/")

    def start(self) -> str:
        """Create the cluster if needed, start it, create the `lpr` database, return its URL."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base_dir, pw.pw_uid, pw.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
                      "-E", "UTF8", "--locale=C.UTF-8")
        self.resume()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "lpr",
                  check=False)
        return self.url()

    def resume(self) -> None:
        """Start the server on its existing cluster and wait until it takes connections."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} "
                   f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-w", "-t", "60",
                  "-l", str(self.data_dir / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate` is a crash as far as clients can tell)."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"PostgreSQL did not answer on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "destroy"])
    parser.add_argument("folder")
    parser.add_argument("--port", type=int, default=54329)
    args = parser.parse_args()
    cluster = ThrowawayPostgres(args.folder, args.port)
    if args.action == "start":
        url = cluster.start()
        _wait_ready(cluster.port)
        print(url)
    elif args.action == "stop":
        cluster.stop()
    else:
        cluster.destroy()


if __name__ == "__main__":
    main()
