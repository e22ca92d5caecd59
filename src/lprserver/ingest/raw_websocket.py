"""The raw WebSocket door (README "Sending reads"): the seed edge sender's JSON envelopes."""

import json
import logging
from typing import Any

import simple_websocket

from .connections import client_address
from .errors import IngestError
from .fastjson import parse

log = logging.getLogger("lprserver.ingest.raw")

TABLES = ("lpr_detection", "health_monitor")
# Edge field names that differ from the Socket.IO payload's.
MAX_BACKLOG = 16  # messages received but not yet answered on one connection
# Bytes read from a WebSocket at a time (both doors). A read with its 40 KB JPEG is a 53 KB
# message; simple-websocket's default of 4 KB sent it through wsproto's pure-Python frame
# parser thirteen times. In 64 KB reads the daemon's CPU for the Socket.IO transport alone
# fell from 0.91 to 0.59 ms per read here (BENCHMARKS.md).
RECEIVE_BYTES = 65536
RENAMED = {"license_plate": "plate_number", "image": "image_data"}
PING_INTERVAL = 25  # seconds, as Engine.IO pings Socket.IO clients


def translate(table: str, data: dict[str, Any]) -> dict[str, Any]:
    """Return the Socket.IO payload equivalent to an envelope's data."""
    # Empty strings mean "not given" for this sender.
    payload = {RENAMED.get(key, key): value for key, value in data.items() if value != ""}
    checkpoint = payload.pop("checkpoint_id", None)
    if "camera_id" not in payload and checkpoint is not None:
        payload["camera_id"] = str(checkpoint) if isinstance(checkpoint, int | str) else checkpoint
    elif checkpoint is not None and table == "lpr_detection":
        payload["checkpoint_id"] = checkpoint
    return payload


def handle_message(ingest, message: Any, token: str | None, conn: str) -> dict[str, Any]:
    """Answer one raw WebSocket message."""
    echo: dict[str, Any] = {}
    try:
        envelope = _envelope(message)
        echo = {"table": envelope.get("table"), "action": envelope.get("action")}
        table, data = _route(envelope)
        payload = translate(table, data)
        if table == "lpr_detection":
            answer = ingest.read(payload, token, conn)
        else:
            answer = ingest.health(payload, token, conn)
    except IngestError as exc:
        answer = exc.answer()
    if answer["status"] == "success":
        answer["message"] = "Data saved successfully"
    return {**answer, **{k: v for k, v in echo.items() if isinstance(v, str)}}


def _envelope(message: Any) -> dict[str, Any]:
    if not isinstance(message, str):
        raise IngestError("invalid_payload", "send JSON text messages, not binary")
    try:
        envelope = parse(message)
    except ValueError:
        raise IngestError("invalid_payload", "the message is not valid JSON") from None
    if not isinstance(envelope, dict):
        raise IngestError("invalid_payload", "the message must be a JSON object")
    return envelope


def _route(envelope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    table, action = envelope.get("table"), envelope.get("action")
    if table not in TABLES:
        raise IngestError("invalid_payload", f"unknown table; expected one of {', '.join(TABLES)}", "table")
    if action != "insert":
        raise IngestError("invalid_payload", "unknown action; expected insert", "action")
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise IngestError("invalid_payload", "data must be a JSON object", "data")
    return table, data


def serve_connection(ingest, environ: dict, token: str | None, max_message_bytes: int,
                     trusted_proxies: int = 0, idle_seconds: float = 120) -> None:
    """Accept a WebSocket and answer its messages until the camera goes away.

    The daemon pings every PING_INTERVAL seconds (or twice per INGEST_IDLE_SECONDS when that is
    shorter) and closes a connection whose ping went unanswered by the next one: a camera that is
    idle but alive answers them, a silent socket is gone within INGEST_IDLE_SECONDS."""
    ws = simple_websocket.Server(environ, max_message_size=max_message_bytes, receive_bytes=RECEIVE_BYTES,
                                 ping_interval=min(PING_INTERVAL, idle_seconds / 2))
    conn = f"raw-{id(ws):x}"
    ingest.opened(conn, client_address(environ, trusted_proxies), "websocket")
    try:
        while True:
            message = ws.receive()
            if message is None:
                break
            if len(ws.input_buffer) > MAX_BACKLOG:
                # Messages are answered in order; a client that sends without reading
                # the answers would otherwise grow this queue without end.
                log.warning("raw websocket closed: more than %d unanswered messages", MAX_BACKLOG)
                ws.close(1008, f"more than {MAX_BACKLOG} messages sent without waiting for answers")
                break
            ws.send(json.dumps(handle_message(ingest, message, token, conn), ensure_ascii=False))
    except simple_websocket.ConnectionClosed as closed:
        log.info("event=raw_websocket_closed reason=%s message=%r", closed.reason, closed.message or "")
    finally:
        ingest.disconnected(conn)
        if ws.connected:
            ws.close()
