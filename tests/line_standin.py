"""A local HTTP server standing in for the LINE Messaging API's push message (the real one is not
reachable here), checking requests as LINE documents them: the path, the bearer token, the JSON
content type, a UUID `X-Line-Retry-Key`, and the body (`to`, 1 to 5 messages, a text of at most 5,000
characters, image URLs over https). A violation is answered 400 with LINE's `{"message": ...}`; a
retry key seen before is answered 409 with `X-Line-Accepted-Request-Id`, as LINE does."""

import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .pgcluster import free_port

TOKEN = "line-test-token-0123456789"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
TO_RE = re.compile(r"^[UCR][0-9a-f]{32}$")


def problems(body) -> str | None:
    """What LINE would refuse in a push message's JSON, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("to"), str) or not TO_RE.match(body["to"]):
        return "The property, 'to', in the request body is invalid"
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        return "Size must be between 1 and 5 (messages)"
    for i, item in enumerate(messages):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            text = item.get("text")
            if not isinstance(text, str) or not text or len(text.encode("utf-16-le")) // 2 > 5000:
                return f"Length must be between 1 and 5000 (messages[{i}].text)"
        elif kind == "image":
            for name in ("originalContentUrl", "previewImageUrl"):
                url = item.get(name)
                if not isinstance(url, str) or not url.startswith("https://") or len(url) > 2000:
                    return f"must be non-empty HTTPS URL (messages[{i}].{name})"
        else:
            return f"Invalid message type (messages[{i}].type)"
    return None


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that timed out has gone: fine
            super().handle_error(request, client_address)


class LineStandIn:
    """The push endpoint on 127.0.0.1; `fail_next` 500s and a `delay` can be set while it runs."""

    def __init__(self, token: str = TOKEN):
        self.token = token
        self.pushes: list[dict] = []  # accepted bodies
        self.headers: list[dict] = []  # the headers of every request
        self.accepted_keys: dict[str, str] = {}  # retry key -> request id
        self.fail_next = 0
        self.delay = 0.0
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer, extra = standin.answer(self.path, dict(self.headers), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str, headers: dict, raw: bytes) -> tuple[int, dict, dict]:
        self.headers.append(headers)
        if self.delay:
            time.sleep(self.delay)
        if path != "/v2/bot/message/push":
            return 404, {"message": "Not found"}, {}
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"message": "Authentication failed due to the following reason: invalid token. "
                                    "Confirm that the access token in the authorization header is valid."}, {}
        if (headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            return 415, {"message": "Unsupported Media Type"}, {}
        key = headers.get("X-Line-Retry-Key")
        if key is not None and not UUID_RE.match(key):
            return 400, {"message": "The retry key is invalid"}, {}
        with self.lock:
            if self.fail_next:
                self.fail_next -= 1
                return 500, {"message": "An error occurred in the internal server"}, {}
            if key in self.accepted_keys:
                return 409, {"message": "The retry key is already accepted", "sentMessages": []}, \
                    {"X-Line-Accepted-Request-Id": self.accepted_keys[key]}
            try:
                body = json.loads(raw)
            except ValueError:
                return 400, {"message": "The request body has 1 error(s)"}, {}
            why = problems(body)
            if why:
                return 400, {"message": "The request body has 1 error(s)",
                             "details": [{"message": why, "property": "messages"}]}, {}
            request_id = str(uuid.uuid4())
            if key is not None:
                self.accepted_keys[key] = request_id
            self.pushes.append(body)
        return 200, {"sentMessages": [{"id": str(i), "quoteToken": "q"} for i in range(len(body["messages"]))]}, \
            {"X-Line-Request-Id": request_id}

    def __enter__(self) -> "LineStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def line_api():
    with LineStandIn() as standin:
        yield standin
