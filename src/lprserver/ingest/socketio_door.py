"""The Socket.IO door (README "Sending reads"): events to the pipeline, an answer to every message.

python-socketio drops a message it cannot decode (JSON it refuses, an event with no name) and one
for an event nobody handles, without a word: the camera waits for its call's timeout and learns
nothing. Here each of them is answered `invalid_payload` on the call's acknowledgement, saying what
is wrong. A long-polling message over the size cap is answered too, without being read.
"""

import logging
import re
from typing import Any

import socketio
from socketio import packet as sio_packet

from .connections import client_address, request_token
from .errors import IngestError
from .fastjson import SocketIOJson
from .raw_websocket import RECEIVE_BYTES

log = logging.getLogger("lprserver.ingest")

EVENTS = ("camera_register", "lpr_data", "health_status")
BAD_MESSAGE = "lpr:bad_message"  # the name an undecodable event is handled under (see IngestPacket)
DRAIN_LIMIT = 4  # an oversized polling body is read and dropped up to this many times the cap
_HEAD = re.compile(r"4(?:2|5\d+-)(/[^,]*,)?(\d+)\[")  # Engine.IO message, Socket.IO event, its ack id


class IngestPacket(sio_packet.Packet):
    """A Socket.IO packet that, when its event cannot be read, becomes a BAD_MESSAGE event with the
    reason, keeping its acknowledgement id so the camera hears the answer."""

    def decode(self, encoded_packet):
        try:
            attachments = super().decode(encoded_packet)
        except (ValueError, RecursionError) as exc:
            if self.packet_type not in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
                raise
            reason = str(exc)[:80] or "nested too deeply"
            self.data = [BAD_MESSAGE, f"the message is not valid JSON ({reason})"]
            return 0
        if self.packet_type in (sio_packet.EVENT, sio_packet.BINARY_EVENT) and not (
                isinstance(self.data, list) and self.data and isinstance(self.data[0], str)):
            self.data = [BAD_MESSAGE, "an event is a JSON array starting with the event's name"]
        return attachments


def _single_payload(args: tuple) -> Any:
    # A client may emit an event with no argument or several; only one object is a payload.
    return args[0] if len(args) == 1 else None


def create_socketio_server(ingest, async_mode: str, max_message_bytes: int,
                           trusted_proxies: int = 0) -> socketio.Server:
    """Return the Socket.IO server whose events feed the pipeline (README "Sending reads")."""
    sio = socketio.Server(
        async_mode=async_mode,
        max_http_buffer_size=max_message_bytes,
        cors_allowed_origins="*",
        logger=log.isEnabledFor(logging.DEBUG),
        engineio_logger=log.isEnabledFor(logging.DEBUG),
        json=SocketIOJson,  # orjson where it parses as the standard library does (fastjson.py)
        serializer=IngestPacket,
    )
    if async_mode == "gevent":
        _cap_gevent_websocket_messages(sio)
    tokens: dict[str, str | None] = {}

    @sio.event
    def connect(sid, environ, auth=None):
        token = auth.get("token") if isinstance(auth, dict) else None
        tokens[sid] = token if isinstance(token, str) else request_token(environ)
        ingest.opened(sid, client_address(environ, trusted_proxies), "socketio")

    @sio.event
    def disconnect(sid, reason=None):
        tokens.pop(sid, None)
        ingest.disconnected(sid)

    @sio.on("camera_register")
    def camera_register(sid, *args):
        payload = _single_payload(args)
        answer = ingest.register(payload, tokens.get(sid), sid)
        if answer["status"] == "success" and isinstance(payload.get("token"), str):
            tokens[sid] = payload["token"]
        return answer

    @sio.on("lpr_data")
    def lpr_data(sid, *args):
        return ingest.read(_single_payload(args), tokens.get(sid), sid)

    @sio.on("health_status")
    def health_status(sid, *args):
        return ingest.health(_single_payload(args), tokens.get(sid), sid)

    @sio.on(BAD_MESSAGE)
    def bad_message(sid, reason="", *_args):
        return ingest.refuse(sid, "message", IngestError("invalid_payload", str(reason)))

    @sio.on("*")
    def unknown_event(event, sid, *_args):
        message = f"unknown event {event[:64]!r}; the events are {', '.join(EVENTS)}"
        return ingest.refuse(sid, "message", IngestError("invalid_payload", message, "event"))

    return sio


def _cap_gevent_websocket_messages(sio: socketio.Server) -> None:
    # python-engineio's gevent driver hands simple-websocket no size limit, so a
    # huge message would be buffered whole before Engine.IO checks its length.
    # Nor does it set the receive size: simple-websocket's default of 4 KB made a
    # 53 KB read thirteen trips through wsproto's pure-Python frame parser.
    from engineio.async_drivers.gevent import WebSocketWSGI

    limit = sio.eio.max_http_buffer_size

    class CappedWebSocketWSGI(WebSocketWSGI):
        def __init__(self, handler, server):
            super().__init__(handler, server)
            self.server_args["max_message_size"] = limit
            self.server_args["receive_bytes"] = RECEIVE_BYTES

    sio.eio._async = {**sio.eio._async, "websocket": CappedWebSocketWSGI}


def oversized_poll(sio: socketio.Server, environ: dict, start_response, cap: int) -> list[bytes]:
    """Answer a long-polling POST over the cap: its event's acknowledgement says `invalid_payload`.

    Engine.IO would refuse the whole request (400) and drop the session, and the camera's call would
    time out. The body's first bytes name the event's acknowledgement id; the rest is read and
    dropped in pieces (never held), and the POST itself is answered as Engine.IO answers one."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"]
    first = body.read(min(length, 256))
    found = _HEAD.match(first.decode("utf-8", "replace"))
    eio_sid = (re.search(r"(?:^|&)sid=([^&]+)", environ.get("QUERY_STRING", "")) or [None, None])[1]
    if found and eio_sid in sio.eio.sockets:
        answer = IngestError("invalid_payload", f"the message is over the limit of {cap} bytes").answer()
        namespace = found.group(1)[:-1] if found.group(1) else "/"
        ack = IngestPacket(sio_packet.ACK, namespace=namespace, id=int(found.group(2)), data=[answer])
        sio.eio.send(eio_sid, ack.encode())
        log.info("event=rejected code=invalid_payload field=None message=%r bytes=%d",
                 "polling message over the size limit", length)
    if length > DRAIN_LIMIT * cap:
        start_response("413 Payload Too Large", [("Content-Type", "text/plain"), ("Connection", "close")])
        return [b"message too large\n"]
    left = length - len(first)
    while left > 0:
        chunk = body.read(min(left, 65536))
        if not chunk:
            break
        left -= len(chunk)
    start_response("200 OK", [("Content-Type", "text/plain; charset=UTF-8"), ("Content-Length", "2")])
    return [b"ok"]
