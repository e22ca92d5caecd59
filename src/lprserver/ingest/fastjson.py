"""JSON parsing for the ingest doors: orjson, with the standard library's answer wherever they differ.

A camera's read is about 53 KB of JSON, nearly all of it the image's base64. The standard library's
decoder took about 9 % of the daemon's CPU at 500 reads/s (py-spy). orjson parses a 40 KB camera
read in 21 µs against 46 µs when its text is ASCII, as python-socketio's default encoder sends it
(Thai escaped as \\uXXXX). When the text carries Thai characters as they are (UTF-8 on the wire),
the str the WebSocket layer decoded holds two bytes per character and orjson first encodes all of
it back to UTF-8: 61 µs against 74 µs (BENCHMARKS.md, "Ingest load"). Where orjson would give something
else, the slow parser's result is used:
  - text orjson refuses (NaN, Infinity, lone surrogates, bad JSON) is parsed again by the slow parser,
    so what it accepts is accepted and its error is the one raised;
  - integers wider than 64 bits, which orjson reads as floats, are read again as the slow parser
    reads them (exact, or refused by Engine.IO's 100-digit limit).
Nesting too deep for either parser is a ValueError (see `parse`).
"""

import json
import math
from collections.abc import Callable
from typing import Any

import orjson
from engineio import json as engineio_json

WIDEST_EXACT = 2**63  # orjson reads integer literals beyond 64 bits as floats


def parse(text: str | bytes, slow: Callable[[Any], Any] = json.loads) -> Any:
    """Return what `slow(text)` returns, computed by orjson where that gives the same.

    One difference, on purpose: arrays or objects nested deeper than the standard library can
    follow raise a ValueError (what every door answers as bad JSON), not a RecursionError; orjson
    itself follows up to 1,024 levels, where the standard library gives up somewhat earlier."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _slowly(slow, text)
    return _slowly(slow, text) if _has_wide_number(value) else value


def _slowly(slow: Callable[[Any], Any], text: str | bytes) -> Any:
    try:
        return slow(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _has_wide_number(value: Any) -> bool:
    """True if a float in value may be an integer literal that orjson widened (or is one anyway).

    A loop, not recursion: a camera may nest arrays as deep as orjson takes (1,024 levels)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if math.isfinite(item) and item.is_integer() and abs(item) >= WIDEST_EXACT:
                return True
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class SocketIOJson:
    """The `json=` module for python-socketio and python-engineio: their own (Engine.IO's limits on
    integers) for everything, orjson for parsing where it agrees."""

    dumps = staticmethod(engineio_json.dumps)

    @staticmethod
    def loads(text: str | bytes, **options: Any) -> Any:
        return parse(text, lambda t: engineio_json.loads(t, **options))
