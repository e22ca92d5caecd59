"""The ingest daemon answering every read `success` without storing it: the transport alone, for
bench/ingest_load.py's second phase (BENCHMARKS.md, "Ingest load"). Never run it on a real site.

    python -m bench.transport_daemon        # with the daemon's settings in the environment
"""

import websocket_server  # noqa: F401  (first: it patches the async library, as the real daemon does)
from config import config_from_env
from lprserver import create_app
from lprserver.ingest.server import Ingest, serve

ANSWER = {"status": "success", "record_id": 0, "duplicate": False, "blacklisted": False}


class TransportOnlyIngest(Ingest):
    """Answers reads as soon as they are parsed: no validation, no image, no database."""

    def read(self, payload, token, conn) -> dict:
        return ANSWER


if __name__ == "__main__":
    serve(create_app(config_from_env()), websocket_server.ASYNC_MODE, ingest_class=TransportOnlyIngest)
