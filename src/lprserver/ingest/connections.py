"""The daemon's TCP connections: a cap per address, a deadline for the handshake, an idle timeout.

Every socket costs a descriptor (a WebSocket two), and the daemon has a few tens of thousands. Without
limits one client could hold them all: 2,000 connections that never send a request, headers sent a
byte at a time, WebSockets that go silent. So (README "Sending reads" and "Configure"):
- one address holds at most INGEST_MAX_CONNECTIONS_PER_ADDRESS sockets; more are closed at once;
- a new connection has INGEST_HANDSHAKE_SECONDS to send its request line and headers;
- a socket on which nothing arrives for INGEST_IDLE_SECONDS is closed. Anything counts, WebSocket
  pings and pongs included: a camera that is idle but alive answers the daemon's pings (every 25 s).

Connections from the local nginx (loopback, when TRUSTED_PROXIES says a proxy stands in front) are
not capped per address: they are every camera that comes through it.
"""

import errno
import ipaddress
import logging
import socket
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs

log = logging.getLogger("lprserver.ingest")


@dataclass
class ConnectionGuard:
    """Counts the open sockets of each address and holds the daemon's connection limits."""

    max_per_address: int
    handshake_seconds: float
    idle_seconds: float
    trusted_proxies: int = 0
    open: Counter = field(default_factory=Counter)

    @classmethod
    def from_config(cls, config) -> "ConnectionGuard":
        return cls(config["INGEST_MAX_CONNECTIONS_PER_ADDRESS"], config["INGEST_HANDSHAKE_SECONDS"],
                   config["INGEST_IDLE_SECONDS"], config["TRUSTED_PROXIES"])

    def admit(self, address: str) -> bool:
        """Count a new socket from `address`; False (and nothing counted) when it holds too many."""
        if self.open[address] >= self.max_per_address and not self._local_proxy(address):
            log.warning("event=connection_refused address=%s reason=too_many_connections open=%d",
                        address, self.open[address])
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]

    def _local_proxy(self, address: str) -> bool:
        if not self.trusted_proxies:
            return False
        try:
            return ipaddress.ip_address(address).is_loopback
        except ValueError:
            return False


def client_address(environ: dict, trusted_proxies: int) -> str:
    """The camera's address: the peer's, or with TRUSTED_PROXIES the one the proxies wrote in
    X-Forwarded-For (counted from the right, as werkzeug's ProxyFix does for the web app)."""
    peer = environ.get("REMOTE_ADDR") or "-"
    if trusted_proxies and environ.get("HTTP_X_FORWARDED_FOR"):
        hops = [hop.strip() for hop in environ["HTTP_X_FORWARDED_FOR"].split(",")]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies][:64] or peer
    return peer


def request_token(environ: dict) -> str | None:
    """The camera token of a connection's request: `?token=` or `Authorization: Bearer` (README
    "Sending reads")."""
    values = parse_qs(environ.get("QUERY_STRING", "")).get("token")
    if values:
        return values[0]
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


LISTEN_BACKLOG = {"gevent": 128, "eventlet": 50}  # what each library used when it made the socket itself


def bound_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """Bind the daemon's port (the async library's socket, once patched), not listening yet.

    With `reuse_port`, SO_REUSEPORT lets several daemons share the port, the kernel handing each new
    connection to one of those listening (SPEC §14). Without it a port another process holds stops the
    daemon with a sentence saying so, before it touches the database. (eventlet.listen turned
    SO_REUSEPORT on by default, which let a second daemon share the port unnoticed.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno != errno.EADDRINUSE:
            raise
        hint = ("the process holding it must have INGEST_REUSE_PORT=1 too, and run as the same user"
                if reuse_port else "another daemon or program holds it; set INGEST_REUSE_PORT=1 on every "
                "daemon that should share it, or give this one another INGEST_PORT")
        raise SystemExit(f"The ingest daemon cannot listen on {host}:{port}: the port is in use ({hint}).") \
            from None
    return sock


def gevent_server(listener, app, guard: ConnectionGuard, error_log):
    """Return gevent's WSGI server for the daemon on `listener` (gevent_listener), with the guard's limits
    on every connection."""
    import gevent
    from gevent.pywsgi import WSGIHandler, WSGIServer

    class GuardedHandler(WSGIHandler):
        first_request = True

        def read_requestline(self):
            # The first request line is part of the handshake; later ones may wait as long as a
            # kept-alive connection may idle (the socket's own timeout).
            if not self.first_request:
                return super().read_requestline()
            self.first_request = False
            with gevent.Timeout(guard.handshake_seconds, TimeoutError("no request line")):
                return super().read_requestline()

        def read_request(self, raw_requestline):
            try:
                with gevent.Timeout(guard.handshake_seconds, TimeoutError("headers")):
                    return super().read_request(raw_requestline)
            except TimeoutError:
                raise ValueError(f"headers not complete within {guard.handshake_seconds:g} s") from None

    class GuardedServer(WSGIServer):
        handler_class = GuardedHandler

        def handle(self, sock, address):
            if not guard.admit(address[0]):
                sock.close()
                return
            try:
                sock.settimeout(guard.idle_seconds)
                super().handle(sock, address)
            finally:
                guard.release(address[0])

    return GuardedServer(listener, app, log=None, error_log=error_log)


def eventlet_server(listener, app, guard: ConnectionGuard):
    """Serve the daemon with eventlet's WSGI server, with the guard's limits on every connection."""
    import eventlet
    import eventlet.wsgi

    class GuardedProtocol(eventlet.wsgi.HttpProtocol):
        first_request = True

        def handle(self):
            address = self.client_address[0] if isinstance(self.client_address, tuple) else "-"
            if not guard.admit(address):
                self.close_connection = 1
                return
            try:
                super().handle()
            finally:
                guard.release(address)

        def _read_request_line(self):
            if not self.first_request:
                return super()._read_request_line()
            self.first_request = False
            try:
                with eventlet.Timeout(guard.handshake_seconds, TimeoutError("no request line")):
                    return super()._read_request_line()
            except TimeoutError:
                return ""  # closes the connection

        def parse_request(self):
            with eventlet.Timeout(guard.handshake_seconds, False):
                return super().parse_request()
            self.close_connection = 1  # the headers did not arrive in time
            return False

    # max_size: eventlet serves at most 1,024 connections at once by default, which a few addresses
    # could fill; descriptors and the cap per address bound them instead, as under gevent.
    eventlet.wsgi.server(listener, app, log_output=False, protocol=GuardedProtocol, max_size=65536,
                         keepalive=guard.idle_seconds, socket_timeout=guard.idle_seconds)
