"""The daemon's JSON parsing gives exactly what the standard parsers give, only faster."""

import json
import math

import pytest
from engineio import json as engineio_json

from lprserver.ingest.fastjson import SocketIOJson, parse

SAME = [
    '["lpr_data",{"camera_id":"CAM001","plate_number":"กข1234","confidence":91.5,"image_data":"/9j/4AAQ"}]',
    '{"confidence": NaN}', '{"confidence": Infinity}', '[-Infinity, 1e400]',  # orjson refuses these
    '{"a": "\\ud800"}',  # a lone surrogate: orjson refuses it
    '{"event_id": 99999999999999999999999}', '[18446744073709551616, -9223372036854775809]',  # beyond 64 bits
    '{"metadata": {"deep": [1, {"n": 123456789012345678901234567890}]}}',
    '[9223372036854775807, -9223372036854775808, 1.5e30, 1e19, -0.0, 0.1]',
    '"text"', "[]", "{}", "null", "true",
]
REFUSED = ['{"a": 1', "", "[1,]", '"\x00"', "{'a': 1}", "[1] [2]"]


def _equal(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("text", SAME)
def test_parse_gives_what_the_standard_library_gives(text):
    assert _equal(parse(text), json.loads(text))
    assert _equal(parse(text.encode()), json.loads(text.encode()))
    assert _equal(SocketIOJson.loads(text), engineio_json.loads(text))


def test_integers_are_exact_beyond_64_bits_and_engine_io_s_limit_still_holds():
    assert parse("[123456789012345678901234567890]") == [123456789012345678901234567890]
    assert type(parse("[123456789012345678901234567890]")[0]) is int
    with pytest.raises(ValueError, match="too large"):
        SocketIOJson.loads("[" + "9" * 101 + "]")


@pytest.mark.parametrize("text", REFUSED)
def test_what_the_standard_library_refuses_is_refused_with_its_error(text):
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as ours:
        parse(text)
    assert str(ours.value) == str(expected.value)


@pytest.mark.parametrize("depth", [500, 1000, 1024, 1025, 5000])
def test_deep_nesting_is_parsed_or_refused_as_bad_json_never_a_recursion_error(depth):
    text = "[" * depth + "]" * depth
    if depth <= 1024:  # orjson follows it (the standard library gives up near Python's recursion limit)
        value = parse(text)
        for _ in range(depth - 1):
            [value] = value
        assert value == []
    else:
        with pytest.raises(ValueError, match="nested too deeply"):
            parse(text)
        with pytest.raises(ValueError, match="nested too deeply"):
            SocketIOJson.loads(text)
