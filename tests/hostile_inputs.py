"""The hostile-input table: every field of a read, and the message around it, with values a broken or
hostile camera sends, and the answer README "Sending reads" says each gets. Used by test_hostile_inputs.py on
every ingest door; each row also names the field the answer must point at."""

from .imagegen import b64, data_uri, flat_png, huge_header_jpeg, make_jpeg, many_scans_jpeg

GOOD = {"camera_id": "CAM001", "plate_number": "กข1234", "confidence": 85.5, "location": "ประตูหน้า"}
JPEG = make_jpeg(160, 120)

# Values that no text field may hold.
BAD_TEXT = [("NUL", "a\x00b"), ("lone surrogate", "a\ud800b"), ("number", 12), ("list", ["a"]),
            ("object", {"a": 1}), ("true", True)]
# Values that no number field may hold (NaN and Infinity are what Python's JSON writes for them).
BAD_NUMBER = [("NaN", float("nan")), ("Infinity", float("inf")), ("-Infinity", float("-inf")),
              ("words", "twelve"), ("true", True), ("list", [1]), ("2**64", 2**64)]

# (case, fields to put over GOOD, code, field)
ROWS: list[tuple[str, dict, str, str | None]] = []


def _rows(field: str, values, code: str = "invalid_payload") -> None:
    for name, value in values:
        ROWS.append((f"{field}: {name}", {field: value}, code, field))


_rows("camera_id", BAD_TEXT)
_rows("camera_id", [("empty", ""), ("path", "../../etc"), ("65 characters", "C" * 65), ("space", "CAM 1"),
                    ("starts with a dot", ".cam"), ("Thai", "กล้อง1"), ("slash", "a/b")], "invalid_camera_id")
ROWS.append(("camera_id: missing", {"camera_id": None}, "invalid_payload", "camera_id"))
_rows("plate_number", BAD_TEXT + [("65 characters", "ก" * 65), ("null", None)])
_rows("plate_number", [("empty", ""), ("separators only", " - . "), ("33 characters", "ก" * 33),
                       ("zero-width only", "\u200b\u200b"), ("control character", "กข\x071234")], "invalid_plate")
_rows("confidence", BAD_NUMBER + [("150", 150), ("-1", -1), ("100.01", 100.01)])
_rows("latitude", BAD_NUMBER + [("91", 91), ("-90.5", -90.5)])
_rows("longitude", BAD_NUMBER + [("181", 181)])
_rows("timestamp", [("year 1", "0001-01-01T00:00:00"), ("year 9999", "9999-12-31T23:59:59+14:00"),
                    ("year 1969", "1969-12-31T00:00:00Z"), ("year 2101", "2101-01-01T00:00:00Z"),
                    ("words", "yesterday"), ("far unix time", 10**15), ("NaN", float("nan")),
                    ("object", {"t": 1}), ("NUL", "2026-01-01\x00")])
for _field, _limit in (("location", 255), ("province", 64), ("vehicle_type", 64), ("vehicle_color", 64),
                       ("direction", 32), ("hostname", 255), ("event_id", 128)):
    _rows(_field, BAD_TEXT + [(f"{_limit + 1} characters", "x" * (_limit + 1))])
_rows("event_id", [("empty", "")])
_rows("token", BAD_TEXT + [("257 characters", "t" * 257)])
_rows("lane", [("NUL", "1\x00"), ("lone surrogate", "\udc00"), ("NaN", float("nan")), ("Infinity", float("inf")),
               ("2**64", 2**64), ("nested object", {"a": 1}), ("list", [1, 2]), ("1,025 characters", "x" * 1025)])
ROWS.append(("metadata: a field name with NUL", {"la\x00ne": 1}, "invalid_payload", None))
ROWS.append(("metadata: a 65-character field name", {"x" * 65: 1}, "invalid_payload", None))
ROWS.append(("metadata: 65 extra fields", {f"m{n}": n for n in range(65)}, "invalid_payload", None))
_rows("image_data", BAD_TEXT[2:], "invalid_payload")
_rows("image_data", [
    ("not base64", "not base64!!"), ("empty data URI", "data:image/jpeg;base64,"),
    ("data URI without base64", "data:image/jpeg,abc"), ("random bytes", data_uri(bytes(range(256)) * 8)),
    ("half a JPEG", data_uri(JPEG[: len(JPEG) // 2])), ("JPEG header only", b64(JPEG[:200])),
    ("50000x50000 header", data_uri(huge_header_jpeg())),
    ("6000x6000 header on 64x64 of data", data_uri(huge_header_jpeg(6000, 6000))),
    ("3000 progressive scans", b64(many_scans_jpeg(2000, 2000, 3000))),
    ("40-megapixel PNG", data_uri(flat_png(6320, 6320), "image/png")),
    ("a GIF", b64(b"GIF89a" + bytes(64))), ("padding in the middle", b64(JPEG)[:40] + "==" + b64(JPEG)[40:]),
], "invalid_image")
ROWS.append(("NUL in the image's base64", {"image_data": b64(JPEG)[:40] + "\x00" + b64(JPEG)[40:]},
             "invalid_payload", "image_data"))

# Whole messages that are not a read (the raw door and Socket.IO).
NOT_OBJECTS = [("a list", [1, 2]), ("a string", "hello"), ("a number", 42), ("null", None), ("true", True)]

# Health reports and registrations: (case, event, payload, field).
CAMERA_MESSAGES = [
    ("register: NUL in the name", "camera_register", {"camera_id": "CAM1", "name": "gate\x00"}, "name"),
    ("register: name of 129 characters", "camera_register", {"camera_id": "CAM1", "name": "n" * 129}, "name"),
    ("register: latitude NaN", "camera_register", {"camera_id": "CAM1", "latitude": float("nan")}, "latitude"),
    ("register: no camera_id", "camera_register", {"name": "gate"}, "camera_id"),
    ("health: status MAYBE", "health_status", {"camera_id": "CAM1", "status": "MAYBE"}, "status"),
    ("health: NUL in the message", "health_status", {"camera_id": "CAM1", "status": "PASS", "message": "\x00"},
     "message"),
    ("health: system_info 20 deep", "health_status",
     {"camera_id": "CAM1", "status": "PASS", "system_info": {"a": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}},
     "system_info.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0"),
    ("health: system_info over 16 KB", "health_status",
     {"camera_id": "CAM1", "status": "PASS", "system_info": {"log": "x" * 20_000}}, "system_info"),
    ("health: system_info Infinity", "health_status",
     {"camera_id": "CAM1", "status": "PASS", "system_info": {"t": float("inf")}}, "system_info.t"),
    ("health: year 1", "health_status", {"camera_id": "CAM1", "status": "PASS", "timestamp": "0001-01-01"},
     "timestamp"),
]

# Raw WebSocket messages around the read: (case, text, field).
ENVELOPES = [
    ("not JSON", "{not json", None), ("nested 5,000 deep", "[" * 5000 + "]" * 5000, None),
    ("a JSON list", "[1, 2, 3]", None), ("a JSON string", '"hello"', None), ("empty", "", None),
    ("unknown table", '{"table": "users", "action": "insert", "data": {}}', "table"),
    ("unknown action", '{"table": "lpr_detection", "action": "delete", "data": {}}', "action"),
    ("data a list", '{"table": "lpr_detection", "action": "insert", "data": [1]}', "data"),
    ("no data", '{"table": "lpr_detection", "action": "insert"}', "data"),
    ("table a number", '{"table": 7, "action": "insert", "data": {}}', "table"),
]

# Socket.IO frames over a raw Engine.IO WebSocket: (case, frame, what the answer says).
SOCKETIO_FRAMES = [
    ("an event with no name", "421[]", "event's name"),
    ("an event name that is a number", "421[7]", "event's name"),
    ("an event that is an object", '421{"a":1}', "event's name"),
    ("a 101-digit integer", '421["lpr_data",{"camera_id":"C1","plate_number":"AB1","n":' + "9" * 101 + "}]",
     "not valid JSON"),
    ("arguments 2,000 deep", '421["lpr_data",' + "[" * 2000 + "]" * 2000 + "]", "not valid JSON"),
    ("broken JSON", '421["lpr_data",{"camera_id":', "not valid JSON"),
    ("an unknown event", '421["lpr_dta",{"camera_id":"C1"}]', "lpr_data"),
    ("two payloads", '421["lpr_data",{"camera_id":"C1"},{"x":1}]', "JSON object"),
]


def payload(change: dict) -> dict:
    """GOOD with `change` over it; a None value removes the field."""
    merged = {**GOOD, **change}
    return {key: value for key, value in merged.items() if value is not None or key not in change}


def raw_data(read: dict) -> dict:
    """The same read as the raw WebSocket door's envelope data (its own names for two fields)."""
    names = {"plate_number": "license_plate", "image_data": "image"}
    return {names.get(key, key): value for key, value in read.items()}
